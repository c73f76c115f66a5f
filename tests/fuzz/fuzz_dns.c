/*
 * Fuzz target: one DNS message as the server gets it, over UDP or TCP.
 * The first input byte picks the transport, whether transfers and signed
 * queries are handed back (as the server does), and the response buffer's
 * size; the rest is the message. The zones are built once from a
 * declaration with every record type, a wildcard, CNAME chains and loops,
 * and tenants. The answer must fit its buffer, and every message is also
 * put through TSIG verification with a known key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/decl.h"
#include "dns/answer.h"
#include "dns/wire.h"
#include "dns/zone.h"
#include "model/model.h"
#include "route/route.h"
#include "world.h"

static const char decl_toml[] =
    "[[zone]]\n"
    "name = \"example.com\"\n"
    "addresses = [\"192.0.2.1\", \"2001:db8::1\"]\n"
    "nameservers = [\"ns1.example.com\", \"ns.other.net\"]\n"
    "soa = { rname = \"hostmaster.example.com\", minimum = 60, ttl = 3600 }\n"
    "[[zone.record]]\nname = \"@\"\ntype = \"MX\"\ndata = \"10 mail\"\n"
    "[[zone.record]]\nname = \"mail\"\ntype = \"A\"\ndata = \"192.0.2.25\"\n"
    "[[zone.record]]\nname = \"@\"\ntype = \"TXT\"\ndata = \"v=spf1 mx -all\"\n"
    "[[zone.record]]\nname = \"@\"\ntype = \"CAA\"\ndata = \"0 issue \\\"letsencrypt.org\\\"\"\n"
    "[[zone.record]]\nname = \"_sip._tcp\"\ntype = \"SRV\"\ndata = \"10 5 5060 sip\"\n"
    "[[zone.record]]\nname = \"sip\"\ntype = \"AAAA\"\ndata = \"2001:db8::5\"\n"
    "[[zone.record]]\nname = \"www\"\ntype = \"CNAME\"\ndata = \"app\"\n"
    "[[zone.record]]\nname = \"loop1\"\ntype = \"CNAME\"\ndata = \"loop2\"\n"
    "[[zone.record]]\nname = \"loop2\"\ntype = \"CNAME\"\ndata = \"loop1\"\n"
    "[[zone.record]]\nname = \"out\"\ntype = \"CNAME\"\ndata = \"target.elsewhere.org.\"\n"
    "[[zone.record]]\nname = \"*.dev\"\ntype = \"TXT\"\ndata = \"wild\"\n"
    "[[zone.record]]\nname = \"a.b.c\"\ntype = \"TXT\"\ndata = \"deep\"\n"
    "[[zone]]\n"
    "name = \"example.net\"\n"
    "addresses = [\"198.51.100.7\"]\n"
    "nameservers = [\"ns1.example.com\"]\n"
    "[tenants]\n"
    "service = \"web\"\n"
    "static = [\"acme\"]\n"
    "[previews]\n"
    "prs = [7]\n"
    "[[service]]\n"
    "name = \"web\"\n"
    "routes = [\"app.example.com/*\"]\n"
    "[[service]]\n"
    "name = \"api\"\n"
    "routes = [\"api.example.com/*\", \"*.wild.example.com/*\", \"shop.example.net/*\"]\n";

/* built once, kept for the process's life */
static sb_decl *decl;
static sb_model *model;
static sb_route_table *rt;
static sb_dns_zones *zones;
static sb_dns_tsig_key *key;

static void setup(void)
{
	const char *tenants[] = {"acme", "beta", "x-staging"};
	const char *why = NULL;
	sb_diag d = {0};
	world_load(decl_toml, sizeof(decl_toml) - 1, &decl, &model, &rt);
	if (sb_dns_build_decl(decl, model, rt, tenants, 3, 2024010101, &zones, &d) < 0 ||
	    sb_dns_tsig_key_new("xfr.example.com", "hmac-sha256",
				"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==", &key, &why) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[65535], stripped[65535];
	if (!zones)
		setup();
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	const uint8_t *q = data + 1;
	size_t qlen = size - 1;
	bool tcp = mode & 1;
	unsigned flags = (mode & 2) ? SB_DNS_ANSWER_DEFER : 0;
	size_t cap = (mode & 4) ? 512 : sizeof(resp);
	size_t rlen = 0;
	int rc = sb_dns_answer_ex(zones, q, qlen, resp, cap, tcp, flags, &rlen);
	if (rc == 0) {
		if (rlen < 12 || rlen > cap || (!tcp && rlen > SB_DNS_UDP_MAX))
			abort();
		if (resp[0] != q[0] || resp[1] != q[1] || !(resp[2] & 0x80))
			abort(); /* the query's id, and QR set */
	}
	const sb_dns_tsig_key *keys[] = {key};
	sb_dns_tsig t;
	memset(&t, 0, sizeof(t));
	size_t slen = 0;
	if (qlen <= sizeof(stripped) &&
	    sb_dns_tsig_verify_query(q, qlen, keys, 1, &t, stripped, &slen) == 0) {
		if (slen > qlen)
			abort();
		uint8_t out[4096];
		size_t olen = 12;
		memcpy(out, q, 12);
		out[2] |= 0x80;
		memset(out + 4, 0, 8);
		sb_dns_tsig_sign_response(&t, out, &olen, sizeof(out));
	}
	return 0;
}
