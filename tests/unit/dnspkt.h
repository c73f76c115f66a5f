/* Test helper: DNS packets built by hand, byte by byte (shared by
 * test_dns.c, test_xfr.c and test_dns_mutants.c). */
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

/* A query with no flag set: one question (class IN). */
__attribute__((unused)) static struct pkt pkt_question(uint16_t id, const char *name, uint16_t type)
{
	struct pkt p = {.n = 0};
	p_u16(&p, id);
	p_u16(&p, 0);
	p_u16(&p, 1);
	p_u16(&p, 0);
	p_u16(&p, 0);
	p_u16(&p, 0);
	p_name(&p, name);
	p_u16(&p, type);
	p_u16(&p, 1);
	return p;
}

/* IXFR (type 251) with the client's SOA (type 6), at serial, in the
 * authority section. */
__attribute__((unused)) static struct pkt pkt_ixfr(uint16_t id, const char *zone, uint32_t serial)
{
	struct pkt p = pkt_question(id, zone, 251);
	p.b[9] = 1; /* NSCOUNT */
	p_u16(&p, 0xc00c);
	p_u16(&p, 6);
	p_u16(&p, 1);
	p_u32(&p, 300);
	size_t rdl = p.n;
	p_u16(&p, 0);
	p_name(&p, "ns1.example.com");
	p_name(&p, "hostmaster.example.com");
	p_u32(&p, serial);
	for (int i = 0; i < 4; i++)
		p_u32(&p, 600);
	p.b[rdl] = (uint8_t)((p.n - rdl - 2) >> 8);
	p.b[rdl + 1] = (uint8_t)(p.n - rdl - 2);
	return p;
}

#endif
