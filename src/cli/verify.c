/*
 * switchboard verify: the plan's verification steps, run against a running
 * edge (docs/verify.md).
 *
 *  1. dns      every host of the environment resolves, through Switchboard's
 *              own DNS, to exactly the zone's addresses (A and AAAA);
 *  2. route    every route reaches its deployment, as the deployment proof
 *              the edge signs proves (X-Switchboard-Verify);
 *  3. health   every deployment's /health answers healthy JSON through the
 *              edge (and the proof names that deployment);
 *  4. webhook  every webhook endpoint of the environment reaches its
 *              handler's deployment (same proof);
 *  5. vars     every URL var names a host of the same environment (the
 *              consistency check of src/route/check.c).
 *
 * The clients are deliberately small and blocking: one request or query at
 * a time, each with a timeout, so that a check that hangs says which one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/edge.h"
#include "http/sign.h"
#include "route/check.h"
#include "store/store.h"

#define IO_TIMEOUT_MS 5000
#define DNS_TIMEOUT_MS 2000
#define MAX_RESPONSE (1024 * 1024) /* bytes of a response we look at */
#define MAX_ADDRS 32

static const char usage_verify[] =
    "usage: switchboard verify -c PATH [--env ENV] [--pr N] [--json] [--data DIR]\n"
    "                          [--listen HOST:PORT] [--dns HOST:PORT]\n"
    "\n"
    "Check a running edge against its declaration: every host resolves through\n"
    "Switchboard's DNS to the zone's addresses, every route reaches its deployment\n"
    "(proved by a signature the edge makes with the deployment's secret), every\n"
    "deployment's /health is healthy through the edge, every webhook endpoint\n"
    "reaches its handler, and every URL var names a host of the same environment.\n"
    "The edge is reached at [listen] http and dns of the declaration, or where\n"
    "--listen and --dns say (an edge started with serve --listen or --dns).\n"
    "  --env ENV           production (default), staging or preview\n"
    "  --pr N              the preview of pull request N (required with --env preview)\n"
    "  --data DIR          the edge's data directory (default: data_dir of the\n"
    "                      declaration)\n"
    "  --listen HOST:PORT  the edge's HTTP address (default: [listen] http)\n"
    "  --dns HOST:PORT     the edge's DNS address (default: [listen] dns)\n"
    "  --json              one JSON document: {environment, pr, checks: [{name, ok,\n"
    "                      skipped, detail}], passed, failed, skipped} (docs/verify.md)\n"
    "Exit status: 0 every check passed, 1 a check failed, 2 usage or load error.\n";

typedef enum { R_PASS, R_FAIL, R_SKIP } rstate;

typedef struct result {
	char *name;
	rstate st;
	char *detail;
} result;

/* A route to test: the host actually requested (a tenant's host for the
 * tenant wildcard) and the path (the route's literal prefix). */
typedef struct vroute {
	const sb_route *ro;
	const sb_deployment *dp;
	char host[256];
	bool tenant;	  /* stands for {tenant}.<zone> */
	const char *skip; /* why it cannot be tested, or NULL */
} vroute;

typedef struct vctx {
	sb_loaded l;
	sb_env env;
	uint32_t pr;
	bool json;
	const char *data_dir;
	const char *listen_opt, *dns_opt; /* --listen, --dns: over [listen] */
	uint8_t master[32], prev[32];
	bool has_prev;
	struct sockaddr_storage http, dns;
	socklen_t http_len, dns_len;
	bool dns_on;
	char http_text[160], dns_text[160];
	sb_pool *pool; /* derived preview deployments */
	const sb_deployment **deps;
	size_t ndeps;
	vroute *routes;
	size_t nroutes;
	result *res;
	size_t nres;
} vctx;

/* ---- results -------------------------------------------------------------- */

static void report(vctx *v, rstate st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The length of the well-formed UTF-8 character at s (n bytes left), or 0:
 * overlong forms, surrogates and code points over U+10FFFF are not. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
	if (s[0] < 0xC2 || s[0] > 0xF4 || n < len)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
	    (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
		return 0;
	return len;
}

/* text as one printable line of valid UTF-8: what an upstream or a fake
 * edge says ends up in a detail, and a newline in it would print a line of
 * its own (a forged "✓"), an escape sequence would run in the terminal, and
 * a byte that is not UTF-8 (or a character cut at a length limit) would
 * make the --json document unreadable. Such bytes, C1 controls included,
 * are shown as \xNN, a backslash doubled (as sb_cli_shown does). */
static char *printable(const char *text)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	sb_buf b;
	sb_buf_init(&b);
	for (size_t i = 0; i < n;) {
		size_t l = s[i] < 0x80 ? 1 : utf8_len(s + i, n - i);
		bool c1 = l == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0;
		if (l == 1 && s[i] >= 0x20 && s[i] != 0x7F && s[i] != '\\') {
			sb_buf_addc(&b, (char)s[i]);
		} else if (l > 1 && !c1) {
			sb_buf_add(&b, text + i, l);
		} else if (s[i] == '\\') {
			sb_buf_adds(&b, "\\\\");
		} else {
			for (size_t k = 0; k < (l ? l : 1); k++) {
				char e[4] = {'\\', 'x', hex[s[i + k] >> 4], hex[s[i + k] & 15]};
				sb_buf_add(&b, e, 4);
			}
		}
		i += l ? l : 1;
	}
	return sb_buf_steal(&b);
}

static void report(vctx *v, rstate st, const char *name, const char *fmt, ...)
{
	sb_buf b;
	va_list ap;
	sb_buf_init(&b);
	va_start(ap, fmt);
	sb_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	v->res = sb_xrealloc(v->res, (v->nres + 1) * sizeof(*v->res));
	result *r = &v->res[v->nres++];
	r->name = printable(name);
	r->st = st;
	r->detail = printable(b.data ? b.data : "");
	sb_buf_free(&b);
	if (!v->json) {
		/* as they happen: a slow check shows where it is */
		static const char *const mark[] = {"\u2713", "\u2717", "-"};
		printf("%s %s: %s%s\n", mark[st], r->name, st == R_SKIP ? "skipped: " : "",
		       r->detail);
		fflush(stdout);
	}
}

static void print_summary(const vctx *v, size_t passed, size_t failed, size_t skipped)
{
	if (!v->json) {
		char label[32];
		if (v->env == SB_ENV_PREVIEW)
			snprintf(label, sizeof(label), "preview %u", v->pr);
		else
			snprintf(label, sizeof(label), "%s", sb_env_name(v->env));
		printf("verify %s: %zu passed, %zu failed, %zu skipped\n", label, passed, failed,
		       skipped);
		return;
	}
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "{\"environment\": ");
	const char *en = sb_env_name(v->env);
	sb_buf_add_json_str(&b, en, strlen(en));
	if (v->pr)
		sb_buf_addf(&b, ", \"pr\": %u", v->pr);
	else
		sb_buf_adds(&b, ", \"pr\": null");
	sb_buf_adds(&b, ",\n \"checks\": [");
	for (size_t i = 0; i < v->nres; i++) {
		const result *r = &v->res[i];
		sb_buf_adds(&b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
		sb_buf_add_json_str(&b, r->name, strlen(r->name));
		sb_buf_addf(&b, ", \"ok\": %s, \"skipped\": %s, \"detail\": ",
			    r->st == R_PASS   ? "true"
			    : r->st == R_FAIL ? "false"
					      : "null",
			    r->st == R_SKIP ? "true" : "false");
		sb_buf_add_json_str(&b, r->detail, strlen(r->detail));
		sb_buf_addc(&b, '}');
	}
	sb_buf_addf(&b, "%s],\n \"passed\": %zu, \"failed\": %zu, \"skipped\": %zu}\n",
		    v->nres ? "\n " : "", passed, failed, skipped);
	fputs(b.data, stdout);
	sb_buf_free(&b);
}

/* ---- addresses ------------------------------------------------------------ */

/* "host:port" ("[::1]:53") into addr; a wildcard host means this machine. */
static int parse_hostport(const char *text, struct sockaddr_storage *addr, socklen_t *alen)
{
	const char *colon = strrchr(text, ':');
	char host[128];
	uint64_t port;
	if (!colon)
		return SB_EINVAL;
	size_t hl = (size_t)(colon - text);
	const char *h = text;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host) || sb_parse_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0 ||
	    port == 0)
		return SB_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(addr, 0, sizeof(*addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (a4->sin_addr.s_addr == htonl(INADDR_ANY))
			a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*alen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
			a6->sin6_addr = in6addr_loopback;
		*alen = sizeof(*a6);
	} else {
		return SB_EINVAL;
	}
	return 0;
}

static int socket_to(const struct sockaddr_storage *addr, socklen_t alen, int type, int ms)
{
	int fd = socket(addr->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)addr, alen) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static void random_hex(char *out, size_t nbytes)
{
	uint8_t raw[32];
	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
		/* no entropy source: a nonce still has to differ per request */
		static uint64_t ctr;
		uint64_t x = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL) ^ ++ctr;
		for (size_t i = 0; i < nbytes; i++, x = x * 6364136223846793005ULL + 1)
			raw[i] = (uint8_t)(x >> 56);
	}
	sb_sign_hex(raw, nbytes, out, 2 * nbytes + 1);
}

/* ---- DNS ------------------------------------------------------------------ */

/* The (possibly compressed) name at b[*o], in lower case without the final
 * dot, into out; *o moves past it. 0, or -1 when malformed or too long. */
static int dns_read_name(const uint8_t *b, size_t n, size_t *o, char *out, size_t size)
{
	size_t p = *o, len = 0;
	bool jumped = false;
	for (int hops = 0; hops < 128; hops++) {
		if (p >= n)
			return -1;
		uint8_t l = b[p];
		if ((l & 0xC0) == 0xC0) {
			if (p + 1 >= n)
				return -1;
			if (!jumped)
				*o = p + 2;
			jumped = true;
			p = (size_t)(l & 0x3F) << 8 | b[p + 1];
			continue;
		}
		if (l & 0xC0)
			return -1;
		if (l == 0) {
			if (!jumped)
				*o = p + 1;
			out[len] = '\0';
			return 0;
		}
		if (p + 1 + l > n || len + l + 2 > size)
			return -1;
		if (len)
			out[len++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char)b[p + 1 + i];
			out[len++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		p += 1u + l;
	}
	return -1;
}

typedef struct dns_answer {
	int rcode;
	bool aa;      /* the authority answered, not a cache */
	size_t other; /* records of another name (a CNAME chain, or not ours) */
	uint8_t addr[MAX_ADDRS][16];
	size_t naddr;
} dns_answer;

static long ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The question q (n bytes: name, type, class) and a's, with the name's
 * letters in any case (a server may echo it in another). */
static bool dns_same_question(const uint8_t *q, const uint8_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t x = q[i], y = a[i];
		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

/* Is resp the answer to the question q (id, QR, opcode 0, the same single
 * question)? Anything else on the socket is a stray datagram: a late answer
 * to another query, or not DNS at all. */
static bool dns_is_answer(const uint8_t *q, size_t qn, const uint8_t *resp, size_t n)
{
	return n >= qn && resp[0] == q[0] && resp[1] == q[1] && (resp[2] & 0x80) &&
	       (resp[2] & 0x78) == 0 && resp[4] == 0 && resp[5] == 1 &&
	       dns_same_question(q + 12, resp + 12, qn - 12);
}

/* One question to Switchboard's DNS over UDP; the answer's records of type
 * qtype owned by host. Returns 0, or -1 with err saying why there is no
 * answer. DNS_TIMEOUT_MS per attempt, whatever else arrives meanwhile. */
static int dns_query(const vctx *v, const char *host, uint16_t qtype, dns_answer *a, char *err,
		     size_t errlen)
{
	uint8_t q[320], resp[4096]; /* q: header, a name of at most 255 bytes, OPT */
	size_t qn = 12, alen = qtype == 1 ? 4 : 16;
	int fd = -1, rc = -1;
	uint8_t id[2];
	char want[256], owner[256];

	memset(a, 0, sizeof(*a));
	if (getrandom(id, 2, 0) != 2)
		id[0] = 0x5b, id[1] = 0x1d;
	memset(q, 0, 12);
	q[0] = id[0];
	q[1] = id[1];
	q[5] = 1; /* one question; RD clear: we ask the authority itself */
	for (const char *p = host; *p;) {
		size_t l = strcspn(p, ".");
		if (l == 0 || l > 63 || qn + l + 6 + 11 > sizeof(q) - 1) {
			snprintf(err, errlen, "cannot ask for \"%.200s\": not a DNS name", host);
			goto out;
		}
		q[qn++] = (uint8_t)l;
		memcpy(q + qn, p, l);
		qn += l;
		p += l + (p[l] == '.');
	}
	q[qn++] = 0;
	q[qn++] = (uint8_t)(qtype >> 8);
	q[qn++] = (uint8_t)qtype;
	q[qn++] = 0;
	q[qn++] = 1; /* IN */
	{
		size_t o = 12;
		if (dns_read_name(q, qn, &o, want, sizeof(want)) < 0) {
			snprintf(err, errlen, "cannot ask for \"%.200s\": not a DNS name", host);
			goto out;
		}
	}

	/* EDNS (RFC 6891), offering resp's size: without it an answer is cut
	 * at 512 bytes, 16 or so AAAA records, and a zone with more addresses
	 * would fail as truncated. The OPT record follows the question, which
	 * is q[12, qn) as dns_is_answer compares it. */
	static const uint8_t opt[11] = {0, 0, 41, sizeof(resp) >> 8, sizeof(resp) & 0xff};
	memcpy(q + qn, opt, sizeof(opt));
	q[11] = 1; /* ARCOUNT */
	size_t sendn = qn + sizeof(opt);

	if ((fd = socket_to(&v->dns, v->dns_len, SOCK_DGRAM, DNS_TIMEOUT_MS)) < 0) {
		snprintf(err, errlen, "cannot reach DNS at %s: %s", v->dns_text, strerror(errno));
		goto out;
	}
	ssize_t got = -1;
	int rerr = EAGAIN;
	for (int attempt = 0; attempt < 2 && got < 0 && rerr == EAGAIN; attempt++) {
		if (send(fd, q, sendn, 0) != (ssize_t)sendn) {
			snprintf(err, errlen, "cannot send to DNS at %s: %s", v->dns_text,
				 strerror(errno));
			goto out;
		}
		/* the wait is for this attempt as a whole: a server that keeps
		 * sending other datagrams must not hold verify for ever */
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			long spent = ms_since(&t0);
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int pr = spent >= DNS_TIMEOUT_MS
				     ? 0
				     : poll(&pfd, 1, (int)(DNS_TIMEOUT_MS - spent));
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0) {
				rerr = pr == 0 ? EAGAIN : errno;
				break;
			}
			ssize_t r = recv(fd, resp, sizeof(resp), MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				continue;
			if (r < 0) {
				rerr = errno; /* refused: nothing listens, no point asking again */
				break;
			}
			if (dns_is_answer(q, qn, resp, (size_t)r)) {
				got = r;
				break;
			}
		}
	}
	if (got < 0) {
		snprintf(err, errlen, "no DNS answer from %s: %s", v->dns_text,
			 rerr == EAGAIN ? "timed out" : strerror(rerr));
		goto out;
	}
	size_t n = (size_t)got, o = qn;
	if (resp[2] & 0x02) {
		snprintf(err, errlen, "DNS answer from %s is truncated", v->dns_text);
		goto out;
	}
	a->rcode = resp[3] & 0x0F;
	a->aa = (resp[2] & 0x04) != 0;
	unsigned an = (unsigned)resp[6] << 8 | resp[7];
	for (unsigned i = 0; i < an; i++) {
		if (dns_read_name(resp, n, &o, owner, sizeof(owner)) < 0 || o + 10 > n)
			goto bad;
		uint16_t type = (uint16_t)(resp[o] << 8 | resp[o + 1]);
		uint16_t cls = (uint16_t)(resp[o + 2] << 8 | resp[o + 3]);
		size_t rdlen = (size_t)resp[o + 8] << 8 | resp[o + 9];
		o += 10;
		if (o + rdlen > n)
			goto bad;
		if (strcmp(owner, want) != 0)
			a->other++;
		else if (type == qtype && cls == 1 && rdlen == alen && a->naddr < MAX_ADDRS)
			memcpy(a->addr[a->naddr++], resp + o, alen);
		o += rdlen;
	}
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "malformed DNS answer from %s", v->dns_text);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool addr_in(const uint8_t (*set)[16], size_t n, const uint8_t *a, size_t alen)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(set[i], a, alen) == 0)
			return true;
	return false;
}

static void addrs_text(sb_buf *b, const uint8_t (*set)[16], size_t n, int af)
{
	char t[INET6_ADDRSTRLEN];
	if (n == 0)
		sb_buf_adds(b, "none");
	for (size_t i = 0; i < n; i++) {
		inet_ntop(af, set[i], t, sizeof(t));
		sb_buf_addf(b, "%s%s", i ? " " : "", t);
	}
}

static const sb_zone_decl *zone_of(const sb_decl *d, const char *host)
{
	const sb_zone_decl *best = NULL;
	size_t hl = strlen(host);
	for (size_t z = 0; z < d->nzones; z++) {
		size_t zl = strlen(d->zones[z].name);
		if (hl >= zl && strcasecmp(host + hl - zl, d->zones[z].name) == 0 &&
		    (hl == zl || host[hl - zl - 1] == '.') && (!best || zl > strlen(best->name)))
			best = &d->zones[z];
	}
	return best;
}

static void check_dns(vctx *v, const char *host)
{
	char name[320], err[256];
	snprintf(name, sizeof(name), "dns %s", host);
	const sb_zone_decl *z = zone_of(v->l.decl, host);
	if (!z) {
		report(v, R_SKIP, name,
		       "not in a declared zone: Switchboard's DNS does not serve it");
		return;
	}
	if (!v->dns_on) {
		report(v, R_FAIL, name,
		       "the declaration has no [listen] dns (nor is --dns given): "
		       "Switchboard serves no DNS, so nothing resolves %s",
		       host);
		return;
	}
	uint8_t want4[MAX_ADDRS][16], want6[MAX_ADDRS][16];
	size_t n4 = 0, n6 = 0;
	for (size_t i = 0; i < z->naddresses; i++) {
		if (n4 < MAX_ADDRS && inet_pton(AF_INET, z->addresses[i], want4[n4]) == 1)
			n4++;
		else if (n6 < MAX_ADDRS && inet_pton(AF_INET6, z->addresses[i], want6[n6]) == 1)
			n6++;
	}
	sb_buf b;
	sb_buf_init(&b);
	bool ok = true;
	static const struct {
		uint16_t type;
		int af;
		size_t len;
		const char *name;
	} qs[] = {{1, AF_INET, 4, "A"}, {28, AF_INET6, 16, "AAAA"}};
	for (size_t k = 0; k < SB_ARRAY_LEN(qs); k++) {
		dns_answer a;
		const uint8_t(*want)[16] = k == 0 ? want4 : want6;
		size_t nw = k == 0 ? n4 : n6;
		if (dns_query(v, host, qs[k].type, &a, err, sizeof(err)) < 0) {
			report(v, R_FAIL, name, "%s", err);
			sb_buf_free(&b);
			return;
		}
		if (k)
			sb_buf_adds(&b, "; ");
		if (!a.aa && (a.rcode == 0 || a.rcode == 3)) {
			/* a resolver or a cache at [listen] dns: what it says may be
			 * stale, and is not what Switchboard serves */
			ok = false;
			sb_buf_addf(&b,
				    "%s: not authoritative (AA clear): %s is a resolver or a "
				    "cache, not Switchboard's DNS",
				    qs[k].name, v->dns_text);
			continue;
		}
		if (a.rcode != 0) {
			ok = false;
			sb_buf_addf(&b, "%s: %s", qs[k].name,
				    a.rcode == 3   ? "NXDOMAIN (the host does not exist)"
				    : a.rcode == 5 ? "REFUSED"
				    : a.rcode == 2 ? "SERVFAIL"
						   : "error");
			continue;
		}
		bool same = true;
		for (size_t i = 0; i < nw; i++)
			same &= addr_in((const uint8_t(*)[16])a.addr, a.naddr, want[i], qs[k].len);
		for (size_t i = 0; i < a.naddr; i++)
			same &= addr_in(want, nw, a.addr[i], qs[k].len);
		sb_buf_addf(&b, "%s ", qs[k].name);
		addrs_text(&b, (const uint8_t(*)[16])a.addr, a.naddr, qs[k].af);
		if (!same) {
			ok = false;
			sb_buf_adds(&b, " (expected ");
			addrs_text(&b, want, nw, qs[k].af);
			sb_buf_addc(&b, ')');
		}
		if (a.other)
			sb_buf_addf(&b, " (and %zu record%s of another name)", a.other,
				    a.other == 1 ? "" : "s");
	}
	report(v, ok ? R_PASS : R_FAIL, name, "%s", b.data);
	sb_buf_free(&b);
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef struct resp {
	int status;
	char *raw; /* head (NUL-split) and body */
	size_t raw_len;
	const char *body;
	size_t body_len;
	const char *deployment; /* X-Switchboard-Deployment, or NULL */
	const char *proof;	/* X-Switchboard-Verify-Signature, or NULL */
	int nproof, ndeployment;
	const char *ctype;
} resp;

static void resp_free(resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static const char *trim_ows(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* One request to the edge with Connection: close; the whole answer is read
 * (up to MAX_RESPONSE). Returns 0, or -1 with err saying why. */
static int http_do(const vctx *v, const char *method, const char *host, const char *path,
		   const char *nonce, const char *body, resp *out, char *err, size_t errlen)
{
	sb_buf req, in;
	int fd = -1, rc = -1;
	sb_buf_init(&req);
	sb_buf_init(&in);
	memset(out, 0, sizeof(*out));

	sb_buf_addf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: switchboard-verify/%s\r\n",
		    method, path, host, SB_VERSION);
	sb_buf_addf(&req, "Accept: application/json\r\nConnection: close\r\n%s: %s\r\n",
		    SB_PROOF_REQUEST_HEADER, nonce);
	if (body)
		sb_buf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			    strlen(body));
	sb_buf_adds(&req, "\r\n");
	if (body)
		sb_buf_adds(&req, body);

	if ((fd = socket_to(&v->http, v->http_len, SOCK_STREAM, IO_TIMEOUT_MS)) < 0) {
		snprintf(err, errlen, "cannot connect to the edge at %s: %s", v->http_text,
			 strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < req.len;) {
		ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
		if (w <= 0) {
			snprintf(err, errlen, "cannot send to the edge at %s: %s", v->http_text,
				 strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	char chunk[16384];
	/* IO_TIMEOUT_MS for the whole answer, not per read: an edge that
	 * trickles a byte now and then must not hold verify for ever */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (in.len < MAX_RESPONSE) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = spent >= IO_TIMEOUT_MS ? 0 : poll(&pfd, 1, (int)(IO_TIMEOUT_MS - spent));
		if (pr < 0 && errno == EINTR)
			continue;
		ssize_t n = pr > 0 ? recv(fd, chunk, sizeof(chunk), 0) : -1;
		if (pr == 0)
			errno = EAGAIN;
		if (n == 0)
			break;
		if (n < 0) {
			if (in.len && strstr(in.data, "\r\n\r\n"))
				break; /* the head is there: enough to judge */
			snprintf(err, errlen, "no answer from the edge at %s: %s", v->http_text,
				 errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		sb_buf_add(&in, chunk, (size_t)n);
	}
	sb_buf_addc(&in, '\0');
	char *hend = strstr(in.data, "\r\n\r\n");
	if (!hend || strncmp(in.data, "HTTP/1.", 7) != 0 || in.len < 13) {
		snprintf(err, errlen, "the edge at %s did not answer HTTP", v->http_text);
		goto out;
	}
	uint64_t st;
	if (sb_parse_u64(in.data + 9, 3, 999, &st) < 0) {
		snprintf(err, errlen, "bad status line from the edge at %s", v->http_text);
		goto out;
	}
	out->status = (int)st;
	*hend = '\0';
	out->body = hend + 4;
	out->body_len = in.len - 1 - (size_t)(hend + 4 - in.data);
	/* headers: "Name: value" lines after the status line */
	char *line = strstr(in.data, "\r\n");
	while (line) {
		*line = '\0';
		line += 2;
		char *next = strstr(line, "\r\n");
		if (next)
			*next = '\0';
		char *colon = strchr(line, ':');
		if (colon) {
			*colon = '\0';
			const char *val = trim_ows(colon + 1);
			if (strcasecmp(line, SB_PROOF_HEADER) == 0) {
				out->proof = val;
				out->nproof++;
			} else if (strcasecmp(line, SB_PROOF_DEPLOYMENT_HEADER) == 0) {
				out->deployment = val;
				out->ndeployment++;
			} else if (strcasecmp(line, "content-type") == 0) {
				out->ctype = val;
			} else if (strcasecmp(line, "content-length") == 0) {
				uint64_t cl;
				if (sb_parse_u64(val, strlen(val), MAX_RESPONSE, &cl) == 0 &&
				    cl < out->body_len)
					out->body_len = (size_t)cl;
			}
		}
		if (next)
			*next = '\r'; /* the loop splits it again */
		line = next;
	}
	out->raw = sb_buf_steal(&in);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sb_buf_free(&req);
	sb_buf_free(&in);
	return rc;
}

/* What the edge's own error answer says: "404 not_found: no route ...". */
static void edge_error_text(const resp *r, char *buf, size_t size)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
	const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (code)
		snprintf(buf, size, "HTTP %d %s: %s", r->status, code, msg ? msg : "");
	else
		snprintf(buf, size, "HTTP %d", r->status);
	json_decref(j);
}

static void dep_keys(const vctx *v, const char *deployment, uint8_t sec[2][SB_SIGN_MAC_LEN],
		     sb_sign_key keys[2], size_t *nkeys)
{
	sb_sign_derive_secret(v->master, 32, deployment, sec[0]);
	keys[0] = (sb_sign_key){sec[0], SB_SIGN_MAC_LEN};
	*nkeys = 1;
	if (v->has_prev) {
		/* an edge that has not reloaded since a rotation signs with it */
		sb_sign_derive_secret(v->prev, 32, deployment, sec[1]);
		keys[1] = (sb_sign_key){sec[1], SB_SIGN_MAC_LEN};
		*nkeys = 2;
	}
}

/*
 * Does the answer prove that the edge routed host+path to `expected`?
 * Returns true, or false with why filled.
 */
static bool proof_ok(const vctx *v, const resp *r, const char *nonce, const char *host,
		     const char *path, const char *expected, char *why, size_t size)
{
	if (!r->proof && !r->deployment) {
		char e[300];
		edge_error_text(r, e, sizeof(e));
		snprintf(why, size,
			 "no deployment proof in the answer (%s): the edge answered itself, or "
			 "this is not a Switchboard edge with the verify proof",
			 e);
		return false;
	}
	if (r->nproof != 1 || r->ndeployment != 1) {
		snprintf(why, size,
			 "the answer carries %d proof and %d deployment headers, not one "
			 "each",
			 r->nproof, r->ndeployment);
		return false;
	}
	uint8_t sec[2][SB_SIGN_MAC_LEN];
	sb_sign_key keys[2];
	size_t nkeys;
	dep_keys(v, r->deployment, sec, keys, &nkeys);
	/* the edge signs the host as it routes it: lower case, without a port
	 * or a trailing dot */
	char hn[256];
	int hl = sb_route_host_normalize(host, strlen(host), hn, sizeof(hn));
	sb_proof_fields f = {
	    .nonce = {nonce, strlen(nonce)},
	    .deployment = {r->deployment, strlen(r->deployment)},
	    .host = {hl < 0 ? host : hn, hl < 0 ? strlen(host) : (size_t)hl},
	    .path = {path, strlen(path)},
	};
	int pr = sb_proof_verify(r->proof, strlen(r->proof), &f, keys, nkeys);
	explicit_bzero(sec, sizeof(sec));
	if (pr == SB_EINVAL) {
		snprintf(why, size, "malformed proof \"%.80s\"", r->proof);
		return false;
	}
	if (pr < 0) {
		snprintf(why, size,
			 "the proof naming %s does not verify with its secret from %s: forged, or "
			 "the edge uses another data directory",
			 r->deployment, v->data_dir);
		return false;
	}
	if (strcmp(r->deployment, expected) != 0) {
		snprintf(why, size, "reached %s, not %s (HTTP %d)", r->deployment, expected,
			 r->status);
		return false;
	}
	return true;
}

/* ---- what to check ---------------------------------------------------------- */

static bool same_deployment(const sb_route_match *m, const sb_deployment *dp)
{
	return m->service == dp->service && m->env == dp->env && m->pr == dp->pr;
}

/* Whether the model holds the PR's deployments: listed in the declaration
 * or created live (`switchboard preview create`). */
static bool pr_listed(const sb_model *m, uint32_t pr)
{
	for (size_t i = 0; i < m->ndeployments; i++)
		if (m->deployments[i].env == SB_ENV_PREVIEW && m->deployments[i].pr == pr)
			return true;
	return false;
}

static int add_stored_tenant(void *ctx, const sb_tenant_rec *rec)
{
	sb_tenants_put(ctx, rec->slug, strlen(rec->slug), rec->status);
	return 0;
}

/* The tenant set as the edge has it: static tenants, then the registry
 * (a stored record wins). The registry is only read when it exists, so that
 * verify creates nothing in a data directory. */
static void load_stored_tenants(vctx *v)
{
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/switchboard.db", v->data_dir);
	if (stat(path, &st) != 0)
		return;
	sb_store *s = NULL;
	sb_diag d = {0};
	if (sb_store_open_ro(v->data_dir, &s, &d) < 0) {
		sb_cli_print_diag(&d);
		return;
	}
	if (sb_store_tenant_list(s, add_stored_tenant, v->l.tenants, &d) < 0)
		sb_cli_print_diag(&d);
	sb_store_close(s);
}

struct first_tenant {
	const char *slug;
};

static int take_first(void *ctx, const char *slug, size_t n)
{
	((struct first_tenant *)ctx)->slug = slug;
	return 1;
}

/* A tenant to stand for {tenant}: a static one when active, else any. */
static const char *pick_tenant(const vctx *v)
{
	const sb_decl *d = v->l.decl;
	for (size_t i = 0; i < d->nstatic_tenants; i++) {
		const char *s = d->static_tenants[i];
		if (sb_tenants_get(v->l.tenants, s, strlen(s), NULL) == SB_TENANT_ACTIVE)
			return s;
	}
	struct first_tenant ft = {NULL};
	sb_tenants_each(v->l.tenants, SB_TENANT_ACTIVE, take_first, &ft);
	return ft.slug;
}

static void add_route(vctx *v, const sb_route *ro, const sb_deployment *dp, bool tenant,
		      const char *slug)
{
	v->routes = sb_xrealloc(v->routes, (v->nroutes + 1) * sizeof(*v->routes));
	vroute *r = &v->routes[v->nroutes++];
	memset(r, 0, sizeof(*r));
	r->ro = ro;
	r->dp = dp;
	r->tenant = tenant;
	if (tenant) {
		if (!slug) {
			r->skip =
			    "no registered tenant to stand for {tenant} (add one to [tenants] "
			    "static, or with switchboard tenants add)";
			snprintf(r->host, sizeof(r->host), "{tenant}.%s", ro->host + 2);
			return;
		}
		snprintf(r->host, sizeof(r->host), "%s.%s", slug, ro->host + 2);
	} else if (ro->host_wildcard) {
		/* any name under a plain wildcard will do; "*x.y" also serves x.y */
		if (strncmp(ro->host, "*.", 2) == 0)
			snprintf(r->host, sizeof(r->host), "switchboard-verify.%s", ro->host + 2);
		else
			snprintf(r->host, sizeof(r->host), "%s", ro->host + 1);
	} else {
		snprintf(r->host, sizeof(r->host), "%s", ro->host);
	}
	sb_route_match m;
	int lr = sb_route_lookup(v->l.routes, v->l.tenants, r->host, strlen(r->host), ro->path,
				 strlen(ro->path), &m);
	if (lr < 0 && lr != SB_ESUSPENDED)
		r->skip = m.reason ? m.reason : "not routed";
	else if (lr == SB_ESUSPENDED)
		r->skip = tenant ? "the tenant standing for {tenant} is suspended"
				 : "its host's tenant is suspended (the edge answers 403)";
	else if (!same_deployment(&m, dp))
		r->skip = "a more specific route of another deployment serves this host and path";
}

/* Deployments and routes of the environment, as the edge serves them. */
static void collect(vctx *v)
{
	const sb_model *m = v->l.model;
	const char *slug = pick_tenant(v);
	bool derived = v->env == SB_ENV_PREVIEW && !pr_listed(m, v->pr);
	v->deps = sb_xcalloc(m->ndeployments + m->nservices + 1, sizeof(*v->deps));
	if (derived) {
		/* any PR is served by the naming rule: derive its deployments */
		for (size_t s = 0; s < m->nservices; s++) {
			sb_deployment *dp = sb_pool_alloc(v->pool, sizeof(*dp));
			sb_model_preview(m, s, v->pr, v->pool, dp);
			v->deps[v->ndeps++] = dp;
			for (size_t j = 0; j < dp->nroutes; j++)
				add_route(v, &dp->routes[j], dp, false, NULL);
		}
		return;
	}
	for (size_t i = 0; i < m->ndeployments; i++) {
		const sb_deployment *dp = &m->deployments[i];
		if (dp->env == v->env && dp->pr == v->pr)
			v->deps[v->ndeps++] = dp;
	}
	size_t ne;
	const sb_route_entry *e = sb_route_entries(v->l.routes, &ne);
	for (size_t i = 0; i < ne; i++)
		if (e[i].deployment->env == v->env && e[i].deployment->pr == v->pr)
			add_route(v, e[i].route, e[i].deployment, e[i].tenant_gated, slug);
}

/* ---- checks 2 to 5 ----------------------------------------------------------- */

static void check_route(vctx *v, const vroute *r)
{
	char name[700], why[600], err[300], nonce[33];
	snprintf(name, sizeof(name), "route %s%s%s%s%s%s -> %s", r->host, r->ro->path,
		 r->ro->path_prefix ? "*" : "", r->tenant ? " ({tenant}." : "",
		 r->tenant ? r->ro->host + 2 : "", r->tenant ? ")" : "", r->dp->name);
	if (r->skip) {
		report(v, R_SKIP, name, "%s", r->skip);
		return;
	}
	random_hex(nonce, 16);
	resp rp;
	if (http_do(v, "GET", r->host, r->ro->path, nonce, NULL, &rp, err, sizeof(err)) < 0) {
		report(v, R_FAIL, name, "%s", err);
		return;
	}
	if (proof_ok(v, &rp, nonce, r->host, r->ro->path, r->dp->name, why, sizeof(why)))
		report(v, R_PASS, name, "HTTP %d from %s, proof verified", rp.status, r->dp->name);
	else
		report(v, R_FAIL, name, "%s", why);
	resp_free(&rp);
}

/* The documented rule (docs/verify.md): 200, a JSON object, and a "status"
 * of "ok", "healthy" or "pass" (any case). */
/* Healthy, and (when the body says who answered, as the plan's /health
 * does with "worker" and "environment") the deployment's own service: the
 * proof shows where the edge sent the request, not which process answered,
 * so an upstream URL pointing at another service's process is caught here. */
static bool healthy(const resp *r, const char *service, const char *env, const char *env_var,
		    char *why, size_t size)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	const char *st = json_is_object(j) ? json_string_value(json_object_get(j, "status")) : NULL;
	const char *wk = json_is_object(j) ? json_string_value(json_object_get(j, "worker")) : NULL;
	const char *en =
	    json_is_object(j) ? json_string_value(json_object_get(j, "environment")) : NULL;
	bool ok = r->status == 200 && st &&
		  (!strcasecmp(st, "ok") || !strcasecmp(st, "healthy") || !strcasecmp(st, "pass"));
	if (!json_is_object(j))
		snprintf(why, size, "HTTP %d, body is not a JSON object", r->status);
	else if (!st)
		snprintf(why, size, "HTTP %d, no \"status\" string in the JSON body", r->status);
	else if (ok && wk && strcmp(wk, service) != 0)
		ok = false,
		snprintf(why, size,
			 "HTTP %d, answered by worker \"%.60s\", not %s: the upstream is "
			 "another service's",
			 r->status, wk, service);
	else if (ok && en && strcmp(en, env) != 0 && !(env_var && strcmp(en, env_var) == 0))
		ok = false,
		snprintf(why, size,
			 "HTTP %d, answered by environment \"%.60s\", not %s%s%s%s: the upstream "
			 "is another environment's",
			 r->status, en, env_var ? env_var : env, env_var ? " (" : "",
			 env_var ? env : "", env_var ? ")" : "");
	else if (wk)
		snprintf(why, size, "HTTP %d, status \"%.60s\", worker %s%s%s%s", r->status, st, wk,
			 en ? " (" : "", en ? en : "", en ? ")" : "");
	else
		snprintf(why, size, "HTTP %d, status \"%.60s\"", r->status, st);
	json_decref(j);
	return ok;
}

/* The deployment's ENVIRONMENT var when it names something other than the
 * environment itself ("prod"): the plan's /health answers with it. */
static const char *env_var(const sb_deployment *dp)
{
	for (size_t i = 0; i < dp->nvars; i++)
		if (dp->vars[i].is_string && strcmp(dp->vars[i].key, "ENVIRONMENT") == 0 &&
		    strcmp(dp->vars[i].value, sb_env_name(dp->env)) != 0)
			return dp->vars[i].value;
	return NULL;
}

static void check_health(vctx *v, const sb_deployment *dp)
{
	char name[300], why[600], err[300], nonce[33];
	const char *svc = v->l.model->services[dp->service].name;
	snprintf(name, sizeof(name), "health %s (%s)", svc, dp->name);
	const vroute *use = NULL;
	for (size_t i = 0; i < v->nroutes && !use; i++) {
		const vroute *r = &v->routes[i];
		sb_route_match m;
		if (r->skip || r->dp != dp)
			continue;
		if (sb_route_lookup(v->l.routes, v->l.tenants, r->host, strlen(r->host), "/health",
				    7, &m) == 0 &&
		    same_deployment(&m, dp))
			use = r;
	}
	if (!use) {
		report(v, R_SKIP, name, "no testable route of %s serves /health", dp->name);
		return;
	}
	random_hex(nonce, 16);
	resp rp;
	if (http_do(v, "GET", use->host, "/health", nonce, NULL, &rp, err, sizeof(err)) < 0) {
		report(v, R_FAIL, name, "%s/health: %s", use->host, err);
		return;
	}
	if (!proof_ok(v, &rp, nonce, use->host, "/health", dp->name, why, sizeof(why)))
		report(v, R_FAIL, name, "%s/health: %s", use->host, why);
	else if (!healthy(&rp, svc, sb_env_name(dp->env), env_var(dp), why, sizeof(why)))
		report(v, R_FAIL, name, "%s/health: unhealthy: %s", use->host, why);
	else
		report(v, R_PASS, name, "%s/health: %s", use->host, why);
	resp_free(&rp);
}

static void check_webhook(vctx *v, const sb_webhook_decl *w)
{
	char name[700], why[600], err[300], nonce[33], host[256], path[1024];
	const sb_model *m = v->l.model;
	snprintf(name, sizeof(name), "webhook %s %s", w->provider, w->url);
	sb_url u;
	if (sb_url_split(w->url, &u) < 0 || u.host_len >= sizeof(host)) {
		report(v, R_FAIL, name, "not an URL");
		return;
	}
	snprintf(host, sizeof(host), "%.*s", (int)u.host_len, u.host);
	/* sent as a provider sends it, query included: a route's path without
	 * '*' matches only a request without one */
	size_t tl;
	const char *target = sb_url_target(&u, path, sizeof(path), &tl);
	if (tl >= sizeof(path)) {
		report(v, R_FAIL, name, "its path is longer than %zu bytes", sizeof(path) - 1);
		return;
	}
	if (target != path)
		snprintf(path, sizeof(path), "%.*s", (int)tl, target);
	sb_route_match rm;
	int lr =
	    sb_route_lookup(v->l.routes, v->l.tenants, host, strlen(host), path, strlen(path), &rm);
	if (lr == 0 && rm.env != w->env) {
		/* declared for this environment, routed to another: a provider's
		 * events would reach the wrong deployment */
		const char *got =
		    rm.deployment ? rm.deployment->name : m->services[rm.service].name;
		report(v, R_FAIL, name, "reaches %s (%s), not a %s deployment", got,
		       sb_env_name(rm.env), sb_env_name(w->env));
		return;
	}
	if (v->env == SB_ENV_PREVIEW && lr == 0 && rm.pr != v->pr) {
		report(v, R_SKIP, name, "an endpoint of preview %u, not %u", rm.pr, v->pr);
		return;
	}
	/* the handler: the named service's deployment here, else the routed one */
	const sb_deployment *want = NULL;
	for (size_t i = 0; i < v->ndeps && !want; i++) {
		const sb_deployment *dp = v->deps[i];
		if (w->service ? strcmp(m->services[dp->service].name, w->service) == 0
			       : lr == 0 && same_deployment(&rm, dp))
			want = dp;
	}
	if (!want) {
		if (w->service)
			report(v, R_FAIL, name, "its handler %s has no %s deployment", w->service,
			       sb_env_name(v->env));
		else
			report(v, R_FAIL, name, "not routed: %s", rm.reason ? rm.reason : "?");
		return;
	}
	snprintf(name + strlen(name), sizeof(name) - strlen(name), " -> %s", want->name);
	random_hex(nonce, 16);
	resp rp;
	/* as a provider sends it: a POST with a JSON body */
	if (http_do(v, "POST", host, path, nonce, "{}", &rp, err, sizeof(err)) < 0) {
		report(v, R_FAIL, name, "%s", err);
		return;
	}
	if (proof_ok(v, &rp, nonce, host, path, want->name, why, sizeof(why)))
		report(v, R_PASS, name, "HTTP %d from %s, proof verified", rp.status, want->name);
	else
		report(v, R_FAIL, name, "%s", why);
	resp_free(&rp);
}

/* Check 5 is the consistency check itself (src/route/check.c), narrowed to
 * the environment: its messages start with the deployment's name. */
static void check_vars(vctx *v)
{
	sb_violation *viol = NULL;
	size_t n = sb_check_run(v->l.model, v->l.routes, v->l.tenants, v->pr ? v->pr : 1, &viol);
	for (size_t i = 0; i < v->ndeps; i++) {
		const sb_deployment *dp = v->deps[i];
		size_t dl = strlen(dp->name), bad = 0, urls = 0;
		char name[300];
		snprintf(name, sizeof(name), "vars %s", dp->name);
		sb_buf b;
		sb_buf_init(&b);
		for (size_t k = 0; k < n; k++)
			if (strncmp(viol[k].msg, dp->name, dl) == 0 &&
			    strncmp(viol[k].msg + dl, ": ", 2) == 0) {
				sb_buf_addf(&b, "%s%s:%d:%d: %s", bad ? "; " : "", viol[k].file,
					    viol[k].line, viol[k].col, viol[k].msg + dl + 2);
				bad++;
			}
		for (size_t k = 0; k < dp->nvars; k++)
			urls += dp->vars[k].is_string && sb_http_scheme_len(dp->vars[k].value);
		if (bad)
			report(v, R_FAIL, name, "%s", b.data);
		else
			report(v, R_PASS, name,
			       "%zu URL var%s, each on a host of the same environment", urls,
			       urls == 1 ? "" : "s");
		sb_buf_free(&b);
	}
	free(viol);
}

/* ---- the command ------------------------------------------------------------- */

/* An address verify cannot ask: from the declaration (file) or an option. */
static void address_error(const char *file, const char *what, const char *text)
{
	char shown[SB_CLI_SHOWN_SIZE];
	const char *port = strrchr(text, ':');
	bool zero = port && strcmp(port, ":0") == 0;
	if (file)
		fprintf(stderr, "switchboard verify: %s: [listen] %s \"%s\": ", file, what,
			sb_cli_shown(text, shown, sizeof(shown)));
	else
		fprintf(stderr, "switchboard verify: --%s %s: ",
			strcmp(what, "http") == 0 ? "listen" : what,
			sb_cli_shown(text, shown, sizeof(shown)));
	if (zero)
		fprintf(stderr,
			"port 0 means the edge picked its port when it started: give the "
			"port it printed with --%s HOST:PORT\n",
			strcmp(what, "http") == 0 ? "listen" : what);
	else
		fprintf(stderr, "expected an IP address and port (\"127.0.0.1:8080\", "
				"\"[::1]:53\")\n");
}

static int setup(vctx *v, const char *data)
{
	const sb_decl *d = v->l.decl;
	char path[4200];
	struct stat st;
	sb_diag dg = {0};

	v->data_dir = data ? data : d->data_dir;
	/* verify only reads: a missing key is the wrong directory, not a new key */
	snprintf(path, sizeof(path), "%s/secret.key", v->data_dir);
	if (stat(path, &st) != 0) {
		fprintf(stderr,
			"switchboard verify: %s: no secret.key: not the edge's data directory "
			"(pass --data DIR)\n",
			v->data_dir);
		return 2;
	}
	if (sb_edge_load_master(v->data_dir, v->master, v->prev, &v->has_prev, &dg) < 0) {
		sb_cli_print_diag(&dg);
		return 2;
	}
	const char *http = v->listen_opt    ? v->listen_opt
			   : d->listen_http ? d->listen_http
					    : "127.0.0.1:8080";
	snprintf(v->http_text, sizeof(v->http_text), "%s", http);
	if (parse_hostport(http, &v->http, &v->http_len) < 0) {
		address_error(v->listen_opt ? NULL : d->file, "http", http);
		return 2;
	}
	const char *dns = v->dns_opt ? v->dns_opt : d->listen_dns;
	if (dns) {
		snprintf(v->dns_text, sizeof(v->dns_text), "%s", dns);
		if (parse_hostport(dns, &v->dns, &v->dns_len) < 0) {
			address_error(v->dns_opt ? NULL : d->file, "dns", dns);
			return 2;
		}
		v->dns_on = true;
	}
	return 0;
}

static int parse_args(int argc, char **argv, vctx *v, const char **config, const char **data)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"env", required_argument, NULL, 'e'},
						 {"pr", required_argument, NULL, 'p'},
						 {"data", required_argument, NULL, 'd'},
						 {"json", no_argument, NULL, 'j'},
						 {"listen", required_argument, NULL, 'l'},
						 {"dns", required_argument, NULL, 'n'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *env = NULL, *pr = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:e:p:d:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'e': env = optarg; break;
		case 'p': pr = optarg; break;
		case 'd': *data = optarg; break;
		case 'j': v->json = true; break;
		case 'l': v->listen_opt = optarg; break;
		case 'n': v->dns_opt = optarg; break;
		case 'h': fputs(usage_verify, stdout); return 1;
		default: fputs(usage_verify, stderr); return 2;
		}
	}
	if (optind < argc) {
		sb_cli_unexpected("switchboard verify", argv[optind], usage_verify);
		return 2;
	}
	v->env = SB_ENV_PRODUCTION;
	char shown[SB_CLI_SHOWN_SIZE];
	if (env && sb_env_parse(env, &v->env) < 0) {
		fprintf(stderr,
			"switchboard verify: unknown environment '%s' (expected production, "
			"staging or preview)\n",
			sb_cli_shown(env, shown, sizeof(shown)));
		return 2;
	}
	if (pr) {
		uint32_t n;
		if (sb_model_pr_parse(pr, strlen(pr), &n) < 0) {
			fprintf(stderr,
				"switchboard verify: --pr: \"%s\" is not a pull request number (1 "
				"to 999999999, no leading zeros)\n",
				sb_cli_shown(pr, shown, sizeof(shown)));
			return 2;
		}
		if (env && v->env != SB_ENV_PREVIEW) {
			fprintf(stderr,
				"switchboard verify: --pr goes with --env preview, not %s\n",
				sb_cli_shown(env, shown, sizeof(shown)));
			return 2;
		}
		v->env = SB_ENV_PREVIEW;
		v->pr = n;
	} else if (v->env == SB_ENV_PREVIEW) {
		fprintf(stderr, "switchboard verify: --env preview needs --pr N (which preview)\n");
		return 2;
	}
	return 0;
}

int sb_cli_verify(int argc, char **argv)
{
	vctx v;
	const char *config = ".", *data = NULL;
	size_t passed = 0, failed = 0, skipped = 0;
	sb_diag d = {0};
	int r;

	memset(&v, 0, sizeof(v));
	if ((r = parse_args(argc, argv, &v, &config, &data)))
		return r == 1 ? 0 : r;
	if (sb_cli_load(config, data, &v.l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	v.pool = sb_pool_new(0);
	if ((r = setup(&v, data)))
		goto out;
	load_stored_tenants(&v);
	collect(&v);

	/* 1. DNS: each distinct host once */
	for (size_t i = 0; i < v.nroutes; i++) {
		bool seen = v.routes[i].skip != NULL;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !v.routes[k].skip && strcmp(v.routes[k].host, v.routes[i].host) == 0;
		if (!seen)
			check_dns(&v, v.routes[i].host);
	}
	/* 2. routes, 3. health, 4. webhooks, 5. vars */
	for (size_t i = 0; i < v.nroutes; i++)
		check_route(&v, &v.routes[i]);
	for (size_t i = 0; i < v.ndeps; i++)
		check_health(&v, v.deps[i]);
	for (size_t i = 0; i < v.l.decl->nwebhooks; i++)
		if (v.l.decl->webhooks[i].env == v.env)
			check_webhook(&v, &v.l.decl->webhooks[i]);
	check_vars(&v);

	for (size_t i = 0; i < v.nres; i++) {
		passed += v.res[i].st == R_PASS;
		failed += v.res[i].st == R_FAIL;
		skipped += v.res[i].st == R_SKIP;
	}
	print_summary(&v, passed, failed, skipped);
	r = failed ? 1 : 0;
out:
	for (size_t i = 0; i < v.nres; i++) {
		free(v.res[i].name);
		free(v.res[i].detail);
	}
	free(v.res);
	free(v.routes);
	free(v.deps);
	explicit_bzero(v.master, sizeof(v.master));
	explicit_bzero(v.prev, sizeof(v.prev));
	sb_sign_thread_cleanup();
	sb_pool_free(v.pool);
	sb_cli_unload(&v.l);
	return r;
}
