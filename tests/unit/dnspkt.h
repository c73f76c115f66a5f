/* Test helper: DNS packets built by hand, byte by byte (shared by
 * test_dns.c and test_xfr.c). */
#ifndef SB_TESTS_DNSPKT_H
#define SB_TESTS_DNSPKT_H

#include <stdint.h>
#include <string.h>

struct pkt {
	uint8_t b[4096];
	size_t n;
};

__attribute__((unused)) static void p_u8(struct pkt *p, uint8_t v)
{
	p->b[p->n++] = v;
}

__attribute__((unused)) static void p_u16(struct pkt *p, uint16_t v)
{
	p_u8(p, (uint8_t)(v >> 8));
	p_u8(p, (uint8_t)v);
}

__attribute__((unused)) static void p_u32(struct pkt *p, uint32_t v)
{
	p_u16(p, (uint16_t)(v >> 16));
	p_u16(p, (uint16_t)v);
}

/* A name as labels, case kept; "" or "." is the root. */
__attribute__((unused)) static void p_name(struct pkt *p, const char *s)
{
	while (*s && strcmp(s, ".") != 0) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		p_u8(p, (uint8_t)n);
		memcpy(p->b + p->n, s, n);
		p->n += n;
		s += n + (dot ? 1 : 0);
	}
	p_u8(p, 0);
}

#endif
