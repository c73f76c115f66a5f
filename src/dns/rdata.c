/*
 * Static record data: the presentation forms a declaration may use, turned
 * into wire rdata. Deliberately small (seven types, docs/dns.md) and strict:
 * a record that does not parse is a load error with the reason, never a
 * silently different record. No libknot here: its text parser lives in
 * libzscanner, which we do not need for seven types.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/internal.h"

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int sb_dns_name_parse(const char *s, size_t n, const uint8_t *origin, size_t origin_len,
		      bool allow_wild, uint8_t *out, size_t cap, const char **why)
{
	*why = NULL;
	if (n == 1 && s[0] == '@') {
		if (origin_len > cap)
			goto toolong;
		memcpy(out, origin, origin_len);
		return (int)origin_len;
	}
	bool absolute = n > 0 && s[n - 1] == '.';
	if (absolute)
		n--;
	if (n == 0 && !absolute) {
		*why = "a name cannot be empty (write \"@\" for the zone itself)";
		return SB_EINVAL;
	}
	size_t o = 0;
	size_t i = 0;
	while (n > 0 && i <= n) {
		size_t j = i;
		while (j < n && s[j] != '.')
			j++;
		size_t len = j - i;
		if (len == 0) {
			*why = "a name cannot have an empty label (\"..\" or a leading dot)";
			return SB_EINVAL;
		}
		if (len > 63) {
			*why = "a label is at most 63 characters";
			return SB_EINVAL;
		}
		bool wild = len == 1 && s[i] == '*';
		if (wild && (!allow_wild || i != 0)) {
			*why = allow_wild ? "'*' may only be the first label"
					  : "'*' is not allowed here";
			return SB_EINVAL;
		}
		for (size_t k = i; k < j && !wild; k++)
			if (!label_char(s[k])) {
				*why = "a label has only letters, digits, '-' and '_'";
				return SB_EINVAL;
			}
		if (o + 1 + len > cap)
			goto toolong;
		out[o++] = (uint8_t)len;
		for (size_t k = i; k < j; k++) {
			char c = s[k];
			out[o++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		i = j + 1;
	}
	if (absolute) {
		if (o + 1 > cap)
			goto toolong;
		out[o++] = 0;
	} else {
		if (o + origin_len > cap)
			goto toolong;
		memcpy(out + o, origin, origin_len);
		o += origin_len;
	}
	if (o > SB_DNS_NAME_MAX)
		goto toolong;
	return (int)o;
toolong:
	*why = "a name is at most 255 bytes in wire format";
	return SB_EINVAL;
}

const char *sb_dns_name_text(const uint8_t *wire, size_t n, char *buf, size_t size)
{
	size_t o = 0, i = 0;
	if (size == 0)
		return buf;
	while (i < n && wire[i] != 0 && i + 1 + wire[i] <= n) {
		if (i && o + 1 < size)
			buf[o++] = '.';
		for (size_t k = 1; k <= wire[i] && o + 1 < size; k++)
			buf[o++] = (char)wire[i + k];
		i += 1 + (size_t)wire[i];
	}
	if (o == 0 && n > 0 && wire[0] == 0 && size > 1)
		buf[o++] = '.';
	buf[o] = '\0';
	return buf;
}

int sb_dns_static_type(const char *s, uint16_t *type)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {{"A", SB_DNS_A},	 {"AAAA", SB_DNS_AAAA}, {"CNAME", SB_DNS_CNAME},
		     {"MX", SB_DNS_MX},	 {"TXT", SB_DNS_TXT},	{"CAA", SB_DNS_CAA},
		     {"SRV", SB_DNS_SRV}};
	for (size_t i = 0; i < SB_ARRAY_LEN(types); i++)
		if (strcasecmp(s, types[i].name) == 0) {
			*type = types[i].type;
			return 0;
		}
	return SB_EINVAL;
}

/* ---- tokens ------------------------------------------------------------ */

struct cur {
	const char *p, *end;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_space(struct cur *c)
{
	while (c->p < c->end && is_space(*c->p))
		c->p++;
}

/* The next whitespace-separated token; false at the end. */
static bool token(struct cur *c, const char **t, size_t *n)
{
	skip_space(c);
	if (c->p == c->end)
		return false;
	*t = c->p;
	while (c->p < c->end && !is_space(*c->p))
		c->p++;
	*n = (size_t)(c->p - *t);
	return true;
}

static bool at_end(struct cur *c)
{
	skip_space(c);
	return c->p == c->end;
}

static int fail(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return SB_EINVAL;
}

/* A decimal number up to max from the next token. */
static int number(struct cur *c, uint64_t max, const char *what, uint64_t *v, char *err,
		  size_t errlen)
{
	const char *t;
	size_t n;
	if (!token(c, &t, &n)) {
		snprintf(err, errlen, "missing %s", what);
		return SB_EINVAL;
	}
	if (sb_parse_u64(t, n, max, v) < 0) {
		snprintf(err, errlen, "%s must be a number from 0 to %llu, not \"%.*s\"", what,
			 (unsigned long long)max, (int)(n > 64 ? 64 : n), t);
		return SB_EINVAL;
	}
	return 0;
}

/* A name from the next token, appended at out + *o. */
static int name_at(struct cur *c, const char *what, const uint8_t *origin, size_t olen,
		   uint8_t *out, size_t cap, size_t *o, char *err, size_t errlen)
{
	const char *t, *why;
	size_t n;
	if (!token(c, &t, &n)) {
		snprintf(err, errlen, "missing %s", what);
		return SB_EINVAL;
	}
	int r = sb_dns_name_parse(t, n, origin, olen, false, out + *o, cap - *o, &why);
	if (r < 0) {
		snprintf(err, errlen, "%s \"%.*s\": %s", what, (int)(n > 64 ? 64 : n), t, why);
		return SB_EINVAL;
	}
	*o += (size_t)r;
	return 0;
}

/*
 * A quoted string at c->p (which is '"'): \" \\ and \DDD escapes, any other
 * escaped character stands for itself. Appends the bytes at out + *o (up to
 * max of them). Returns 0 or SB_EINVAL.
 */
static int quoted(struct cur *c, uint8_t *out, size_t cap, size_t *o, size_t max, char *err,
		  size_t errlen)
{
	size_t start = *o;
	c->p++; /* the opening quote */
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p++;
		if (ch == '\\') {
			if (c->p == c->end)
				break;
			if (c->end - c->p >= 3 && c->p[0] >= '0' && c->p[0] <= '9' &&
			    c->p[1] >= '0' && c->p[1] <= '9' && c->p[2] >= '0' && c->p[2] <= '9') {
				unsigned v = (unsigned)(c->p[0] - '0') * 100 +
					     (unsigned)(c->p[1] - '0') * 10 +
					     (unsigned)(c->p[2] - '0');
				if (v > 255)
					return fail(err, errlen, "\\DDD escape above 255");
				ch = (unsigned char)v;
				c->p += 3;
			} else {
				ch = (unsigned char)*c->p++;
			}
		}
		if (*o - start >= max || *o >= cap)
			return fail(err, errlen,
				    max == 255 ? "a TXT string is at most 255 bytes (split it into "
						 "several quoted strings)"
					       : "a quoted string is too long");
		out[(*o)++] = ch;
	}
	if (c->p == c->end)
		return fail(err, errlen, "unterminated quoted string");
	c->p++; /* the closing quote */
	if (c->p < c->end && !is_space(*c->p))
		return fail(err, errlen, "text after a closing quote (add a space)");
	return 0;
}

/* ---- types ------------------------------------------------------------- */

static int txt(struct cur *c, uint8_t *out, size_t cap, char *err, size_t errlen)
{
	size_t o = 0;
	skip_space(c);
	if (c->p < c->end && *c->p == '"') {
		/* master-file form: one or more quoted character-strings */
		while (!at_end(c)) {
			if (*c->p != '"')
				return fail(err, errlen,
					    "quoted TXT data: every string is in double quotes");
			if (o + 1 > cap)
				return fail(err, errlen, "TXT data above 65535 bytes");
			size_t lenpos = o++;
			int r = quoted(c, out, cap, &o, 255, err, errlen);
			if (r < 0)
				return r;
			out[lenpos] = (uint8_t)(o - lenpos - 1);
		}
		return (int)o;
	}
	/* plain text: taken as is, split into strings of 255 bytes */
	const char *t = c->p;
	const char *e = c->end;
	while (e > t && is_space(e[-1]))
		e--;
	size_t n = (size_t)(e - t);
	if (n == 0)
		return fail(err, errlen,
			    "TXT data is empty (write \"\\\"\\\"\" for an empty string)");
	for (size_t i = 0; i < n; i += 255) {
		size_t k = n - i < 255 ? n - i : 255;
		if (o + 1 + k > cap)
			return fail(err, errlen, "TXT data above 65535 bytes");
		out[o++] = (uint8_t)k;
		memcpy(out + o, t + i, k);
		o += k;
	}
	return (int)o;
}

static int caa(struct cur *c, uint8_t *out, size_t cap, char *err, size_t errlen)
{
	uint64_t flags;
	int r = number(c, 255, "CAA flags", &flags, err, errlen);
	if (r < 0)
		return r;
	const char *t;
	size_t n;
	if (!token(c, &t, &n))
		return fail(err, errlen, "missing CAA tag (issue, issuewild, iodef)");
	if (n > 15)
		return fail(err, errlen, "a CAA tag is at most 15 characters");
	out[0] = (uint8_t)flags;
	out[1] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9')))
			return fail(err, errlen, "a CAA tag has only letters and digits");
		out[2 + i] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	size_t o = 2 + n;
	skip_space(c);
	if (c->p < c->end && *c->p == '"') {
		if ((r = quoted(c, out, cap, &o, 65535, err, errlen)) < 0)
			return r;
		if (!at_end(c))
			return fail(err, errlen, "text after the CAA value");
	} else {
		const char *e = c->end;
		while (e > c->p && is_space(e[-1]))
			e--;
		size_t vn = (size_t)(e - c->p);
		if (vn == 0)
			return fail(err, errlen, "missing CAA value (e.g. \"letsencrypt.org\")");
		if (o + vn > cap)
			return fail(err, errlen, "CAA value too long");
		memcpy(out + o, c->p, vn);
		o += vn;
	}
	return (int)o;
}

int sb_dns_rdata_parse(uint16_t type, const char *data, const uint8_t *origin, size_t origin_len,
		       uint8_t *out, size_t cap, char *err, size_t errlen)
{
	struct cur c = {data, data + strlen(data)};
	const char *t;
	size_t n;
	size_t o = 0;
	uint64_t v[3];
	int r;
	char tmp[64];
	switch (type) {
	case SB_DNS_A:
	case SB_DNS_AAAA: {
		bool v6 = type == SB_DNS_AAAA;
		if (!token(&c, &t, &n))
			return fail(err, errlen,
				    v6 ? "missing IPv6 address" : "missing IPv4 address");
		snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < sizeof(tmp) ? n : sizeof(tmp) - 1), t);
		if (n >= sizeof(tmp) || inet_pton(v6 ? AF_INET6 : AF_INET, tmp, out) != 1) {
			snprintf(err, errlen, "\"%s\" is not an %s address", tmp,
				 v6 ? "IPv6" : "IPv4");
			return SB_EINVAL;
		}
		o = v6 ? 16 : 4;
		break;
	}
	case SB_DNS_CNAME:
		if ((r = name_at(&c, "target", origin, origin_len, out, cap, &o, err, errlen)) < 0)
			return r;
		break;
	case SB_DNS_MX:
		if ((r = number(&c, 65535, "MX preference", &v[0], err, errlen)) < 0)
			return r;
		out[0] = (uint8_t)(v[0] >> 8);
		out[1] = (uint8_t)v[0];
		o = 2;
		if ((r = name_at(&c, "mail exchange", origin, origin_len, out, cap, &o, err,
				 errlen)) < 0)
			return r;
		break;
	case SB_DNS_SRV: {
		static const char *const what[] = {"SRV priority", "SRV weight", "SRV port"};
		for (int i = 0; i < 3; i++) {
			if ((r = number(&c, 65535, what[i], &v[i], err, errlen)) < 0)
				return r;
			out[o++] = (uint8_t)(v[i] >> 8);
			out[o++] = (uint8_t)v[i];
		}
		if ((r = name_at(&c, "SRV target", origin, origin_len, out, cap, &o, err, errlen)) <
		    0)
			return r;
		break;
	}
	case SB_DNS_TXT: return txt(&c, out, cap, err, errlen);
	case SB_DNS_CAA: return caa(&c, out, cap, err, errlen);
	default: return fail(err, errlen, "unsupported type");
	}
	if (!at_end(&c)) {
		skip_space(&c);
		snprintf(err, errlen, "unexpected \"%.*s\" after the data",
			 (int)((size_t)(c.end - c.p) > 64 ? 64 : (size_t)(c.end - c.p)), c.p);
		return SB_EINVAL;
	}
	return (int)o;
}
