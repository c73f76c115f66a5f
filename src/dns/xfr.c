/*
 * Zone transfers, TSIG, NOTIFY (xfr.h). Why it looks like this:
 *
 * - What the serving threads read is immutable and hangs from the zones
 *   they answer from: a `state` attached to each build holds a reference to
 *   the `policy` (keys, allow list, rate limiter; shared by consecutive
 *   builds while the configuration does not change) and, per zone, the
 *   chain of `diff`s IXFR can send (each diff shared by the builds whose
 *   history reaches it). All of them are reference counted with atomics, so
 *   the last snapshot to go, on whatever thread, frees them.
 * - A diff is computed once, on the control thread, when a build replaces
 *   the previous one: names of the new zone are looked up in the old one
 *   and the other way round, with a shortcut for the shared address RRset,
 *   so a tenant added to a million costs two passes over the tables and a
 *   diff of one record. A diff larger than the zone is not kept (IXFR
 *   would not be smaller than AXFR).
 * - A transfer is produced one message at a time, when the previous one has
 *   been written, from a position in the zone (or in the diffs), never
 *   copied whole: a million-tenant zone streams in constant memory.
 * - NOTIFY runs on the control loop: one timer, one UDP socket per address
 *   family, a list of pending notifications with their next due time.
 */
#include "dns/xfr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <uv.h>

#include "dns/answer.h"
#include "dns/internal.h"

#define HISTORY_DEFAULT 16
#define RETRIES_DEFAULT 5
#define BACKOFF_MS 1000
#define BACKOFF_MAX_MS 60000
#define MSG_MAX 65535
#define OWNER_ARENA (256 * 1024) /* a message's owner names */
#define SMALL_ARENA 12288
#define NOTIFY_MAX 1024

/* ---- configuration ------------------------------------------------------ */

struct key {
	char *name; /* as declared */
	sb_dns_tsig_key *k;
};

struct acl {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned bits;
	int key; /* index in keys; -1: none required */
};

struct target {
	struct sockaddr_storage addr;
	socklen_t len;
	char text[INET6_ADDRSTRLEN + 16];
	int key; /* index in keys; -1: unsigned */
};

/* The rate limiter outlives a policy when its settings do not change. */
struct rrl_ref {
	atomic_int refs;
	sb_dns_rrl_config c;
	sb_dns_rrl *r;
};

struct policy {
	atomic_int refs;
	sb_dns_log_fn log;
	struct key *keys;
	const sb_dns_tsig_key **keyv; /* keys[i].k, for sb_dns_tsig_verify_query */
	size_t nkeys;
	struct acl *acl;
	size_t nacl;
	struct target *targets;
	size_t ntargets;
	struct rrl_ref *rrl; /* NULL: off */
	uint32_t history, retries;
};

static void rrl_unref(struct rrl_ref *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	sb_dns_rrl_free(r->r);
	free(r);
}

static struct policy *policy_ref(struct policy *p)
{
	atomic_fetch_add(&p->refs, 1);
	return p;
}

static void policy_unref(struct policy *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (size_t i = 0; i < p->nkeys; i++) {
		free(p->keys[i].name);
		sb_dns_tsig_key_free(p->keys[i].k);
	}
	free(p->keys);
	free(p->keyv);
	free(p->acl);
	free(p->targets);
	rrl_unref(p->rrl);
	free(p);
}

/* Key names compare as DNS names: any case, with or without the final dot. */
static bool name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int key_index(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->nkeys; i++)
		if (name_eq(p->keys[i].name, name))
			return (int)i;
	return -1;
}

/* "192.0.2.0/24", "2001:db8::/32", "192.0.2.1" (/32), "::1" (/128). */
static int parse_cidr(const char *s, struct acl *a, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	*why = "is not an address or a network (\"192.0.2.0/24\", \"2001:db8::/48\")";
	if (hl == 0 || hl >= sizeof(host))
		return SB_EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(a->addr, 0, sizeof(a->addr));
	if (inet_pton(AF_INET, host, a->addr) == 1) {
		a->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, a->addr) == 1) {
		a->family = AF_INET6;
		max = 128;
	} else {
		return SB_EINVAL;
	}
	uint64_t bits = max;
	if (slash && sb_parse_u64(slash + 1, strlen(slash + 1), max, &bits) < 0) {
		*why = "has a prefix length out of range";
		return SB_EINVAL;
	}
	a->bits = (unsigned)bits;
	return 0;
}

/* "192.0.2.53:5300", "192.0.2.53" (port 53), "[2001:db8::53]:5300", "2001:db8::53". */
static int parse_target(const char *s, struct target *t, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h = s, *port = NULL;
	size_t hl;
	*why = "is not \"address:port\" (\"192.0.2.53:53\", \"[2001:db8::53]:53\")";
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (close[1] && close[1] != ':'))
			return SB_EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		port = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':')) {
			hl = strlen(s); /* IPv6 without brackets: no port */
		} else {
			hl = colon ? (size_t)(colon - s) : strlen(s);
			port = colon ? colon + 1 : NULL;
		}
	}
	uint64_t pn = 53;
	if (hl == 0 || hl >= sizeof(host) ||
	    (port && (sb_parse_u64(port, strlen(port), 65535, &pn) < 0 || pn == 0)))
		return SB_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&t->addr, 0, sizeof(t->addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)pn);
		t->len = sizeof(*a4);
		snprintf(t->text, sizeof(t->text), "%s:%u", host, (unsigned)pn);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)pn);
		t->len = sizeof(*a6);
		snprintf(t->text, sizeof(t->text), "[%s]:%u", host, (unsigned)pn);
	} else {
		return SB_EINVAL;
	}
	return 0;
}

/* [dns] rrl as the limiter takes it: slip 2 unless set. */
static sb_dns_rrl_config rrl_config(const sb_dns_cfg *c)
{
	sb_dns_rrl_config r = {.responses_per_second = c->rrl_rps,
			       .slip = c->rrl_slip_set ? c->rrl_slip : 2,
			       .ipv4_prefix = c->rrl_ipv4_prefix,
			       .ipv6_prefix = c->rrl_ipv6_prefix,
			       .table_size = c->rrl_table_size};
	return r;
}

static int policy_build(const sb_dns_cfg *c, const char *file, sb_dns_log_fn log,
			struct rrl_ref *old_rrl, struct policy **out, sb_diag *d)
{
	int r = 0;
	const char *why = NULL;
	sb_dns_rrl_config rc = rrl_config(c);
	struct policy *p = sb_xcalloc(1, sizeof(*p));
	atomic_init(&p->refs, 1);
	p->log = log;
	p->history = c->ixfr_history ? c->ixfr_history : HISTORY_DEFAULT;
	p->retries = c->notify_retries ? c->notify_retries : RETRIES_DEFAULT;
	p->keys = sb_xcalloc(c->nkeys + 1, sizeof(*p->keys));
	p->keyv = sb_xcalloc(c->nkeys + 1, sizeof(*p->keyv));
	for (size_t i = 0; i < c->nkeys; i++) {
		const sb_dns_key_cfg *k = &c->keys[i];
		if (!k->name || !k->secret) {
			r = sb_diag_set(d, file, k->line, k->col,
					"[[dns.key]] needs a name and a secret");
			goto out;
		}
		if (key_index(p, k->name) >= 0) {
			r = sb_diag_set(d, file, k->line, k->col, "key \"%s\" is declared twice",
					k->name);
			goto out;
		}
		if (sb_dns_tsig_key_new(k->name, k->algorithm, k->secret, &p->keys[i].k, &why) <
		    0) {
			r = sb_diag_set(d, file, k->line, k->col, "key \"%s\": %s", k->name, why);
			goto out;
		}
		p->keys[i].name = sb_xstrdup(k->name);
		p->keyv[i] = p->keys[i].k;
		p->nkeys++;
	}
	p->acl = sb_xcalloc(c->nallow + 1, sizeof(*p->acl));
	for (size_t i = 0; i < c->nallow; i++) {
		const sb_dns_peer_cfg *a = &c->allow[i];
		if (!a->address || parse_cidr(a->address, &p->acl[i], &why) < 0) {
			r = sb_diag_set(
			    d, file, a->line, a->col, "allow_transfer address \"%s\" %s",
			    a->address ? a->address : "", a->address ? why : "is missing");
			goto out;
		}
		p->acl[i].key = a->key ? key_index(p, a->key) : -1;
		if (a->key && p->acl[i].key < 0) {
			r = sb_diag_set(d, file, a->line, a->col,
					"allow_transfer key \"%s\" is not a [[dns.key]]", a->key);
			goto out;
		}
		p->nacl++;
	}
	p->targets = sb_xcalloc(c->nnotify + 1, sizeof(*p->targets));
	for (size_t i = 0; i < c->nnotify; i++) {
		const sb_dns_peer_cfg *n = &c->notify[i];
		if (!n->address || parse_target(n->address, &p->targets[i], &why) < 0) {
			r = sb_diag_set(d, file, n->line, n->col, "notify address \"%s\" %s",
					n->address ? n->address : "",
					n->address ? why : "is missing");
			goto out;
		}
		p->targets[i].key = n->key ? key_index(p, n->key) : -1;
		if (n->key && p->targets[i].key < 0) {
			r = sb_diag_set(d, file, n->line, n->col,
					"notify key \"%s\" is not a [[dns.key]]", n->key);
			goto out;
		}
		p->ntargets++;
	}
	if (sb_dns_rrl_config_check(&rc, &why) < 0) {
		r = sb_diag_set(d, file, c->rrl_line, c->rrl_col, "%s", why);
		goto out;
	}
	if (rc.responses_per_second) {
		if (old_rrl && memcmp(&old_rrl->c, &rc, sizeof(rc)) == 0) {
			atomic_fetch_add(&old_rrl->refs, 1);
			p->rrl = old_rrl; /* same settings: the buckets carry over */
		} else {
			p->rrl = sb_xcalloc(1, sizeof(*p->rrl));
			atomic_init(&p->rrl->refs, 1);
			p->rrl->c = rc;
			p->rrl->r = sb_dns_rrl_new(&rc);
		}
	}
out:
	if (r < 0) {
		policy_unref(p);
		p = NULL;
	}
	*out = p;
	return r;
}

int sb_dns_xfr_config_check(const sb_dns_cfg *c, const char *file, sb_diag *d)
{
	struct policy *p;
	int r = policy_build(c, file, NULL, NULL, &p, d);
	policy_unref(p);
	return r;
}

/* Everything of c that matters, as bytes: equal bytes, same policy. */
static void fingerprint(const sb_dns_cfg *c, sb_buf *b)
{
	sb_dns_rrl_config rc = rrl_config(c);
#define S(x) sb_buf_add(b, (x) ? (x) : "", ((x) ? strlen(x) : 0) + 1)
	for (size_t i = 0; i < c->nkeys; i++) {
		S(c->keys[i].name);
		S(c->keys[i].algorithm);
		S(c->keys[i].secret);
	}
	sb_buf_addc(b, '\1');
	for (size_t i = 0; i < c->nallow; i++) {
		S(c->allow[i].address);
		S(c->allow[i].key);
	}
	sb_buf_addc(b, '\1');
	for (size_t i = 0; i < c->nnotify; i++) {
		S(c->notify[i].address);
		S(c->notify[i].key);
	}
#undef S
	sb_buf_add(b, &c->ixfr_history, sizeof(c->ixfr_history));
	sb_buf_add(b, &c->notify_retries, sizeof(c->notify_retries));
	sb_buf_add(b, &rc, sizeof(rc));
}

/* ---- diffs -------------------------------------------------------------- */

/* One RRset removed or added; name relative to the zone, lower case. */
struct drr {
	const uint8_t *name;
	size_t name_len;
	sb_dns_rrset rs;
};

/* One serial step of one zone: immutable once computed. */
struct diff {
	atomic_int refs;
	uint32_t from, to;
	sb_pool *pool;
	sb_dns_rrset from_soa, to_soa;
	struct drr *del, *add;
	size_t ndel, nadd, capdel, capadd;
	size_t records;
};

static void diff_unref(struct diff *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	sb_pool_free(d->pool);
	free(d->del);
	free(d->add);
	free(d);
}

static struct diff *diff_ref(struct diff *d)
{
	atomic_fetch_add(&d->refs, 1);
	return d;
}

static sb_dns_rrset rrset_copy(struct diff *d, const sb_dns_rrset *rs)
{
	sb_dns_rrset c = *rs;
	uint8_t *p = sb_pool_alloc(d->pool, rs->size ? rs->size : 1);
	memcpy(p, rs->rdata, rs->size);
	c.rdata = p;
	return c;
}

static void diff_push(struct diff *d, bool add, const uint8_t *name, size_t nl,
		      const sb_dns_rrset *rs)
{
	struct drr **v = add ? &d->add : &d->del;
	size_t *n = add ? &d->nadd : &d->ndel, *cap = add ? &d->capadd : &d->capdel;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = sb_xrealloc(*v, *cap * sizeof(**v));
	}
	uint8_t *nm = sb_pool_alloc(d->pool, nl ? nl : 1);
	memcpy(nm, name, nl);
	(*v)[(*n)++] = (struct drr){.name = nm, .name_len = nl, .rs = *rs};
	d->records += rs->count;
}

static void put_all(struct diff *d, bool add, const uint8_t *name, size_t nl,
		    const sb_dns_rrset *rs)
{
	sb_dns_rrset c = rrset_copy(d, rs);
	diff_push(d, add, name, nl, &c);
}

/* The records of rs that other does not have. */
static void put_missing(struct diff *d, bool add, const uint8_t *name, size_t nl,
			const sb_dns_rrset *rs, const sb_dns_rrset *other)
{
	sb_dns_rrset c = {.type = rs->type, .ttl = rs->ttl};
	for (size_t i = 0; i < rs->count; i++) {
		if (sb_dns_rrset_has(other, rs, i))
			continue;
		uint16_t len;
		const uint8_t *rd = sb_dns_rrset_rdata(rs, i, &len);
		sb_dns_rrset_add(&c, rd, len, d->pool);
	}
	if (c.count)
		diff_push(d, add, name, nl, &c);
}

/* The changes from node on (NULL: absent) to node nn (NULL: absent). The
 * SOA is left out: the step's SOAs carry it. */
static void diff_node(struct diff *d, const struct sb_dns_node *on, const struct sb_dns_node *nn,
		      const uint8_t *name, size_t nl)
{
	for (uint16_t j = 0; nn && j < nn->nrrsets; j++) {
		const sb_dns_rrset *rs = &nn->rrsets[j];
		const sb_dns_rrset *ors = on ? sb_dns_node_rrset(on, rs->type) : NULL;
		if (rs->type == SB_DNS_SOA || (ors && sb_dns_rrset_equal(ors, rs)))
			continue;
		if (!ors) {
			put_all(d, true, name, nl, rs);
		} else if (ors->ttl != rs->ttl) {
			put_all(d, false, name, nl, ors);
			put_all(d, true, name, nl, rs);
		} else {
			put_missing(d, false, name, nl, ors, rs);
			put_missing(d, true, name, nl, rs, ors);
		}
	}
	for (uint16_t j = 0; on && j < on->nrrsets; j++) {
		const sb_dns_rrset *ors = &on->rrsets[j];
		if (ors->type != SB_DNS_SOA && (!nn || !sb_dns_node_rrset(nn, ors->type)))
			put_all(d, false, name, nl, ors);
	}
}

/* The step from pz to nz, or NULL when it is larger than the zone. */
static struct diff *diff_zones(const struct sb_dns_zone *pz, uint32_t from,
			       const struct sb_dns_zone *nz, uint32_t to)
{
	struct diff *d = sb_xcalloc(1, sizeof(*d));
	atomic_init(&d->refs, 1);
	d->from = from;
	d->to = to;
	d->pool = sb_pool_new(4096);
	d->from_soa = rrset_copy(d, pz->soa);
	d->to_soa = rrset_copy(d, nz->soa);
	bool addr_same = pz->naddr == nz->naddr;
	for (size_t i = 0; addr_same && i < nz->naddr; i++)
		addr_same = sb_dns_rrset_equal(&pz->addr[i], &nz->addr[i]);
	size_t limit = nz->nnodes + 16;
	for (size_t k = 0; k < nz->nnodes && d->records <= limit; k++) {
		const struct sb_dns_node *nn = &nz->nodes[k];
		const uint8_t *name = nz->names + nn->name;
		const struct sb_dns_node *on = sb_dns_node_find(pz, name, nn->name_len);
		/* the common case: a name with the zone's addresses, before and after */
		if (on && addr_same && nn->rrsets == nz->addr && on->rrsets == pz->addr &&
		    nn->nrrsets == on->nrrsets)
			continue;
		if (nn->nrrsets || (on && on->nrrsets))
			diff_node(d, on, nn, name, nn->name_len);
	}
	for (size_t k = 0; k < pz->nnodes && d->records <= limit; k++) {
		const struct sb_dns_node *on = &pz->nodes[k];
		const uint8_t *name = pz->names + on->name;
		if (on->nrrsets && !sb_dns_node_find(nz, name, on->name_len))
			diff_node(d, on, NULL, name, on->name_len);
	}
	if (d->records > limit) {
		diff_unref(d);
		return NULL;
	}
	return d;
}

/* ---- what the serving threads read --------------------------------------- */

struct zhist {
	struct diff **diffs; /* oldest first, a chain: diffs[i]->to == diffs[i + 1]->from */
	size_t n;
};

static void zhist_clear(struct zhist *h)
{
	for (size_t i = 0; i < h->n; i++)
		diff_unref(h->diffs[i]);
	free(h->diffs);
	h->diffs = NULL;
	h->n = 0;
}

/* Attached to a zone set (sb_dns_zones_attach). */
struct state {
	struct policy *p;
	size_t nzones;
	struct zhist *z; /* parallel to the zones */
};

static void state_free(void *v)
{
	struct state *st = v;
	for (size_t i = 0; i < st->nzones; i++)
		zhist_clear(&st->z[i]);
	free(st->z);
	policy_unref(st->p);
	free(st);
}

/* ---- the control side ------------------------------------------------------ */

struct hist {
	char *zone;
	uint32_t serial;
	struct zhist h;
	bool seen;
};

struct pending {
	size_t target;
	char *zone;
	uint32_t serial;
	uint8_t msg[NOTIFY_MAX]; /* unsigned, ID set at each send */
	size_t len;
	unsigned tries;
	uint64_t due; /* uv_now() */
	uint16_t id;
	sb_dns_tsig t;
};

struct sb_dns_xfr {
	sb_dns_log_fn log;
	sb_buf fp;
	struct policy *p;	  /* NULL: not configured */
	const sb_dns_zones *last; /* what the last attach attached to (identity only) */
	struct hist *hist;
	size_t nhist;
	struct pending *pend;
	size_t npend, cappend;
	uv_loop_t *loop;
	uv_timer_t timer;
	uv_udp_t udp[2]; /* IPv4, IPv6 */
	bool udp_open[2];
	bool started, stopped;
	uint32_t backoff_ms;
	char rbuf[4096];
};

#define LOG(x, level, ...)                                                                         \
	do {                                                                                       \
		if ((x)->log)                                                                      \
			(x)->log(level, __VA_ARGS__);                                              \
	} while (0)

sb_dns_xfr *sb_dns_xfr_new(sb_dns_log_fn log)
{
	sb_dns_xfr *x = sb_xcalloc(1, sizeof(*x));
	x->log = log;
	x->backoff_ms = BACKOFF_MS;
	sb_buf_init(&x->fp);
	return x;
}

void sb_dns_xfr_set_notify_backoff(sb_dns_xfr *x, uint32_t ms)
{
	x->backoff_ms = ms ? ms : BACKOFF_MS;
}

static void pend_remove(sb_dns_xfr *x, size_t i)
{
	free(x->pend[i].zone);
	x->pend[i] = x->pend[--x->npend];
}

static void pend_clear(sb_dns_xfr *x)
{
	while (x->npend)
		pend_remove(x, x->npend - 1);
}

static void notify_tick(uv_timer_t *t);

/* Run the timer for the earliest due NOTIFY. */
static void rearm(sb_dns_xfr *x)
{
	if (!x->started || x->stopped)
		return;
	if (!x->npend) {
		uv_timer_stop(&x->timer);
		return;
	}
	uint64_t due = x->pend[0].due, now = uv_now(x->loop);
	for (size_t i = 1; i < x->npend; i++)
		if (x->pend[i].due < due)
			due = x->pend[i].due;
	uv_timer_start(&x->timer, notify_tick, due > now ? due - now : 0, 0);
}

/* A NOTIFY for zone z (RFC 1996 3.7: opcode NOTIFY, AA, the SOA as a hint). */
static size_t notify_message(const struct sb_dns_zone *z, uint8_t *buf, size_t cap)
{
	_Alignas(16) uint8_t mem[SMALL_ARENA];
	sb_dns_arena a = {mem, 0, sizeof(mem)};
	sb_dns_query q;
	memset(&q, 0, sizeof(q));
	q.opcode = SB_DNS_OPCODE_NOTIFY;
	q.has_question = true;
	q.qname = z->origin;
	q.qname_len = z->origin_len;
	q.qtype = SB_DNS_SOA;
	q.qclass = SB_DNS_CLASS_IN;
	sb_dns_writer *w = sb_dns_writer_new(&a, buf, cap, &q, true, false);
	if (!w)
		return 0;
	sb_dns_writer_set_aa(w, true);
	sb_dns_writer_put(w, SB_DNS_ANSWER, NULL, z->soa, z->soa->ttl);
	size_t len = sb_dns_writer_finish(w);
	buf[2] &= 0x7f; /* a request: QR=0 */
	return len;
}

static void notify_queue(sb_dns_xfr *x, const sb_dns_zones *zs, size_t zi)
{
	const struct sb_dns_zone *z = &zs->zones[zi];
	uint32_t serial = sb_dns_zone_serial(zs, zi);
	for (size_t t = 0; t < x->p->ntargets; t++) {
		struct pending *p = NULL;
		for (size_t i = 0; i < x->npend && !p; i++)
			if (x->pend[i].target == t && strcmp(x->pend[i].zone, z->name) == 0)
				p = &x->pend[i]; /* a newer serial replaces the one not yet answered
						  */
		if (!p) {
			if (x->npend == x->cappend) {
				x->cappend = x->cappend ? x->cappend * 2 : 8;
				x->pend = sb_xrealloc(x->pend, x->cappend * sizeof(*x->pend));
			}
			p = &x->pend[x->npend++];
			memset(p, 0, sizeof(*p));
			p->target = t;
			p->zone = sb_xstrdup(z->name);
		}
		p->serial = serial;
		p->len = notify_message(z, p->msg, sizeof(p->msg));
		p->tries = 0;
		p->due = (x->started ? uv_now(x->loop) : 0) + SB_DNS_NOTIFY_DELAY_MS;
		int k = x->p->targets[t].key;
		memset(&p->t, 0, sizeof(p->t));
		p->t.key = k >= 0 ? x->p->keys[k].k : NULL;
		if (!p->len)
			pend_remove(x, (size_t)(p - x->pend));
	}
	rearm(x);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static const char *rcode_text(unsigned rc)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					    "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
					    "NXRRSET", "NOTAUTH", "NOTZONE"};
	return rc < SB_ARRAY_LEN(names) ? names[rc] : "an unknown rcode";
}

static const char *tsig_text(unsigned e)
{
	switch (e) {
	case SB_DNS_TSIG_BADSIG: return "BADSIG";
	case SB_DNS_TSIG_BADKEY: return "BADKEY";
	case SB_DNS_TSIG_BADTIME: return "BADTIME";
	case SB_DNS_TSIG_BADTRUNC: return "BADTRUNC";
	default: return "a TSIG error";
	}
}

static void notify_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	sb_dns_xfr *x = h->data;
	buf->base = x->rbuf;
	buf->len = sizeof(x->rbuf);
}

static void notify_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
			unsigned flags)
{
	sb_dns_xfr *x = h->data;
	const uint8_t *b = (const uint8_t *)buf->base;
	if (n < 12 || !from || !x->p || !(b[2] & 0x80) ||
	    ((b[2] >> 3) & 0xf) != SB_DNS_OPCODE_NOTIFY)
		return;
	uint16_t id = (uint16_t)(b[0] << 8 | b[1]);
	for (size_t i = 0; i < x->npend; i++) {
		struct pending *p = &x->pend[i];
		const struct target *t = &x->p->targets[p->target];
		if (!p->tries || p->id != id || !same_addr(from, &t->addr))
			continue;
		if (p->t.key &&
		    (sb_dns_tsig_verify_response(&p->t, b, (size_t)n) < 0 || p->t.error)) {
			LOG(x, "warning",
			    "NOTIFY %s serial %u: the answer of %s does not verify (%s)", p->zone,
			    p->serial, t->text, tsig_text(p->t.error));
			return; /* a forgery, or a stale answer: the next try decides */
		}
		unsigned rc = b[3] & 0xf;
		if (rc == SB_DNS_NOERROR)
			LOG(x, "info", "NOTIFY %s serial %u: %s acknowledged", p->zone, p->serial,
			    t->text);
		else
			LOG(x, "warning", "NOTIFY %s serial %u: %s answered %s", p->zone, p->serial,
			    t->text, rcode_text(rc));
		pend_remove(x, i);
		rearm(x);
		return;
	}
}

/* The socket for a family, bound to any address, opened on first use. */
static uv_udp_t *notify_socket(sb_dns_xfr *x, int family)
{
	int i = family == AF_INET6;
	if (x->udp_open[i])
		return &x->udp[i];
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = (sa_family_t)family;
	if (uv_udp_init(x->loop, &x->udp[i]) < 0)
		return NULL;
	x->udp[i].data = x;
	x->udp_open[i] = true;
	int r = uv_udp_bind(&x->udp[i], (const struct sockaddr *)&any, 0);
	if (r == 0)
		r = uv_udp_recv_start(&x->udp[i], notify_alloc, notify_recv);
	if (r < 0) {
		LOG(x, "error", "NOTIFY: cannot open a UDP socket: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&x->udp[i], NULL);
		x->udp_open[i] = false;
		return NULL;
	}
	return &x->udp[i];
}

static void notify_send(sb_dns_xfr *x, struct pending *p)
{
	const struct target *t = &x->p->targets[p->target];
	uint8_t out[NOTIFY_MAX + 1024];
	size_t len = p->len;
	memcpy(out, p->msg, len);
	if (getrandom(&p->id, sizeof(p->id), 0) != (ssize_t)sizeof(p->id))
		p->id = (uint16_t)(p->id * 31 + 7);
	out[0] = (uint8_t)(p->id >> 8);
	out[1] = (uint8_t)p->id;
	if (p->t.key && sb_dns_tsig_sign_query(&p->t, out, &len, sizeof(out)) < 0)
		return;
	uv_udp_t *u = notify_socket(x, t->addr.ss_family);
	uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
	int r = u ? uv_udp_try_send(u, &b, 1, (const struct sockaddr *)&t->addr) : UV_EBADF;
	if (r < 0 && p->tries == 0)
		LOG(x, "warning", "NOTIFY %s serial %u to %s: %s (retrying)", p->zone, p->serial,
		    t->text, uv_strerror(r));
}

static void notify_tick(uv_timer_t *tm)
{
	sb_dns_xfr *x = tm->data;
	uint64_t now = uv_now(x->loop);
	for (size_t i = 0; i < x->npend;) {
		struct pending *p = &x->pend[i];
		if (p->due > now) {
			i++;
			continue;
		}
		if (p->tries >= x->p->retries) {
			LOG(x, "warning", "NOTIFY %s serial %u to %s: no answer after %u tries",
			    p->zone, p->serial, x->p->targets[p->target].text, p->tries);
			pend_remove(x, i);
			continue;
		}
		notify_send(x, p);
		uint64_t wait = (uint64_t)x->backoff_ms << (p->tries < 16 ? p->tries : 16);
		p->tries++;
		p->due = now + (wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait);
		i++;
	}
	rearm(x);
}

int sb_dns_xfr_start(sb_dns_xfr *x, uv_loop_t *loop)
{
	int r;
	if (x->started)
		return 0;
	x->loop = loop;
	if ((r = uv_timer_init(loop, &x->timer)) < 0)
		return r;
	x->timer.data = x;
	x->started = true;
	uint64_t now = uv_now(loop);
	for (size_t i = 0; i < x->npend; i++)
		x->pend[i].due = now + SB_DNS_NOTIFY_DELAY_MS;
	rearm(x);
	return 0;
}

void sb_dns_xfr_stop(sb_dns_xfr *x)
{
	if (!x || !x->started || x->stopped)
		return;
	x->stopped = true;
	uv_close((uv_handle_t *)&x->timer, NULL);
	for (int i = 0; i < 2; i++)
		if (x->udp_open[i])
			uv_close((uv_handle_t *)&x->udp[i], NULL);
}

static void hist_clear_all(sb_dns_xfr *x)
{
	for (size_t i = 0; i < x->nhist; i++) {
		free(x->hist[i].zone);
		zhist_clear(&x->hist[i].h);
	}
	free(x->hist);
	x->hist = NULL;
	x->nhist = 0;
}

struct sb_dns_xfr_mark {
	const sb_dns_zones *last;
	struct policy *p;
	sb_buf fp;
	struct hist *hist;
	size_t nhist;
	struct pending *pend;
	size_t npend;
};

sb_dns_xfr_mark *sb_dns_xfr_mark_take(sb_dns_xfr *x)
{
	sb_dns_xfr_mark *m = sb_xcalloc(1, sizeof(*m));
	m->last = x->last;
	m->p = x->p ? policy_ref(x->p) : NULL;
	sb_buf_init(&m->fp);
	sb_buf_add(&m->fp, x->fp.data ? x->fp.data : "", x->fp.len);
	m->nhist = x->nhist;
	m->hist = sb_xcalloc(x->nhist + 1, sizeof(*m->hist));
	for (size_t i = 0; i < x->nhist; i++) {
		const struct hist *h = &x->hist[i];
		m->hist[i] = (struct hist){.zone = sb_xstrdup(h->zone), .serial = h->serial};
		m->hist[i].h.n = h->h.n;
		m->hist[i].h.diffs = sb_xcalloc(h->h.n + 1, sizeof(*h->h.diffs));
		for (size_t k = 0; k < h->h.n; k++)
			m->hist[i].h.diffs[k] = diff_ref(h->h.diffs[k]);
	}
	m->npend = x->npend;
	m->pend = sb_xcalloc(x->npend + 1, sizeof(*m->pend));
	for (size_t i = 0; i < x->npend; i++) {
		m->pend[i] = x->pend[i];
		m->pend[i].zone = sb_xstrdup(x->pend[i].zone);
	}
	return m;
}

void sb_dns_xfr_mark_free(sb_dns_xfr_mark *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nhist; i++) {
		free(m->hist[i].zone);
		zhist_clear(&m->hist[i].h);
	}
	free(m->hist);
	for (size_t i = 0; i < m->npend; i++)
		free(m->pend[i].zone);
	free(m->pend);
	policy_unref(m->p);
	sb_buf_free(&m->fp);
	free(m);
}

void sb_dns_xfr_rewind(sb_dns_xfr *x, sb_dns_xfr_mark *m)
{
	if (!m)
		return;
	x->last = m->last;
	policy_unref(x->p);
	x->p = m->p;
	m->p = NULL;
	sb_buf_free(&x->fp);
	x->fp = m->fp;
	sb_buf_init(&m->fp);
	hist_clear_all(x);
	x->hist = m->hist;
	x->nhist = m->nhist;
	m->hist = NULL;
	m->nhist = 0;
	pend_clear(x);
	free(x->pend);
	x->pend = m->pend;
	x->npend = x->cappend = m->npend;
	m->pend = NULL;
	m->npend = 0;
	sb_dns_xfr_mark_free(m);
	rearm(x);
}

void sb_dns_xfr_free(sb_dns_xfr *x)
{
	if (!x)
		return;
	pend_clear(x);
	free(x->pend);
	hist_clear_all(x);
	policy_unref(x->p);
	sb_buf_free(&x->fp);
	free(x);
}

int sb_dns_xfr_attach(sb_dns_xfr *x, const sb_dns_cfg *c, const char *file,
		      const sb_dns_zones *prev, sb_dns_zones *next, sb_diag *d)
{
	const sb_dns_zones *last = x->last;
	x->last = next;
	if (!c || (!c->nkeys && !c->nallow && !c->nnotify && !c->rrl_rps)) {
		pend_clear(x);
		hist_clear_all(x);
		policy_unref(x->p);
		x->p = NULL;
		sb_buf_reset(&x->fp);
		return 0;
	}
	sb_buf fp;
	sb_buf_init(&fp);
	fingerprint(c, &fp);
	bool changed = !x->p || fp.len != x->fp.len || memcmp(fp.data, x->fp.data, fp.len) != 0;
	if (changed) {
		struct policy *np;
		int r = policy_build(c, file, x->log, x->p ? x->p->rrl : NULL, &np, d);
		if (r < 0) {
			x->last = last;
			sb_buf_free(&fp);
			return r;
		}
		pend_clear(x); /* their keys and targets belong to the old policy */
		policy_unref(x->p);
		x->p = np;
		sb_buf_free(&x->fp);
		x->fp = fp;
	} else {
		sb_buf_free(&fp);
	}
	struct policy *p = x->p;

	struct state *st = sb_xcalloc(1, sizeof(*st));
	st->p = policy_ref(p);
	st->nzones = next->nzones;
	st->z = sb_xcalloc(next->nzones + 1, sizeof(*st->z));
	for (size_t h = 0; h < x->nhist; h++)
		x->hist[h].seen = false;
	for (size_t i = 0; i < next->nzones; i++) {
		const struct sb_dns_zone *nz = &next->zones[i];
		uint32_t serial = sb_dns_zone_serial(next, i);
		struct hist *h = NULL;
		bool notify = changed;
		for (size_t k = 0; k < x->nhist && !h; k++)
			if (strcmp(x->hist[k].zone, nz->name) == 0)
				h = &x->hist[k];
		if (!h) {
			x->hist = sb_xrealloc(x->hist, (x->nhist + 1) * sizeof(*x->hist));
			h = &x->hist[x->nhist++];
			*h = (struct hist){.zone = sb_xstrdup(nz->name), .serial = serial};
			notify = true;
		} else if (h->serial != serial) {
			struct diff *df = NULL;
			ssize_t pi = prev ? sb_dns_zone_find(prev, nz->name) : -1;
			if (p->nacl && prev && prev == last && pi >= 0 &&
			    sb_dns_zone_serial(prev, (size_t)pi) == h->serial)
				df = diff_zones(&prev->zones[pi], h->serial, nz, serial);
			if (!df) {
				zhist_clear(&h->h); /* IXFR from older serials goes AXFR-style */
			} else {
				/* while: a history lowered by a reload shrinks */
				while (h->h.n && h->h.n >= p->history) {
					diff_unref(h->h.diffs[0]);
					memmove(h->h.diffs, h->h.diffs + 1,
						(h->h.n - 1) * sizeof(*h->h.diffs));
					h->h.n--;
				}
				h->h.diffs =
				    sb_xrealloc(h->h.diffs, (h->h.n + 1) * sizeof(*h->h.diffs));
				h->h.diffs[h->h.n++] = df;
			}
			h->serial = serial;
			notify = true;
		}
		if (!p->nacl)
			zhist_clear(&h->h); /* nobody may transfer: keep nothing */
		h->seen = true;
		st->z[i].n = h->h.n;
		st->z[i].diffs = sb_xcalloc(h->h.n + 1, sizeof(*st->z[i].diffs));
		for (size_t k = 0; k < h->h.n; k++)
			st->z[i].diffs[k] = diff_ref(h->h.diffs[k]);
		if (notify)
			notify_queue(x, next, i);
	}
	for (size_t k = 0; k < x->nhist;) {
		if (x->hist[k].seen) {
			k++;
			continue;
		}
		free(x->hist[k].zone);
		zhist_clear(&x->hist[k].h);
		x->hist[k] = x->hist[--x->nhist];
	}
	sb_dns_zones_attach(next, st, state_free);
	return 0;
}

/* ---- answering ------------------------------------------------------------ */

sb_dns_rrl *sb_dns_xfr_rrl(const sb_dns_zones *z)
{
	const struct state *st = z ? sb_dns_zones_attachment(z) : NULL;
	return st && st->p->rrl ? st->p->rrl->r : NULL;
}

/* The peer's address (an IPv4-mapped IPv6 one as IPv4) and its text. */
static bool peer_addr(const struct sockaddr *sa, int *family, uint8_t a[16], char *text,
		      size_t size)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memset(a, 0, 16);
	snprintf(text, size, "?");
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *p = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		bool m = memcmp(p, v4mapped, 12) == 0;
		memcpy(a, m ? p + 12 : p, m ? 4 : 16);
		*family = m ? AF_INET : AF_INET6;
	} else {
		return false;
	}
	inet_ntop(*family, a, text, (socklen_t)size);
	return true;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
	size_t full = bits / 8;
	if (memcmp(a, net, full) != 0)
		return false;
	unsigned rest = bits % 8;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (a[full] & mask) == (net[full] & mask);
}

/* May peer, with the verified key of t (if any), transfer? */
static bool allowed(const struct policy *p, int family, const uint8_t *a, const sb_dns_tsig *t)
{
	for (size_t i = 0; i < p->nacl; i++) {
		const struct acl *e = &p->acl[i];
		if (e->family != family || !prefix_match(a, e->addr, e->bits))
			continue;
		if (e->key < 0 || (t->key == p->keys[e->key].k && t->error == 0))
			return true;
	}
	return false;
}

/* The response size over UDP for q (RFC 6891 payload, 512..1232), or TCP's. */
static size_t limit_of(const sb_dns_query *q, bool tcp, size_t cap)
{
	size_t max = SB_DNS_UDP_MIN;
	if (tcp)
		max = MSG_MAX;
	else if (q->edns && q->edns_payload > SB_DNS_UDP_MIN)
		max = q->edns_payload < SB_DNS_UDP_MAX ? q->edns_payload : SB_DNS_UDP_MAX;
	return max < cap ? max : cap;
}

/* A response with the question, rcode and, when soa is set, that RRset as
 * the answer; signed as t says. */
static int small_reply(const sb_dns_query *q, uint16_t rcode, bool aa, const sb_dns_rrset *soa,
		       sb_dns_tsig *t, uint8_t *resp, size_t lim, size_t cap, size_t *len)
{
	_Alignas(16) uint8_t mem[SMALL_ARENA];
	sb_dns_arena a = {mem, 0, sizeof(mem)};
	size_t room = sb_dns_tsig_room(t);
	if (lim < 12 + room)
		return SB_ERANGE;
	sb_dns_writer *w = sb_dns_writer_new(&a, resp, lim - room, q, true, q->edns);
	if (!w)
		return SB_EPARSE;
	if (soa)
		sb_dns_writer_put(w, SB_DNS_ANSWER, NULL, soa, soa->ttl);
	sb_dns_writer_set_rcode(w, rcode);
	sb_dns_writer_set_aa(w, aa);
	*len = sb_dns_writer_finish(w);
	return sb_dns_tsig_sign_response(t, resp, len, cap);
}

enum phase { P_SOA_FIRST, P_NODES, P_FROM, P_DEL, P_TO, P_ADD, P_SOA_LAST, P_DONE };

struct sb_dns_xfr_stream {
	sb_dns_zones *zs; /* our reference */
	const struct state *st;
	const struct sb_dns_zone *z;
	uint32_t serial; /* ours */
	uint8_t *query;	 /* the query without TSIG; q points into it */
	sb_dns_query q;
	sb_dns_tsig t;
	enum phase phase;
	bool ixfr;   /* the query was IXFR */
	bool single; /* IXFR, client current: our SOA alone */
	bool incr;   /* IXFR answered incrementally */
	struct diff *const *diffs;
	size_t ndiffs, di;
	size_t k, j, rec_off;
	size_t messages, records;
	sb_dns_writer *w; /* one for the whole transfer: libknot keeps its arrays */
	uint8_t *wbuf;	  /* where w writes, MSG_MAX bytes */
	uint8_t *mem;	  /* owner names of the message being written */
	uint8_t owner[SB_DNS_NAME_MAX];
	char peer[INET6_ADDRSTRLEN];
	const char *keyname;
};

/* A relative name and the origin, as one wire name in s->owner. */
static const uint8_t *owner_of(struct sb_dns_xfr_stream *s, const uint8_t *rel, size_t n)
{
	memcpy(s->owner, rel, n);
	memcpy(s->owner + n, s->z->origin, s->z->origin_len);
	return s->owner;
}

/* The RRset to write next (from record rec_off on), or false when done. */
static bool item(struct sb_dns_xfr_stream *s, const uint8_t **owner, sb_dns_rrset *rs)
{
	const struct sb_dns_zone *z = s->z;
	for (;;) {
		const struct diff *d = s->di < s->ndiffs ? s->diffs[s->di] : NULL;
		switch (s->phase) {
		case P_SOA_FIRST:
		case P_SOA_LAST:
			*owner = z->origin;
			*rs = *z->soa;
			goto found;
		case P_NODES: {
			if (s->k >= z->nnodes) {
				s->phase = P_SOA_LAST;
				continue;
			}
			const struct sb_dns_node *nd = &z->nodes[s->k];
			if (s->j >= nd->nrrsets) {
				s->k++;
				s->j = 0;
				continue;
			}
			if (nd->rrsets[s->j].type == SB_DNS_SOA) {
				s->j++;
				continue;
			}
			*owner = owner_of(s, z->names + nd->name, nd->name_len);
			*rs = nd->rrsets[s->j];
			goto found;
		}
		case P_FROM:
			if (!d) {
				s->phase = P_SOA_LAST;
				continue;
			}
			*owner = z->origin;
			*rs = d->from_soa;
			goto found;
		case P_DEL:
		case P_ADD: {
			size_t n = s->phase == P_DEL ? d->ndel : d->nadd;
			if (s->j >= n) {
				s->phase = s->phase == P_DEL ? P_TO : P_FROM;
				s->di += s->phase == P_FROM;
				s->j = 0;
				continue;
			}
			const struct drr *e = s->phase == P_DEL ? &d->del[s->j] : &d->add[s->j];
			*owner = owner_of(s, e->name, e->name_len);
			*rs = e->rs;
			goto found;
		}
		case P_TO:
			*owner = z->origin;
			*rs = d->to_soa;
			goto found;
		case P_DONE: return false;
		}
	}
found:
	if (s->rec_off)
		sb_dns_rrset_slice(rs, s->rec_off, rs->count - s->rec_off, rs);
	return true;
}

static void advance(struct sb_dns_xfr_stream *s)
{
	s->rec_off = 0;
	switch (s->phase) {
	case P_SOA_FIRST:
		s->phase = s->single ? P_DONE : s->incr ? P_FROM : P_NODES;
		s->k = s->j = 0;
		break;
	case P_SOA_LAST: s->phase = P_DONE; break;
	case P_FROM:
		s->phase = P_DEL;
		s->j = 0;
		break;
	case P_TO:
		s->phase = P_ADD;
		s->j = 0;
		break;
	case P_NODES:
	case P_DEL:
	case P_ADD: s->j++; break;
	case P_DONE: break;
	}
}

/* Fill one message with as many RRsets as fit; an RRset larger than a
 * message is split between messages. */
static int stream_message(struct sb_dns_xfr_stream *s, uint8_t *resp, size_t cap, size_t *len)
{
	sb_dns_arena a = {s->mem, 0, OWNER_ARENA};
	sb_dns_writer *w = s->w;
	sb_dns_writer_reset(w);
	size_t n = 0;
	const uint8_t *owner;
	sb_dns_rrset rs;
	while (item(s, &owner, &rs)) {
		size_t ol = 0;
		while (owner[ol])
			ol += 1 + (size_t)owner[ol];
		uint8_t *o = sb_dns_arena_alloc(&a, ol + 1); /* libknot keeps the pointer */
		if (!o)
			break;
		memcpy(o, owner, ol + 1);
		if (sb_dns_writer_put(w, SB_DNS_ANSWER, o, &rs, rs.ttl) == 0) {
			n += rs.count;
			advance(s);
			continue;
		}
		/* it does not fit whole: as many of its records as fit */
		size_t fit = 0;
		for (; fit < rs.count; fit++) {
			sb_dns_rrset one;
			sb_dns_rrset_slice(&rs, fit, 1, &one);
			if (sb_dns_writer_put(w, SB_DNS_ANSWER, o, &one, one.ttl) < 0)
				break;
		}
		n += fit;
		if (fit == rs.count)
			advance(s);
		else
			s->rec_off += fit;
		if (n == 0)
			return SB_ERANGE; /* one record larger than a message */
		break;
	}
	s->records += n;
	*len = sb_dns_writer_finish(w);
	if (*len + sb_dns_tsig_room(&s->t) > cap)
		return SB_ERANGE;
	memcpy(resp, s->wbuf, *len);
	if (sb_dns_tsig_sign_response(&s->t, resp, len, cap) < 0)
		return SB_ERANGE;
	s->messages++;
	return 1;
}

int sb_dns_xfr_next(sb_dns_xfr_stream *s, uint8_t *resp, size_t cap, size_t *resp_len)
{
	if (s->phase == P_DONE)
		return 0;
	return stream_message(s, resp, cap, resp_len);
}

void sb_dns_xfr_stream_free(sb_dns_xfr_stream *s)
{
	if (!s)
		return;
	struct policy *p = s->st->p;
	const char *kind = !s->ixfr ? "AXFR" : s->incr ? "IXFR" : "IXFR (whole zone)";
	if (p->log) {
		if (s->phase != P_DONE)
			p->log("warning", "%s %s serial %u to %s%s%s: stopped after %zu messages",
			       kind, s->z->name, s->serial, s->peer, s->keyname ? " key " : "",
			       s->keyname ? s->keyname : "", s->messages);
		else if (s->single)
			p->log("info", "IXFR %s to %s: current at serial %u", s->z->name, s->peer,
			       s->serial);
		else
			p->log("info", "%s %s serial %u to %s%s%s: %zu records in %zu messages",
			       kind, s->z->name, s->serial, s->peer, s->keyname ? " key " : "",
			       s->keyname ? s->keyname : "", s->records, s->messages);
	}
	sb_dns_writer_free(s->w);
	free(s->wbuf);
	free(s->mem);
	free(s->query);
	sb_dns_free(s->zs);
	free(s);
}

/* The zone whose apex is the qname, or -1. */
static ssize_t apex_of(const sb_dns_zones *zs, const sb_dns_query *q)
{
	for (size_t i = 0; i < zs->nzones; i++)
		if (zs->zones[i].origin_len == q->qname_len &&
		    memcmp(zs->zones[i].origin, q->lower, q->qname_len) == 0)
			return (ssize_t)i;
	return -1;
}

/* A query sb_dns_answer_ex deferred: TSIG, AXFR, IXFR. */
static int deferred(const sb_dns_zones *zs, const struct state *st, const uint8_t *query,
		    size_t qlen, const struct sockaddr *peer, bool tcp, uint8_t *resp, size_t cap,
		    size_t *resp_len, sb_dns_xfr_stream **stream)
{
	_Alignas(16) uint8_t pmem[8192];
	sb_dns_arena pa = {pmem, 0, sizeof(pmem)};
	const struct policy *p = st->p;
	sb_dns_query q;
	sb_dns_tsig t;
	memset(&t, 0, sizeof(t));
	uint8_t *wire = sb_xmalloc(qlen);
	size_t wlen = qlen;
	int r;
	if (sb_dns_wire_parse(query, qlen, &pa, &q) != SB_DNS_PARSE_OK) {
		r = SB_EPARSE; /* sb_dns_answer_ex parsed it: cannot happen */
		goto out;
	}
	if (q.tsig) {
		if (sb_dns_tsig_verify_query(query, qlen, p->keyv, p->nkeys, &t, wire, &wlen) < 0) {
			r = small_reply(&q, SB_DNS_FORMERR, false, NULL, &t, resp,
					limit_of(&q, tcp, cap), cap, resp_len);
			goto out;
		}
		if (t.error) {
			/* RFC 8945 5.2: NOTAUTH, the TSIG error in the record */
			r = small_reply(&q, SB_DNS_NOTAUTH, false, NULL, &t, resp,
					limit_of(&q, tcp, cap), cap, resp_len);
			goto out;
		}
		pa.used = 0;
		if (sb_dns_wire_parse(wire, wlen, &pa, &q) != SB_DNS_PARSE_OK) {
			r = SB_EPARSE;
			goto out;
		}
	} else {
		memcpy(wire, query, qlen);
	}
	size_t lim = limit_of(&q, tcp, cap);
	size_t room = sb_dns_tsig_room(&t);
	bool xfr = q.qtype == SB_DNS_AXFR || q.qtype == SB_DNS_IXFR;
	if (!xfr || q.opcode != SB_DNS_OPCODE_QUERY || q.qclass != SB_DNS_CLASS_IN ||
	    (q.edns && q.edns_version > 0)) {
		/* an ordinary query that was signed: answered as usual, then signed */
		if (lim < 12 + room) {
			r = SB_ERANGE;
			goto out;
		}
		r = sb_dns_answer_ex(zs, wire, wlen, resp, lim - room, tcp, 0, resp_len);
		if (r == 0)
			r = sb_dns_tsig_sign_response(&t, resp, resp_len, cap);
		goto out;
	}
	if (!tcp && q.qtype == SB_DNS_AXFR) {
		r = small_reply(&q, SB_DNS_NOTIMP, false, NULL, &t, resp, lim, cap, resp_len);
		goto out;
	}
	char ptext[INET6_ADDRSTRLEN];
	uint8_t pa16[16];
	int fam = 0;
	const char *kind = q.qtype == SB_DNS_AXFR ? "AXFR" : "IXFR";
	char zname[SB_DNS_NAME_MAX * 4];
	if (!peer_addr(peer, &fam, pa16, ptext, sizeof(ptext)) || !allowed(p, fam, pa16, &t)) {
		if (tcp && p->log)
			p->log("warning", "%s %s refused to %s: %s", kind,
			       sb_dns_name_text(q.lower, q.qname_len, zname, sizeof(zname)), ptext,
			       q.tsig ? "its key is not allowed from there"
				      : "not in allow_transfer, or unsigned");
		r = small_reply(&q, SB_DNS_REFUSED, false, NULL, &t, resp, lim, cap, resp_len);
		goto out;
	}
	ssize_t zi = apex_of(zs, &q);
	if (zi < 0) {
		r = small_reply(&q, SB_DNS_NOTAUTH, false, NULL, &t, resp, lim, cap, resp_len);
		goto out;
	}
	const struct sb_dns_zone *z = &zs->zones[zi];
	uint32_t serial = sb_dns_zone_serial(zs, (size_t)zi);
	if (q.qtype == SB_DNS_IXFR && !q.ixfr_soa) {
		r = small_reply(&q, SB_DNS_FORMERR, false, NULL, &t, resp, lim, cap, resp_len);
		goto out;
	}
	if (!tcp) {
		/* RFC 1995 2: our SOA; a client behind it retries over TCP */
		r = small_reply(&q, SB_DNS_NOERROR, true, z->soa, &t, resp, lim, cap, resp_len);
		goto out;
	}

	sb_dns_xfr_stream *s = sb_xcalloc(1, sizeof(*s));
	s->zs = sb_dns_zones_ref(zs);
	s->st = st;
	s->z = z;
	s->serial = serial;
	s->query = wire;
	wire = NULL;
	pa.used = 0;
	sb_dns_wire_parse(s->query, wlen, &pa, &s->q); /* q points into s->query now */
	s->t = t;
	s->mem = sb_xmalloc(OWNER_ARENA);
	s->wbuf = sb_xmalloc(MSG_MAX);
	s->w =
	    sb_dns_writer_new_heap(s->wbuf, MSG_MAX - sb_dns_tsig_room(&t), &s->q, true, s->q.edns);
	if (!s->w) {
		sb_dns_xfr_stream_free(s);
		r = SB_ERANGE;
		goto out;
	}
	sb_dns_writer_set_aa(s->w, true);
	snprintf(s->peer, sizeof(s->peer), "%s", ptext);
	for (size_t i = 0; t.key && i < p->nkeys; i++)
		if (p->keys[i].k == t.key)
			s->keyname = p->keys[i].name;
	if (q.qtype == SB_DNS_IXFR) {
		s->ixfr = true;
		const struct zhist *h = &st->z[zi];
		if (!sb_dns_serial_gt(serial, q.ixfr_serial)) {
			s->single = true; /* current (or ahead of us): our SOA alone */
		} else {
			for (size_t i = 0; i < h->n && !s->incr; i++)
				if (h->diffs[i]->from == q.ixfr_serial &&
				    h->diffs[h->n - 1]->to == serial) {
					s->incr = true;
					s->diffs = (struct diff *const *)h->diffs;
					s->ndiffs = h->n;
					s->di = i;
				}
		}
	}
	r = stream_message(s, resp, cap, resp_len);
	if (r < 0) {
		sb_dns_xfr_stream_free(s);
		goto out;
	}
	r = 0;
	if (s->phase == P_DONE || !stream)
		sb_dns_xfr_stream_free(s);
	else
		*stream = s;
out:
	free(wire);
	return r;
}

int sb_dns_xfr_answer(const sb_dns_zones *z, const uint8_t *query, size_t qlen,
		      const struct sockaddr *peer, bool tcp, uint8_t *resp, size_t cap,
		      size_t *resp_len, sb_dns_xfr_stream **stream)
{
	if (stream)
		*stream = NULL;
	const struct state *st = z ? sb_dns_zones_attachment(z) : NULL;
	if (!st)
		return sb_dns_answer(z, query, qlen, resp, cap, tcp, resp_len);
	int r = sb_dns_answer_ex(z, query, qlen, resp, cap, tcp, SB_DNS_ANSWER_DEFER, resp_len);
	if (r != SB_DNS_DEFERRED)
		return r;
	return deferred(z, st, query, qlen, peer, tcp, resp, cap, resp_len, stream);
}
