/* The model: deployments derived from the declaration (see model.h). */
#include "model/model.h"

#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const builtin_reserved[] = {"api", "auth", "www"};

/* ---- naming rule ------------------------------------------------------- */

/* A template split around its placeholders: pre {first} mid {second} post.
 * Split once when the model is built; lookups only compare bytes. */
static void tmpl_split(const char *fmt, sb_tmpl *t)
{
	memset(t, 0, sizeof(*t));
	const char *l = strstr(fmt, "{label}");
	const char *p = strstr(fmt, "{pr}");
	t->has_pr = p != NULL;
	if (!p) {
		t->pre = fmt;
		t->pre_len = (size_t)(l - fmt);
		t->post = l + 7;
		t->post_len = strlen(t->post);
		return;
	}
	t->pr_first = p < l;
	const char *a = t->pr_first ? p : l, *b = t->pr_first ? l : p;
	size_t alen = t->pr_first ? 4 : 7, blen = t->pr_first ? 7 : 4;
	t->pre = fmt;
	t->pre_len = (size_t)(a - fmt);
	t->mid = a + alen;
	t->mid_len = (size_t)(b - t->mid);
	t->post = b + blen;
	t->post_len = strlen(t->post);
}

static bool has_prefix(const char *s, size_t n, const char *p, size_t pn)
{
	return n >= pn && memcmp(s, p, pn) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *p, size_t pn)
{
	return n >= pn && memcmp(s + n - pn, p, pn) == 0;
}

/* Match s against a template; on success set the label span and PR. */
static bool tmpl_match(const sb_tmpl *t, const char *s, size_t n, size_t *lab_off, size_t *lab_len,
		       uint32_t *pr)
{
	if (!has_prefix(s, n, t->pre, t->pre_len) || n < t->pre_len + t->post_len ||
	    !has_suffix(s, n, t->post, t->post_len))
		return false;
	const char *m = s + t->pre_len;
	size_t mn = n - t->pre_len - t->post_len;
	if (!t->has_pr) {
		if (mn == 0)
			return false;
		*lab_off = t->pre_len;
		*lab_len = mn;
		return true;
	}
	/* middle is "label MID digits" or "digits MID label" */
	size_t dstart, dlen, lstart, llen;
	if (!t->pr_first) {
		size_t k = mn;
		while (k > 0 && m[k - 1] >= '0' && m[k - 1] <= '9')
			k--;
		dstart = k;
		dlen = mn - k;
		if (dlen == 0 || k < t->mid_len + 1 ||
		    memcmp(m + k - t->mid_len, t->mid, t->mid_len) != 0)
			return false;
		lstart = 0;
		llen = k - t->mid_len;
	} else {
		size_t k = 0;
		while (k < mn && m[k] >= '0' && m[k] <= '9')
			k++;
		dstart = 0;
		dlen = k;
		if (dlen == 0 || mn - k < t->mid_len + 1 || memcmp(m + k, t->mid, t->mid_len) != 0)
			return false;
		lstart = k + t->mid_len;
		llen = mn - lstart;
	}
	if (sb_model_pr_parse(m + dstart, dlen, pr) < 0)
		return false;
	*lab_off = t->pre_len + lstart;
	*lab_len = llen;
	return true;
}

int sb_model_pr_parse(const char *s, size_t n, uint32_t *pr)
{
	uint64_t v;
	if (n == 0 || s[0] == '0' || sb_parse_u64(s, n, SB_PR_MAX, &v) < 0)
		return SB_EINVAL;
	*pr = (uint32_t)v;
	return 0;
}

sb_env sb_model_name_parse(const sb_model *m, const char *s, size_t n, size_t *label_off,
			   size_t *label_len, uint32_t *pr)
{
	uint32_t p = 0;
	if (tmpl_match(&m->preview_tmpl, s, n, label_off, label_len, &p)) {
		*pr = p;
		return SB_ENV_PREVIEW;
	}
	if (tmpl_match(&m->staging_tmpl, s, n, label_off, label_len, &p)) {
		*pr = 0;
		return SB_ENV_STAGING;
	}
	*label_off = 0;
	*label_len = n;
	*pr = 0;
	return SB_ENV_PRODUCTION;
}

int sb_model_name_format(const sb_model *m, sb_env env, const char *label, size_t label_len,
			 uint32_t pr, char *buf, size_t size)
{
	const char *fmt = env == SB_ENV_PREVIEW	  ? m->decl->preview_format
			  : env == SB_ENV_STAGING ? m->decl->staging_format
						  : "{label}";
	size_t o = 0;
	for (const char *p = fmt; *p;) {
		const char *piece = p;
		size_t pn = 1;
		char num[16];
		if (strncmp(p, "{label}", 7) == 0) {
			piece = label;
			pn = label_len;
			p += 7;
		} else if (strncmp(p, "{pr}", 4) == 0) {
			pn = (size_t)snprintf(num, sizeof(num), "%u", pr);
			piece = num;
			p += 4;
		} else {
			p++;
		}
		if (o + pn >= size)
			return SB_ETOOLONG;
		memcpy(buf + o, piece, pn);
		o += pn;
	}
	buf[o] = '\0';
	return (int)o;
}

/* ---- slugs ------------------------------------------------------------- */

/* ---- IDNA A-labels (RFC 3492 punycode, RFC 5891 4.2.3.1) -------------- */

enum { PUNY_BASE = 36, PUNY_TMIN = 1, PUNY_TMAX = 26, PUNY_SKEW = 38, PUNY_DAMP = 700 };

static uint32_t puny_adapt(uint32_t delta, uint32_t npoints, bool first)
{
	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / npoints;
	uint32_t k = 0;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static char puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* Decode RFC 3492 input (lower case) into out[]; returns the number of code
 * points, or -1 if it is not valid punycode. */
static int puny_decode(const char *in, size_t n, uint32_t *out, size_t cap)
{
	size_t b = 0, len = 0;
	for (size_t j = 0; j < n; j++)
		if (in[j] == '-')
			b = j;
	if (b > cap)
		return -1;
	for (size_t j = 0; j < b; j++)
		out[len++] = (unsigned char)in[j];
	uint32_t cp = 128, bias = 72;
	uint64_t i = 0;
	for (size_t in_i = b > 0 ? b + 1 : 0; in_i < n;) {
		uint64_t old = i, w = 1;
		for (uint32_t k = PUNY_BASE;; k += PUNY_BASE) {
			if (in_i >= n)
				return -1;
			char c = in[in_i++];
			uint32_t d = c >= 'a' && c <= 'z'   ? (uint32_t)(c - 'a')
				     : c >= '0' && c <= '9' ? (uint32_t)(c - '0' + 26)
							    : PUNY_BASE;
			if (d >= PUNY_BASE)
				return -1;
			i += d * w;
			if (i > 0x10FFFF * (uint64_t)(cap + 1))
				return -1;
			uint32_t t = k <= bias		     ? PUNY_TMIN
				     : k >= bias + PUNY_TMAX ? PUNY_TMAX
							     : k - bias;
			if (d < t)
				break;
			w *= PUNY_BASE - t;
			if (w > 0x10FFFF * (uint64_t)(cap + 1))
				return -1;
		}
		if (len >= cap)
			return -1;
		bias = puny_adapt((uint32_t)(i - old), (uint32_t)len + 1, old == 0);
		uint64_t ncp = cp + i / (len + 1);
		if (ncp > 0x10FFFF || (ncp >= 0xD800 && ncp <= 0xDFFF))
			return -1;
		cp = (uint32_t)ncp;
		i %= len + 1;
		memmove(out + i + 1, out + i, (len - i) * sizeof(*out));
		out[i++] = cp;
		len++;
	}
	return (int)len;
}

/* Encode code points as RFC 3492 into out (no "xn--"); returns its length or
 * -1 if it does not fit. */
static int puny_encode(const uint32_t *cps, size_t n, char *out, size_t cap)
{
	size_t o = 0, h, b = 0;
	for (size_t j = 0; j < n; j++)
		if (cps[j] < 128) {
			if (o >= cap)
				return -1;
			out[o++] = (char)cps[j];
			b++;
		}
	h = b;
	if (b > 0) {
		if (o >= cap)
			return -1;
		out[o++] = '-';
	}
	uint32_t cp = 128, bias = 72;
	uint64_t delta = 0;
	while (h < n) {
		uint32_t m = UINT32_MAX;
		for (size_t j = 0; j < n; j++)
			if (cps[j] >= cp && cps[j] < m)
				m = cps[j];
		delta += (uint64_t)(m - cp) * (h + 1);
		cp = m;
		for (size_t j = 0; j < n; j++) {
			if (cps[j] < cp)
				delta++;
			if (cps[j] != cp)
				continue;
			uint64_t q = delta;
			for (uint32_t k = PUNY_BASE;; k += PUNY_BASE) {
				uint32_t t = k <= bias		     ? PUNY_TMIN
					     : k >= bias + PUNY_TMAX ? PUNY_TMAX
								     : k - bias;
				if (q < t)
					break;
				if (o >= cap)
					return -1;
				out[o++] = puny_digit(t + (uint32_t)((q - t) % (PUNY_BASE - t)));
				q = (q - t) / (PUNY_BASE - t);
			}
			if (o >= cap)
				return -1;
			out[o++] = puny_digit((uint32_t)q);
			bias = puny_adapt((uint32_t)delta, (uint32_t)h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		cp++;
	}
	return (int)o;
}

/*
 * A label with "--" in its third and fourth places is reserved for IDNA
 * (RFC 5891 4.2.3.1); of those only "xn--" labels exist, and one is an
 * A-label only if the rest decodes as punycode to a name that is not plain
 * ASCII and encodes back to the same text. A registry hands such labels out
 * only if they are real: a browser refuses to go to a fake one.
 */
static const char *idna_label_check(const char *s, size_t n)
{
	if (n < 4 || s[2] != '-' || s[3] != '-')
		return NULL;
	if (s[0] != 'x' || s[1] != 'n')
		return "a label with '--' in its third and fourth places is reserved for "
		       "international names (xn--)";
	uint32_t cps[64];
	char back[64];
	int k = puny_decode(s + 4, n - 4, cps, SB_ARRAY_LEN(cps));
	bool wide = false;
	bool ctl = false;
	for (int j = 0; j < k; j++) {
		wide |= cps[j] >= 128;
		ctl |= cps[j] >= 128 && cps[j] < 0xA0; /* C1 controls are no name */
	}
	if (k <= 0 || !wide || ctl)
		return "an xn-- label must be punycode of an international name";
	int e = puny_encode(cps, (size_t)k, back, sizeof(back));
	if (e < 0 || (size_t)e != n - 4 || memcmp(back, s + 4, n - 4) != 0)
		return "an xn-- label must be punycode of an international name";
	return NULL;
}

int sb_model_slug_check(const sb_model *m, const char *s, size_t n, const char **why)
{
	if (n == 0 || n > SB_SLUG_MAX) {
		*why = "a slug is 1 to 63 characters";
		return SB_EBADSLUG;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			*why = "a slug is a single label (no '.')";
			return SB_EBADSLUG;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			*why = "a slug has only a-z, 0-9 and '-'";
			return SB_EBADSLUG;
		}
	}
	if (s[0] == '-' || s[n - 1] == '-') {
		*why = "a slug cannot start or end with '-'";
		return SB_EBADSLUG;
	}
	if ((*why = idna_label_check(s, n)) != NULL)
		return SB_EBADSLUG;
	for (size_t i = 0; i < m->nreserved; i++)
		if (m->reserved_len[i] == n && memcmp(m->reserved[i], s, n) == 0) {
			*why = i < SB_ARRAY_LEN(builtin_reserved)
				   ? "the label is reserved (api, auth and www always are)"
				   : "the label is reserved ([tenants] reserved)";
			return SB_ERESERVED;
		}
	size_t lo, ll;
	uint32_t pr;
	sb_env e = sb_model_name_parse(m, s, n, &lo, &ll, &pr);
	if (e != SB_ENV_PRODUCTION) {
		*why = e == SB_ENV_PREVIEW ? "a slug cannot have a preview suffix"
					   : "a slug cannot have a staging suffix";
		return SB_EBADSLUG;
	}
	return 0;
}

/* ---- routes ------------------------------------------------------------ */

int sb_route_parse(const char *pattern, sb_pool *pool, sb_route *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->pattern = sb_pool_strdup(pool, pattern);
	const char *p = pattern;
	/* Users paste URLs; Cloudflare patterns may carry a scheme too. */
	size_t sl = sb_http_scheme_len(p);
	p += sl;
	if (!sl && strstr(p, "://")) {
		snprintf(err, errlen,
			 "route \"%s\": a route's scheme, when it has one, is http:// or https://",
			 pattern);
		return SB_EINVAL;
	}
	const char *slash = strchr(p, '/');
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);
	if (hl == 0) {
		snprintf(err, errlen, "route \"%s\" has no host", pattern);
		return SB_EINVAL;
	}
	char *host = sb_pool_strndup(pool, p, hl);
	if (hl && host[hl - 1] == '.')
		host[--hl] = '\0';
	const char *h = host;
	if (host[0] == '*') {
		r->host_wildcard = true;
		h++;
		if (*h == '.')
			h++;
		else
			r->host_apex_too = true;
		if (!*h) {
			snprintf(err, errlen,
				 "route \"%s\": a wildcard host needs a domain after '*'", pattern);
			return SB_EINVAL;
		}
	}
	size_t lab = 0;
	for (char *c = (char *)h;; c++) {
		if (*c == '.' || *c == '\0') {
			if (lab == 0 || lab > 63) {
				snprintf(err, errlen,
					 "route \"%s\": host has an empty or too long label",
					 pattern);
				return SB_EINVAL;
			}
			if (c[-1] == '-' || c[-(ptrdiff_t)lab] == '-') {
				snprintf(err, errlen,
					 "route \"%s\": a host label cannot start or end with '-'",
					 pattern);
				return SB_EINVAL;
			}
			lab = 0;
			if (!*c)
				break;
			continue;
		}
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
		if (*c == '*') {
			snprintf(err, errlen,
				 "route \"%s\": '*' is only allowed at the start of the host",
				 pattern);
			return SB_EINVAL;
		}
		if (*c == ':') {
			snprintf(err, errlen, "route \"%s\": a route host has no port", pattern);
			return SB_EINVAL;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
			if ((unsigned char)*c >= 0x80)
				snprintf(err, errlen,
					 "route \"%s\": a host is ASCII; write an international "
					 "name in its xn-- (punycode) form",
					 pattern);
			else
				snprintf(err, errlen,
					 "route \"%s\": invalid character '%c' in host (letters, "
					 "digits, '-' and '.')",
					 pattern, *c);
			return SB_EINVAL;
		}
		lab++;
	}
	/* A host name's last label is never all digits (RFC 3696 section 2):
	 * this is an IPv4 address, which no zone holds and the naming rule
	 * would turn into hosts such as 127-staging.0.0.1. */
	const char *tld = strrchr(h, '.');
	tld = tld ? tld + 1 : h;
	if (tld[strspn(tld, "0123456789")] == '\0') {
		snprintf(err, errlen,
			 "route \"%s\": the host is an IP address (its last label is a number); a "
			 "route's host is a name (app.example.com/*)",
			 pattern);
		return SB_EINVAL;
	}
	if (strlen(host) > 253) {
		snprintf(err, errlen, "route \"%s\": host is longer than 253 characters", pattern);
		return SB_EINVAL;
	}
	r->host = host;
	/* as Cloudflare: "a route without a path has an implied path of /",
	 * matching the root only (a custom domain takes its whole host: the
	 * caller sees to that, sb_route_whole_host) */
	const char *path = slash ? slash : "/";
	size_t pl = strlen(path);
	if (strchr(path, '?') || strchr(path, '#')) {
		snprintf(err, errlen, "route \"%s\": a route path has no query or fragment",
			 pattern);
		return SB_EINVAL;
	}
	if (pl && path[pl - 1] == '*') {
		r->path_prefix = true;
		pl--;
	}
	if (memchr(path, '*', pl)) {
		snprintf(err, errlen, "route \"%s\": '*' is only allowed at the end of the path",
			 pattern);
		return SB_EINVAL;
	}
	/* What the edge refuses in a request (400, docs/http.md) no request
	 * reaching a service can carry: a route with it would never match. */
	for (size_t i = 0; i < pl; i++)
		if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f) {
			snprintf(err, errlen,
				 "route \"%s\": a space or control character in the path (the edge "
				 "refuses such a request, so the route would never match; "
				 "write it percent-encoded, as clients send it: %%20)",
				 pattern);
			return SB_EINVAL;
		}
	if (strstr(path, "%00")) {
		snprintf(err, errlen,
			 "route \"%s\": an encoded NUL (%%00) in the path (the edge refuses such "
			 "a request, so the route would never match)",
			 pattern);
		return SB_EINVAL;
	}
	for (size_t i = 0; i < pl; i++) {
		if (path[i] != '/')
			continue;
		size_t j = i + 1, dots = 0;
		for (;;) {
			if (j < pl && path[j] == '.')
				j++;
			else if (j + 3 <= pl && path[j] == '%' && path[j + 1] == '2' &&
				 (path[j + 2] == 'e' || path[j + 2] == 'E'))
				j += 3;
			else
				break;
			dots++;
		}
		/* a whole segment: ended by '/', or by the end of an exact path
		 * (a prefix "/x/.." also matches "/x/..y") */
		if (dots >= 1 && dots <= 2 &&
		    ((j < pl && path[j] == '/') || (j == pl && !r->path_prefix))) {
			snprintf(
			    err, errlen,
			    "route \"%s\": a '.' or '..' segment in the path (the edge refuses "
			    "such a request, as clients resolve them before sending, so the "
			    "route would never match; write the resolved path)",
			    pattern);
			return SB_EINVAL;
		}
	}
	r->path = sb_pool_strndup(pool, path, pl);
	return 0;
}

void sb_route_whole_host(sb_route *r)
{
	r->path = "/";
	r->path_prefix = true;
}

/* ---- building ---------------------------------------------------------- */

struct builder {
	sb_model *m;
	sb_diag *d;
	size_t cap;
};

static sb_deployment *new_deployment(struct builder *b)
{
	sb_model *m = b->m;
	if (m->ndeployments == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		m->deployments = sb_xrealloc(m->deployments, b->cap * sizeof(sb_deployment));
	}
	sb_deployment *dp = &m->deployments[m->ndeployments++];
	memset(dp, 0, sizeof(*dp));
	return dp;
}

/* A wildcard host over a public suffix ("*.com", "*co.uk") would take every
 * domain registered there whose DNS points at the edge: as in Cloudflare,
 * where a route lives in one zone, a wildcard names one domain. Inside a
 * declared zone the declaration is the authority (a zone "test"). Returns
 * 0, or SB_EINVAL with the error in d at where. */
static int wildcard_suffix_check(struct builder *b, const sb_route *r, const char *file, int line,
				 int col)
{
	if (!r->host_wildcard)
		return 0;
	const char *suffix = r->host + (r->host_apex_too ? 1 : 2);
	size_t n = strlen(suffix);
	if (sb_model_in_zone(b->m, suffix, n) || !sb_model_public_suffix(suffix, n))
		return 0;
	return sb_diag_set(b->d, file, line, col,
			   "route \"%s\": \"%s\" is a public suffix, under which anyone may "
			   "register a domain, so the wildcard would take every such domain; "
			   "a wildcard names one domain (\"*.example.com/*\")",
			   r->pattern, suffix);
}

static int copy_routes(struct builder *b, const sb_wr_env *e, const char *file, sb_deployment *dp)
{
	dp->nroutes = e->nroutes;
	dp->routes = sb_pool_alloc(b->m->pool, (e->nroutes + 1) * sizeof(sb_route));
	for (size_t i = 0; i < e->nroutes; i++) {
		char err[512];
		const sb_wr_route *wr = &e->routes[i];
		if (sb_route_parse(wr->pattern, b->m->pool, &dp->routes[i], err, sizeof(err)) < 0)
			return sb_diag_set(b->d, file, wr->line, wr->col, "%s", err);
		if (wildcard_suffix_check(b, &dp->routes[i], file, wr->line, wr->col) < 0)
			return SB_EINVAL;
		dp->routes[i].custom_domain = wr->custom_domain;
		if (wr->custom_domain)
			sb_route_whole_host(&dp->routes[i]);
		dp->routes[i].file = file;
		dp->routes[i].line = wr->line;
		dp->routes[i].col = wr->col;
	}
	return 0;
}

static void copy_vars(sb_pool *pool, const sb_wr_env *e, const char *file, sb_deployment *dp)
{
	dp->nvars = e->nvars;
	dp->vars = sb_pool_alloc(pool, (e->nvars + 1) * sizeof(sb_var));
	for (size_t i = 0; i < e->nvars; i++) {
		dp->vars[i] = (sb_var){.key = e->vars[i].key,
				       .value = e->vars[i].value,
				       .is_string = e->vars[i].is_string,
				       .file = file,
				       .line = e->vars[i].line,
				       .col = e->vars[i].col};
	}
}

bool sb_model_in_zone(const sb_model *m, const char *h, size_t n)
{
	if (n && h[n - 1] == '.')
		n--; /* the same name, as the edge routes it */
	for (size_t z = 0; z < m->decl->nzones; z++) {
		const char *zn = m->decl->zones[z].name;
		size_t zl = strlen(zn);
		if (n >= zl && strncasecmp(h + n - zl, zn, zl) == 0 &&
		    (n == zl || h[n - zl - 1] == '.'))
			return true;
	}
	return false;
}

bool sb_model_public_suffix(const char *name, size_t n)
{
	/* The list's ICANN section, without its implicit "*" rule: com and
	 * co.uk are suffixes, a private platform's (github.io) is not, for a
	 * SaaS whose own domain is listed there routes its tenants under it,
	 * and neither is a name the list does not know (localhost, internal),
	 * which a private network names as it likes. libpsl's built-in copy
	 * of the list is in memory: no file is read. */
	const psl_ctx_t *psl = psl_builtin();
	char buf[254];
	if (!psl || n == 0 || n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	buf[n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return psl_is_public_suffix2(psl, buf, PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE) != 0;
}

/* Split production host h of a service with declared label slabel (NULL:
 * none) into the label the naming rule renames and the rest it keeps:
 * "codex.example.com" is "codex" + ".example.com"; with a declared label
 * "web" it is "web" + ".example.com", and the zone apex "example.com" is
 * "web" + "." + "example.com" (without one an apex has no label to rename).
 * Returns NULL, or why the rule renames nothing in h (a wildcard, no dot,
 * an apex or an encoded label without a declared label). */
static const char *naming_why(const sb_model *m, const char *slabel, const char *h,
			      const char **lab, size_t *lab_len, const char **sep,
			      const char **rest)
{
	if (h[0] == '*')
		return "a wildcard host is never renamed";
	const char *dot = strchr(h, '.');
	if (!dot)
		return "a host of one label has no domain to keep";
	bool apex = false;
	for (size_t z = 0; z < m->decl->nzones && !apex; z++)
		apex = strcmp(m->decl->zones[z].name, h) == 0;
	const char *why = "it is a declared zone's apex, which has no label of its own";
	/* Outside every declared zone, the public suffix list says where a
	 * domain's apex is: "customer.com" is one, and renaming its first
	 * label would name another party's domain, customer-staging.com. */
	if (!apex && !sb_model_in_zone(m, h, strlen(h))) {
		apex = sb_model_public_suffix(dot + 1, strlen(dot + 1));
		why = "it is a registered domain's apex (the public suffix list), which has no "
		      "label of its own";
	}
	/* An international first label is written in its encoded form
	 * (xn--caf-dma for café): text appended to it would no longer decode,
	 * and the name would be refused by every browser. Only a declared
	 * label names its derived hosts. */
	if (!slabel && strncasecmp(h, "xn--", 4) == 0)
		return "its first label is an international name in its xn-- form, which "
		       "would not decode with text added";
	if (apex && !slabel)
		return why;
	*lab = slabel ? slabel : h;
	*lab_len = slabel ? strlen(slabel) : (size_t)(dot - h);
	*sep = apex ? "." : "";
	*rest = apex ? h : dot;
	return NULL;
}

const char *sb_model_unrenamed(const sb_model *m, size_t svc, const char *h)
{
	const char *lab, *sep, *rest;
	size_t ll;
	return naming_why(m, m->services[svc].decl->label, h, &lab, &ll, &sep, &rest);
}

/* The label the rule gives production host h of a service with declared
 * label slabel in env (into lab, 256 bytes): its length (more than 63 when
 * it cannot be a DNS label), or -1 when the rule renames nothing in h.
 * *sep and *rest: what follows the label ("" and ".rest", or "." and an
 * apex). */
static int derived_label(const sb_model *m, const char *slabel, const char *h, sb_env env,
			 uint32_t pr, char *lab, const char **sep, const char **rest)
{
	const char *l;
	size_t ll;
	if (naming_why(m, slabel, h, &l, &ll, sep, rest))
		return -1;
	int n = sb_model_name_format(m, env, l, ll, pr, lab, 256);
	return n < 0 ? 256 : n;
}

static const char *derive_host(const sb_model *m, const char *slabel, const char *h, sb_env env,
			       uint32_t pr, sb_pool *pool)
{
	char lab[256];
	const char *sep, *rest;
	int n = derived_label(m, slabel, h, env, pr, lab, &sep, &rest);
	if (n < 0 || n > 63 || (size_t)n + strlen(sep) + strlen(rest) > 253)
		return NULL;
	return sb_pool_printf(pool, "%s%s%s", lab, sep, rest);
}

int sb_model_naming_base(const sb_model *m, size_t svc, const char *h, char *buf, size_t size)
{
	const char *l, *sep, *rest;
	size_t ll;
	if (naming_why(m, m->services[svc].decl->label, h, &l, &ll, &sep, &rest))
		return -1;
	int n = snprintf(buf, size, "%.*s%s%s", (int)ll, l, sep, rest);
	return n < 0 || (size_t)n >= size ? SB_ETOOLONG : n;
}

/* The service whose production route on host h (n bytes) matches path best
 * (the longest literal path that is a prefix of it, or any route on h when
 * none is), for rewriting a URL var that names h; -1 when h is no service's
 * production host. */
static ssize_t production_service(const sb_model *m, const char *h, size_t n, const char *path,
				  size_t pl)
{
	ssize_t best = -1;
	size_t best_len = 0;
	bool best_matches = false, best_prefix = false;
	for (size_t s = 0; s < m->nservices; s++) {
		const sb_deployment *dp = &m->deployments[m->services[s].deployment[0]];
		for (size_t i = 0; i < dp->nroutes; i++) {
			const sb_route *r = &dp->routes[i];
			if (r->host_wildcard || strlen(r->host) != n ||
			    strncasecmp(r->host, h, n) != 0)
				continue;
			size_t rl = strlen(r->path);
			bool matches = r->path_prefix ? pl >= rl && memcmp(path, r->path, rl) == 0
						      : pl == rl && memcmp(path, r->path, rl) == 0;
			/* as the route table orders them: the longest path, and at
			 * one length an exact path before a prefix */
			bool better = !best_matches || rl > best_len ||
				      (rl == best_len && best_prefix && !r->path_prefix);
			if (best < 0 || (matches && better)) {
				best = (ssize_t)s;
				best_len = rl;
				best_matches = matches;
				best_prefix = r->path_prefix;
			}
		}
	}
	return best;
}

/* Split url; its host without a trailing dot, which names the same host
 * (the dot stays in the value, after the host that replaces it). */
static bool split_url_host(const char *url, sb_url *u)
{
	if (sb_url_split(url, u) < 0)
		return false;
	if (u->host_len && u->host[u->host_len - 1] == '.')
		u->host_len--;
	return true;
}

/* Derive env's vars from production's: URL vars naming a production host
 * point at the same service in env; ENVIRONMENT names env. */
static void derive_vars(const sb_model *m, const sb_deployment *prod, sb_env env, uint32_t pr,
			sb_pool *pool, sb_deployment *dp)
{
	dp->nvars = prod->nvars;
	dp->vars = sb_pool_alloc(pool, (prod->nvars + 1) * sizeof(sb_var));
	for (size_t i = 0; i < prod->nvars; i++) {
		sb_var v = prod->vars[i];
		sb_url u;
		if (strcmp(v.key, "ENVIRONMENT") == 0 && v.is_string) {
			v.value = sb_env_name(env);
			v.derived = true;
		} else if (v.is_string && split_url_host(v.value, &u)) {
			const char *path = u.path_len ? u.path : "/";
			size_t pl = u.path_len ? u.path_len : 1;
			ssize_t svc = production_service(m, u.host, u.host_len, path, pl);
			if (svc < 0) {
				dp->vars[i] = v;
				continue;
			}
			char *h = sb_pool_strndup(pool, u.host, u.host_len);
			for (char *c = h; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c + 32);
			const char *nh =
			    derive_host(m, m->services[svc].decl->label, h, env, pr, pool);
			if (nh) {
				v.value = sb_pool_printf(pool, "%.*s%s%s", (int)(u.host - v.value),
							 v.value, nh, u.host + u.host_len);
				v.derived = true;
			}
		}
		dp->vars[i] = v;
	}
}

static void derive_routes(const sb_model *m, const sb_deployment *prod, sb_env env, uint32_t pr,
			  sb_pool *pool, sb_deployment *dp)
{
	dp->routes = sb_pool_alloc(pool, (prod->nroutes + 1) * sizeof(sb_route));
	dp->nroutes = 0;
	for (size_t i = 0; i < prod->nroutes; i++) {
		const sb_route *pr_ = &prod->routes[i];
		const char *h = derive_host(m, m->services[prod->service].decl->label, pr_->host,
					    env, pr, pool);
		if (!h)
			continue;
		sb_route r = *pr_;
		r.host = h;
		r.pattern =
		    sb_pool_printf(pool, "%s%s%s", h, pr_->path, pr_->path_prefix ? "*" : "");
		r.derived = true;
		r.base_host = pr_->host;
		/* custom_domain is kept: in every environment a route beats the
		 * custom domain on the same host, as in production */
		dp->routes[dp->nroutes++] = r;
	}
}

/*
 * A deployment name the naming rule makes ("web-staging", "web-preview-7")
 * is held to the 63 characters of a declared Worker name (wrangler.c):
 * it goes into request headers, environment variables and logs, and
 * Cloudflare refuses a longer Worker name. Reported at the service's name.
 */
static int name_room(const sb_model *m, size_t svc, sb_env env, uint32_t pr, sb_diag *d)
{
	const sb_service *s = &m->services[svc];
	char suffix[32];
	if (env == SB_ENV_PREVIEW)
		snprintf(suffix, sizeof(suffix), "-preview-%u", pr);
	else
		snprintf(suffix, sizeof(suffix), "-%s", sb_env_name(env));
	size_t n = strlen(s->name) + strlen(suffix);
	if (n <= 63)
		return 0;
	const sb_wrangler *wr = &s->decl->wr;
	return sb_diag_set(d, wr->file, wr->top.name_line, wr->top.name_col,
			   "service \"%s\": its %s deployment's name \"%s%s\" would be %zu "
			   "characters, longer than 63; shorten the service's name%s",
			   s->name, sb_env_name(env), s->name, suffix, n,
			   env == SB_ENV_STAGING ? " or name its staging in [env.staging]" : "");
}

int sb_model_label_room(const sb_model *m, size_t svc, sb_env env, uint32_t pr, sb_diag *d)
{
	const sb_deployment *prod = &m->deployments[m->services[svc].deployment[0]];
	if (env == SB_ENV_PREVIEW) {
		int r = name_room(m, svc, env, pr, d);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < prod->nroutes; i++) {
		const sb_route *rt = &prod->routes[i];
		const char *h = rt->host, *sep, *rest;
		char lab[256];
		int n =
		    derived_label(m, m->services[svc].decl->label, h, env, pr, lab, &sep, &rest);
		char what[48];
		if (env == SB_ENV_PREVIEW)
			snprintf(what, sizeof(what), "preview label for PR %u", pr);
		else
			snprintf(what, sizeof(what), "%s label", sb_env_name(env));
		if (n >= 0 && n <= 63 && (size_t)n + strlen(sep) + strlen(rest) > 253)
			/* a DNS name is at most 253 characters (RFC 1035 2.3.4) */
			return sb_diag_set(d, rt->file, rt->line, rt->col,
					   "route host \"%s\": with its %s \"%s\" the host would "
					   "be longer than 253 characters",
					   h, what, lab);
		if (n <= 63)
			continue; /* fits, or nothing to rename */
		const sb_service_decl *sd = m->services[svc].decl;
		if (sd->label)
			return sb_diag_set(d, m->decl->file, sd->label_line, sd->label_col,
					   "route host \"%s\": its %s (from this [[service]]'s "
					   "label \"%s\") would be longer than 63 characters; "
					   "shorten the label",
					   h, what, sd->label);
		return sb_diag_set(d, rt->file, rt->line, rt->col,
				   "route host \"%s\": its %s would be longer than 63 "
				   "characters; shorten the label or set a shorter one with "
				   "'label' in the service's [[service]]",
				   h, what);
	}
	return 0;
}

void sb_model_preview(const sb_model *m, size_t svc, uint32_t pr, sb_pool *pool, sb_deployment *out)
{
	const sb_service *s = &m->services[svc];
	const sb_deployment *prod = &m->deployments[s->deployment[0]];
	memset(out, 0, sizeof(*out));
	out->name = sb_pool_printf(pool, "%s-preview-%u", s->name, pr);
	out->service = svc;
	out->env = SB_ENV_PREVIEW;
	out->pr = pr;
	out->upstream =
	    s->decl->upstream[SB_ENV_PREVIEW].url || s->decl->upstream[SB_ENV_PREVIEW].argv
		? &s->decl->upstream[SB_ENV_PREVIEW]
		: NULL;
	out->file = prod->file;
	out->line = prod->line;
	out->col = prod->col;
	derive_vars(m, prod, SB_ENV_PREVIEW, pr, pool, out);
	derive_routes(m, prod, SB_ENV_PREVIEW, pr, pool, out);
}

ssize_t sb_model_service(const sb_model *m, const char *name)
{
	for (size_t i = 0; i < m->nservices; i++)
		if (strcmp(m->services[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static const sb_upstream_decl *upstream_of(const sb_service_decl *sd, sb_env e)
{
	return sd->upstream[e].url || sd->upstream[e].argv ? &sd->upstream[e] : NULL;
}

/* One file under two paths ("w.toml", "./w.toml", a link to it)? Paths
 * that cannot be looked at (an in-memory declaration) compare as text. */
static bool same_file(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return true;
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static int build_service(struct builder *b, size_t idx)
{
	sb_model *m = b->m;
	const sb_service_decl *sd = &m->decl->services[idx];
	sb_service *s = &m->services[idx];
	const char *file = sd->wr.file;
	s->name = sd->wr.top.name;
	s->decl = sd;
	for (size_t j = 0; j < idx; j++) {
		const sb_service_decl *o = m->services[j].decl;
		if (strcmp(m->services[j].name, s->name) != 0)
			continue;
		/* two [[service]] tables naming one file: say so where they are */
		if (sd->wrangler_file && o->wrangler_file &&
		    same_file(sd->wrangler_file, o->wrangler_file))
			return sb_diag_set(b->d, m->decl->file, sd->line, sd->col,
					   "this [[service]] points at %s, as the one at line %d "
					   "does: service \"%s\" would be declared twice",
					   sd->wrangler_file, o->line, s->name);
		return sb_diag_set(b->d, file, sd->wr.top.name_line, sd->wr.top.name_col,
				   "service \"%s\" is declared twice: this name is also given at "
				   "%s:%d:%d",
				   s->name, o->wr.file, o->wr.top.name_line, o->wr.top.name_col);
	}

	/* production */
	const char *pn = sd->wr_env[SB_ENV_PRODUCTION];
	const sb_wr_env *pe = sb_wrangler_env(&sd->wr, pn ? (pn[0] ? pn : NULL) : "production");
	if (!pe)
		pe = &sd->wr.top;
	int r = sb_wrangler_name_check(&sd->wr, pe, b->d);
	if (r < 0)
		return r;
	s->deployment[0] = m->ndeployments;
	sb_deployment *prod = new_deployment(b);
	prod->name = pe->name;
	prod->service = idx;
	prod->env = SB_ENV_PRODUCTION;
	prod->upstream = upstream_of(sd, SB_ENV_PRODUCTION);
	prod->file = file;
	prod->line = pe->line;
	prod->col = pe->col;
	r = copy_routes(b, pe, file, prod);
	if (r < 0)
		return r;
	copy_vars(m->pool, pe, file, prod);

	/* the service's label: declared, or the first label of its first named
	 * production host (not a wildcard, not a zone apex) */
	s->label = sd->label;
	for (size_t i = 0; !s->label && i < prod->nroutes; i++) {
		const char *nh =
		    derive_host(m, NULL, prod->routes[i].host, SB_ENV_PRODUCTION, 0, m->pool);
		if (nh)
			s->label = sb_pool_strndup(m->pool, nh, strcspn(nh, "."));
	}
	return 0;
}

static int build_staging(struct builder *b, size_t idx)
{
	sb_model *m = b->m;
	sb_service *s = &m->services[idx];
	const sb_service_decl *sd = s->decl;
	const char *file = sd->wr.file;
	const char *sn = sd->wr_env[SB_ENV_STAGING];
	const sb_wr_env *se = sn && !sn[0] ? NULL : sb_wrangler_env(&sd->wr, sn ? sn : "staging");
	if (se) {
		int r = sb_wrangler_name_check(&sd->wr, se, b->d);
		if (r < 0)
			return r;
	}
	if (!se) {
		int r = name_room(m, idx, SB_ENV_STAGING, 0, b->d);
		if (r < 0)
			return r;
	}
	s->deployment[1] = m->ndeployments;
	sb_deployment *st = new_deployment(b);
	const sb_deployment *prod = &m->deployments[s->deployment[0]];
	st->name = se ? se->name : sb_pool_printf(m->pool, "%s-staging", s->name);
	st->service = idx;
	st->env = SB_ENV_STAGING;
	st->upstream = upstream_of(sd, SB_ENV_STAGING);
	st->file = file;
	st->line = se ? se->line : prod->line;
	st->col = se ? se->col : prod->col;
	/* Routes inherited from the top level would claim production's hosts,
	 * so staging uses its own declared routes or the naming rule. */
	if (se && se->routes_declared) {
		int r = copy_routes(b, se, file, st);
		if (r < 0)
			return r;
	} else {
		int r = sb_model_label_room(m, idx, SB_ENV_STAGING, 0, b->d);
		if (r < 0)
			return r;
		derive_routes(m, prod, SB_ENV_STAGING, 0, m->pool, st);
	}
	if (se)
		copy_vars(m->pool, se, file, st);
	else
		derive_vars(m, prod, SB_ENV_STAGING, 0, m->pool, st);
	return 0;
}

/* ---- the live state (model/live.h) ------------------------------------- */

static int live_route(struct builder *b, sb_deployment *dp, const char *pattern, bool domain,
		      const char *where)
{
	char err[512];
	sb_route rt;
	if (domain) {
		/* as custom_domain = true in a wrangler file (docs/routing.md):
		 * the bare host, or the host followed by "/" or "/" and a star; a scheme is
		 * ignored as in any route */
		const char *h = pattern + sb_http_scheme_len(pattern);
		const char *slash = strchr(h, '/');
		size_t hl = slash ? (size_t)(slash - h) : strlen(h);
		if (memchr(h, '*', hl) ||
		    (slash && strcmp(slash, "/") != 0 && strcmp(slash, "/*") != 0))
			return sb_diag_set(
			    b->d, where, 0, 0,
			    "custom domain \"%s\" must be a whole host (the host, or "
			    "the host and \"/*\"), without '*' in the host or a path "
			    "(use a route for a wildcard or a path)",
			    pattern);
	}
	if (sb_route_parse(pattern, b->m->pool, &rt, err, sizeof(err)) < 0)
		return sb_diag_set(b->d, where, 0, 0, "%s", err);
	if (wildcard_suffix_check(b, &rt, where, 0, 0) < 0)
		return SB_EINVAL;
	rt.custom_domain = domain;
	if (domain)
		sb_route_whole_host(&rt);
	rt.file = where;
	sb_route *v = sb_pool_alloc(b->m->pool, (dp->nroutes + 2) * sizeof(sb_route));
	if (dp->nroutes)
		memcpy(v, dp->routes, dp->nroutes * sizeof(sb_route));
	v[dp->nroutes++] = rt;
	dp->routes = v;
	return 0;
}

static void live_var(sb_model *m, sb_deployment *dp, const char *key, const char *value,
		     const char *where)
{
	sb_var nv = {.key = key, .value = value, .is_string = true, .file = where};
	for (size_t i = 0; i < dp->nvars; i++)
		if (strcmp(dp->vars[i].key, key) == 0) {
			dp->vars[i] = nv;
			return;
		}
	sb_var *v = sb_pool_alloc(m->pool, (dp->nvars + 2) * sizeof(sb_var));
	if (dp->nvars)
		memcpy(v, dp->vars, dp->nvars * sizeof(sb_var));
	v[dp->nvars++] = nv;
	dp->vars = v;
}

/* Apply the live deploys to deployments [from, ndeployments). */
static int live_apply(struct builder *b, const sb_live *live, size_t from)
{
	sb_model *m = b->m;
	for (size_t i = from; live && i < m->ndeployments; i++) {
		sb_deployment *dp = &m->deployments[i];
		const sb_live_deploy *ld = sb_live_deploy_find(live, dp->name);
		if (!ld)
			continue;
		const char *where = sb_pool_printf(m->pool, "deploy %s", ld->name);
		for (size_t k = 0; k < ld->nvars; k++)
			live_var(m, dp, ld->var_keys[k], ld->var_values[k], where);
		int r;
		for (size_t k = 0; k < ld->nroutes; k++)
			if ((r = live_route(b, dp, ld->routes[k], false, where)) < 0)
				return r;
		for (size_t k = 0; k < ld->ndomains; k++)
			if ((r = live_route(b, dp, ld->domains[k], true, where)) < 0)
				return r;
		if (ld->upstream_url || ld->argc) {
			sb_upstream_decl *u = sb_pool_alloc(m->pool, sizeof(*u));
			u->url = ld->upstream_url;
			if (ld->argc) {
				u->argv = sb_pool_alloc(m->pool, (ld->argc + 1) * sizeof(char *));
				for (size_t k = 0; k < ld->argc; k++)
					u->argv[k] = ld->argv[k];
				u->argc = ld->argc;
			}
			dp->upstream = u;
		}
	}
	return 0;
}

ssize_t sb_model_deployment(const sb_model *m, const char *name)
{
	for (size_t i = 0; i < m->ndeployments; i++)
		if (strcmp(m->deployments[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

int sb_model_build(const sb_decl *decl, sb_model **out, sb_diag *d)
{
	return sb_model_build_live(decl, NULL, out, d);
}

static int dep_name_cmp(const void *a, const void *b, void *ctx)
{
	const sb_model *m = ctx;
	return strcmp(m->deployments[*(const size_t *)a].name,
		      m->deployments[*(const size_t *)b].name);
}

/* Two deployments with one name would share a secret, a `delete` and the
 * access log's name: service "foo"'s staging and a service called
 * "foo-staging", say. Refused, naming both. */
static int unique_names(const sb_model *m, sb_diag *d)
{
	int r = 0;
	size_t *ix = sb_xcalloc(m->ndeployments + 1, sizeof(*ix));
	for (size_t i = 0; i < m->ndeployments; i++)
		ix[i] = i;
	if (m->ndeployments > 1)
		qsort_r(ix, m->ndeployments, sizeof(*ix), dep_name_cmp, (void *)m);
	for (size_t i = 1; i < m->ndeployments && r == 0; i++) {
		const sb_deployment *a = &m->deployments[ix[i - 1]], *b = &m->deployments[ix[i]];
		if (strcmp(a->name, b->name) != 0)
			continue;
		if (a->line > b->line || (a->line == b->line && a->col > b->col)) {
			const sb_deployment *t = a;
			a = b;
			b = t;
		}
		char at[SB_WHERE_SIZE];
		r = sb_diag_set(d, b->file, b->line, b->col,
				"deployment \"%s\" (service %s, %s) has the name of another "
				"(service %s, %s, %s): rename one of them (a [[service]] label "
				"names hosts, not deployments)",
				b->name, m->services[b->service].name, sb_env_name(b->env),
				m->services[a->service].name, sb_env_name(a->env),
				sb_where(a->file, a->line, a->col, at, sizeof(at)));
	}
	free(ix);
	return r;
}

/*
 * The tenant-aware service serves {slug}.<zone> in the declared zones of its
 * production hosts (docs/routing.md). Without such a host no tenant would
 * ever be served, and `check` said nothing: refused here, from the declared
 * routes (called before the live state is applied).
 */
static int tenant_zone_check(const sb_model *m, sb_diag *d)
{
	const sb_decl *decl = m->decl;
	ssize_t ts = decl->tenant_service ? sb_model_service(m, decl->tenant_service) : -1;
	if (ts < 0)
		return 0; /* none, or not a service: reported by the caller */
	const sb_deployment *prod = &m->deployments[m->services[ts].deployment[0]];
	for (size_t i = 0; i < prod->nroutes; i++) {
		const char *h = prod->routes[i].host;
		h += h[0] != '*' ? 0 : h[1] == '.' ? 2 : 1;
		size_t hl = strlen(h);
		for (size_t z = 0; z < decl->nzones; z++) {
			const char *zn = decl->zones[z].name;
			size_t zl = strlen(zn);
			if (hl >= zl && strcmp(h + hl - zl, zn) == 0 &&
			    (hl == zl || h[hl - zl - 1] == '.'))
				return 0;
		}
	}
	if (prod->nroutes == 0)
		return sb_diag_set(
		    d, decl->file, decl->tenant_service_line, decl->tenant_service_col,
		    "[tenants] service \"%s\" has no production route: tenants are "
		    "served at {slug}.<zone> in the zones of its production hosts, so "
		    "none would be",
		    decl->tenant_service);
	return sb_diag_set(d, decl->file, decl->tenant_service_line, decl->tenant_service_col,
			   "[tenants] service \"%s\" has no production host in a declared "
			   "[[zone]] (%s is in none): tenants are served at {slug}.<zone> in the "
			   "zones of its production hosts, so none would be; declare the zone",
			   decl->tenant_service, prod->routes[0].host);
}

int sb_model_build_live(const sb_decl *decl, const sb_live *live, sb_model **out, sb_diag *d)
{
	int r = 0;
	sb_model *m = sb_xcalloc(1, sizeof(*m));
	struct builder b = {.m = m, .d = d};
	m->decl = decl;
	m->pool = sb_pool_new(0);
	m->tenant_service = -1;
	tmpl_split(decl->preview_format, &m->preview_tmpl);
	tmpl_split(decl->staging_format, &m->staging_tmpl);

	m->nreserved = SB_ARRAY_LEN(builtin_reserved) + decl->nreserved;
	m->reserved = sb_pool_alloc(m->pool, (m->nreserved + 1) * sizeof(char *));
	for (size_t i = 0; i < SB_ARRAY_LEN(builtin_reserved); i++)
		m->reserved[i] = (char *)builtin_reserved[i];
	for (size_t i = 0; i < decl->nreserved; i++) {
		char *l = sb_pool_strdup(m->pool, decl->reserved[i]);
		for (char *c = l; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
		m->reserved[SB_ARRAY_LEN(builtin_reserved) + i] = l;
	}
	m->reserved_len = sb_pool_alloc(m->pool, (m->nreserved + 1) * sizeof(size_t));
	for (size_t i = 0; i < m->nreserved; i++)
		m->reserved_len[i] = strlen(m->reserved[i]);

	m->nservices = decl->nservices;
	m->services = sb_pool_alloc(m->pool, (m->nservices + 1) * sizeof(sb_service));
	for (size_t i = 0; i < m->nservices; i++)
		if ((r = build_service(&b, i)) < 0)
			goto out;
	if ((r = tenant_zone_check(m, d)) < 0)
		goto out;
	/* Staging and previews rewrite URL vars against every production host,
	 * so they come after all production deployments exist. */
	if ((r = live_apply(&b, live, 0)) < 0)
		goto out;
	size_t from = m->ndeployments;
	for (size_t i = 0; i < m->nservices; i++)
		if ((r = build_staging(&b, i)) < 0)
			goto out;
	if ((r = live_apply(&b, live, from)) < 0)
		goto out;
	from = m->ndeployments;
	for (size_t p = 0; p < decl->npreview_prs; p++)
		for (size_t i = 0; i < m->nservices; i++) {
			uint32_t pr = decl->preview_prs[p];
			if ((r = sb_model_label_room(m, i, SB_ENV_PREVIEW, pr, d)) < 0)
				goto out;
			sb_model_preview(m, i, pr, m->pool, new_deployment(&b));
		}
	for (size_t p = 0; live && p < live->npreviews; p++) {
		uint32_t pr = live->previews[p].pr;
		bool listed = false;
		for (size_t k = 0; k < decl->npreview_prs; k++)
			listed |= decl->preview_prs[k] == pr;
		for (size_t i = 0; !listed && i < m->nservices; i++) {
			if ((r = sb_model_label_room(m, i, SB_ENV_PREVIEW, pr, d)) < 0)
				goto out;
			sb_model_preview(m, i, pr, m->pool, new_deployment(&b));
		}
	}
	if ((r = live_apply(&b, live, from)) < 0)
		goto out;
	for (size_t i = 0; live && i < m->ndeployments; i++)
		if (sb_live_is_deleted(live, m->deployments[i].name)) {
			m->deployments[i].nroutes = 0;
			m->deployments[i].upstream = NULL;
		}

	if ((r = unique_names(m, d)) < 0)
		goto out;
	if (decl->tenant_service) {
		m->tenant_service = sb_model_service(m, decl->tenant_service);
		if (m->tenant_service < 0) {
			r = sb_diag_set(d, decl->file, decl->tenant_service_line,
					decl->tenant_service_col,
					"[tenants] service \"%s\" is not a declared service (its "
					"wrangler.toml 'name')",
					decl->tenant_service);
			goto out;
		}
		m->services[m->tenant_service].tenant_aware = true;
	}
	for (size_t i = 0; i < decl->nstatic_tenants; i++) {
		const char *why = NULL;
		const char *slug = decl->static_tenants[i];
		if (sb_model_slug_check(m, slug, strlen(slug), &why) < 0) {
			r = sb_diag_set(
			    d, decl->file,
			    decl->static_pos ? decl->static_pos[2 * i] : decl->tenants_line,
			    decl->static_pos ? decl->static_pos[2 * i + 1] : decl->tenants_col,
			    "static tenant \"%s\" is not a valid slug: %s", slug, why);
			goto out;
		}
	}
	/* At least one [[service]] (checked last, so that another error is
	 * named first). A declaration without one is never meant, and an empty
	 * file is what a reload reads from a file caught between its truncation
	 * and its writing: served, it would drop every route. */
	if (m->nservices == 0)
		r = sb_diag_set(d, decl->file, 1, 1,
				"the declaration has no [[service]]: nothing to serve (an empty "
				"or half-written file? write it elsewhere, then rename)");
out:
	if (r < 0) {
		sb_model_free(m);
		m = NULL;
	}
	*out = m;
	return r;
}

void sb_model_free(sb_model *m)
{
	if (!m)
		return;
	sb_pool_free(m->pool);
	free(m->deployments);
	free(m);
}
