/*
 * Response rate limiting (RRL) for DNS over UDP: a token bucket per client
 * network, an IPv4 /24 or an IPv6 /56 (the prefixes are configurable), so a
 * forged source address cannot make us a reflector for more than the
 * configured rate towards one network. Pure: no I/O, no clock; the caller
 * passes the time. One table is shared by every serving thread (striped
 * locks), so the rate holds whichever thread the kernel hands a datagram to.
 *
 * Over the rate, a response is dropped, except every `slip`-th one, which is
 * sent truncated (TC=1, the question only) so that a real client behind a
 * forged flood retries over TCP, where RRL does not apply.
 */
#ifndef SB_DNS_RRL_H
#define SB_DNS_RRL_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/*
 * [dns] rrl = { responses_per_second = 20, slip = 2 } (docs/dns.md). All
 * zero (the default): off.
 */
typedef struct sb_dns_rrl_config {
	uint32_t responses_per_second; /* per network; 0: RRL off */
	uint32_t slip;		       /* 0: drop every limited response; 1: truncate every one;
					  N: truncate one in N, drop the rest. Default 2 */
	uint32_t ipv4_prefix;	       /* bits, 1..32; 0: 24 */
	uint32_t ipv6_prefix;	       /* bits, 1..128; 0: 56 */
	uint32_t table_size;	       /* buckets (rounded up to a power of two); 0: 65536 */
} sb_dns_rrl_config;

typedef enum sb_dns_rrl_action {
	SB_DNS_RRL_SEND = 0, /* under the rate: send the response */
	SB_DNS_RRL_DROP = 1, /* over: send nothing */
	SB_DNS_RRL_SLIP = 2, /* over: send a truncated response (TC=1, question only) */
} sb_dns_rrl_action;

typedef struct sb_dns_rrl sb_dns_rrl;

/*
 * A limiter for config c (copied). Returns NULL when c is NULL or its rate
 * is 0 (RRL off), or for a prefix out of range (sb_dns_rrl_config_check says
 * which).
 */
sb_dns_rrl *sb_dns_rrl_new(const sb_dns_rrl_config *c);
void sb_dns_rrl_free(sb_dns_rrl *r);

/* 0, or SB_EINVAL with why set when a prefix is out of range. */
int sb_dns_rrl_config_check(const sb_dns_rrl_config *c, const char **why);

/*
 * Account one response to addr (AF_INET or AF_INET6; an IPv4-mapped IPv6
 * address counts as IPv4) at now_ms (any monotonic millisecond clock, the
 * same for every caller) and say what to do with it. Each network's bucket
 * holds up to one second of responses and refills at the configured rate.
 * Thread-safe. Another family, or a NULL limiter: SB_DNS_RRL_SEND.
 */
sb_dns_rrl_action sb_dns_rrl_check(sb_dns_rrl *r, const struct sockaddr *addr, uint64_t now_ms);

#endif
