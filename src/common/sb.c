/* Shared foundations: errors, allocation, buffers, pools, file reading. */
#include "common/sb.h"

#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const char *const errors[] = {
    [0] = "success",
    [-SB_EINVAL] = "invalid input",
    [-SB_ENOENT] = "not found",
    [-SB_EPARSE] = "syntax error",
    [-SB_EIO] = "input/output error",
    [-SB_EEXIST] = "already exists",
    [-SB_ERANGE] = "value out of range",
    [-SB_ENOROUTE] = "no route for this host and path",
    [-SB_ENOTENANT] = "tenant is not registered",
    [-SB_ESUSPENDED] = "tenant is suspended",
    [-SB_EBADSLUG] = "not a valid tenant slug",
    [-SB_ERESERVED] = "label is reserved",
    [-SB_ECONSISTENCY] = "declaration is inconsistent",
    [-SB_ETOOLONG] = "too long",
    [-SB_EPERM] = "not permitted",
};

const char *sb_strerror(int code)
{
	if (code > 0 || code <= SB_ERROR_MIN || !errors[-code])
		return "unknown error";
	return errors[-code];
}

_Noreturn void sb_oom(void)
{
	static const char msg[] = "switchboard: out of memory\n";
	fwrite(msg, 1, sizeof(msg) - 1, stderr);
	abort();
}

void *sb_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		sb_oom();
	return p;
}

void *sb_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		sb_oom();
	return p;
}

void *sb_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		sb_oom();
	return q;
}

char *sb_xstrndup(const char *s, size_t n)
{
	char *p = sb_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *sb_xstrdup(const char *s)
{
	return sb_xstrndup(s, strlen(s));
}

__attribute__((format(printf, 6, 0))) static int
diag_vset(sb_diag *d, int code, const char *file, int line, int col, const char *fmt, va_list ap)
{
	if (!d)
		return code;
	snprintf(d->file, sizeof(d->file), "%s", file ? file : "");
	d->line = line;
	d->col = col;
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	return code;
}

int sb_diag_set(sb_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_vset(d, SB_EINVAL, file, line, col, fmt, ap);
	va_end(ap);
	return r;
}

int sb_diag_setc(sb_diag *d, int code, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_vset(d, code, file, line, col, fmt, ap);
	va_end(ap);
	return r;
}

const char *sb_where(const char *file, int line, int col, char *buf, size_t size)
{
	if (!file || !file[0])
		file = "?";
	if (line > 0 && col > 0)
		snprintf(buf, size, "%s:%d:%d", file, line, col);
	else if (line > 0)
		snprintf(buf, size, "%s:%d", file, line);
	else
		snprintf(buf, size, "%s", file);
	return buf;
}

const char *sb_diag_format(const sb_diag *d, char *buf, size_t size)
{
	if (d->line > 0 && d->col > 0)
		snprintf(buf, size, "%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
	else if (d->line > 0)
		snprintf(buf, size, "%s:%d: %s", d->file, d->line, d->msg);
	else if (d->file[0])
		snprintf(buf, size, "%s: %s", d->file, d->msg);
	else
		snprintf(buf, size, "%s", d->msg);
	return buf;
}

/* ---- buffers ---------------------------------------------------------- */

void sb_buf_init(sb_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void sb_buf_free(sb_buf *b)
{
	free(b->data);
	sb_buf_init(b);
}

void sb_buf_reset(sb_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void buf_reserve(sb_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = sb_xrealloc(b->data, cap);
	b->cap = cap;
}

void sb_buf_reserve(sb_buf *b, size_t extra)
{
	buf_reserve(b, extra);
}

void sb_buf_add(sb_buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sb_buf_addc(sb_buf *b, char c)
{
	sb_buf_add(b, &c, 1);
}

void sb_buf_adds(sb_buf *b, const char *s)
{
	sb_buf_add(b, s, strlen(s));
}

void sb_buf_vaddf(sb_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void sb_buf_addf(sb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

char *sb_buf_steal(sb_buf *b)
{
	char *p = b->data ? b->data : sb_xstrdup("");
	sb_buf_init(b);
	return p;
}

void sb_buf_add_json_str(sb_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	sb_buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': sb_buf_add(b, "\\\"", 2); break;
		case '\\': sb_buf_add(b, "\\\\", 2); break;
		case '\n': sb_buf_add(b, "\\n", 2); break;
		case '\r': sb_buf_add(b, "\\r", 2); break;
		case '\t': sb_buf_add(b, "\\t", 2); break;
		case '\b': sb_buf_add(b, "\\b", 2); break;
		case '\f': sb_buf_add(b, "\\f", 2); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				sb_buf_add(b, e, 6);
			} else {
				sb_buf_addc(b, (char)c);
			}
		}
	}
	sb_buf_addc(b, '"');
}

/* ---- pools ------------------------------------------------------------ */

struct pool_block {
	struct pool_block *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

/* The pool and its first block are one allocation: a request's pool then
 * costs one malloc and one free, not two of each. The block follows the
 * pool header at a 16-byte boundary. */
struct sb_pool {
	struct pool_block *head;
	struct pool_block *first; /* inside this allocation */
	size_t block_size;
	size_t footprint;
};

#define POOL_HEAD_SIZE ((sizeof(struct sb_pool) + 15) & ~(size_t)15)

sb_pool *sb_pool_new(size_t block_size)
{
	block_size = block_size ? block_size : 16384;
	size_t total = POOL_HEAD_SIZE + sizeof(struct pool_block) + block_size;
	sb_pool *p = sb_xmalloc(total);
	p->block_size = block_size;
	p->footprint = total;
	p->first = (struct pool_block *)((char *)p + POOL_HEAD_SIZE);
	p->first->next = NULL;
	p->first->size = block_size;
	p->first->used = 0;
	p->head = p->first;
	return p;
}

void sb_pool_free(sb_pool *p)
{
	if (!p)
		return;
	struct pool_block *b = p->head;
	while (b) {
		struct pool_block *n = b->next;
		if (b != p->first)
			free(b);
		b = n;
	}
	free(p);
}

/* n bytes, 8-byte aligned, not cleared. */
static void *pool_raw(sb_pool *p, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct pool_block *b = p->head;
	if (b->size - b->used < n) {
		/* Large requests get their own block, so a big array does not waste
		 * the tail of the current one. */
		size_t size = n > p->block_size / 4 ? n : p->block_size;
		b = sb_xmalloc(sizeof(*b) + size);
		b->size = size;
		b->used = 0;
		p->footprint += sizeof(*b) + size;
		if (size == n) {
			b->next = p->head->next;
			p->head->next = b;
		} else {
			b->next = p->head;
			p->head = b;
		}
	}
	void *r = b->data + b->used;
	b->used += n;
	return r;
}

void *sb_pool_alloc(sb_pool *p, size_t n)
{
	void *r = pool_raw(p, n);
	memset(r, 0, n);
	return r;
}

char *sb_pool_strndup(sb_pool *p, const char *s, size_t n)
{
	char *r = pool_raw(p, n + 1);
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

char *sb_pool_strdup(sb_pool *p, const char *s)
{
	return sb_pool_strndup(p, s, strlen(s));
}

char *sb_pool_printf(sb_pool *p, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *r = sb_pool_alloc(p, n > 0 ? (size_t)n + 1 : 1);
	if (n > 0)
		vsnprintf(r, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return r;
}

size_t sb_pool_footprint(const sb_pool *p)
{
	return p->footprint;
}

/* ---- files and numbers ------------------------------------------------ */

int sb_file_read(const char *path, char **out, size_t *len, sb_diag *d)
{
	int ret = SB_EIO;
	sb_buf b;
	sb_buf_init(&b);
	/* non-blocking open: a FIFO would otherwise wait for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return sb_diag_setc(d, e == ENOENT ? SB_ENOENT : SB_EIO, path, 0, 0,
				    "cannot open: %s", strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = sb_diag_setc(d, SB_EINVAL, path, 0, 0,
				   S_ISDIR(st.st_mode) ? "is a directory, not a file"
						       : "not a regular file");
		goto out;
	}
	char chunk[16384];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sb_diag_set(d, path, 0, 0, "read failed: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > SB_FILE_MAX) {
			ret = sb_diag_setc(d, SB_ETOOLONG, path, 0, 0, "larger than %d MiB",
					   SB_FILE_MAX >> 20);
			goto out;
		}
		sb_buf_add(&b, chunk, (size_t)n);
	}
	*len = b.len;
	*out = sb_buf_steal(&b);
	ret = 0;
out:
	close(fd);
	sb_buf_free(&b);
	return ret;
}

int sb_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sb_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	if (n == 0 || n > 20)
		return SB_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SB_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return SB_ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return SB_ERANGE;
	*out = v;
	return 0;
}

size_t sb_path_remove_dots(const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0;
	/* RFC 3986 5.2.4, rule by rule; the output never outgrows the input */
	while (i < n) {
		const char *p = in + i;
		size_t left = n - i;
		if (left >= 3 && memcmp(p, "../", 3) == 0) {
			i += 3; /* A */
		} else if (left >= 2 && memcmp(p, "./", 2) == 0) {
			i += 2; /* A */
		} else if (left >= 3 && memcmp(p, "/./", 3) == 0) {
			i += 2; /* B: "/./" -> "/" */
		} else if (left == 2 && memcmp(p, "/.", 2) == 0) {
			out[o++] = '/'; /* B: "/." at the end -> "/" */
			i += 2;
		} else if ((left >= 4 && memcmp(p, "/../", 4) == 0) ||
			   (left == 3 && memcmp(p, "/..", 3) == 0)) {
			/* C: "/.." -> "/" (left in the input, or written at the
			 * end), and the last output segment goes with its "/" */
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			if (left == 3)
				out[o++] = '/';
			i += 3;
		} else if ((left == 1 && p[0] == '.') || (left == 2 && memcmp(p, "..", 2) == 0)) {
			i = n; /* D */
		} else {
			/* E: the first segment, with its leading "/" */
			size_t k = p[0] == '/' ? 1 : 0;
			while (k < left && p[k] != '/')
				k++;
			memcpy(out + o, p, k);
			o += k;
			i += k;
		}
	}
	return o;
}

const char *sb_url_target(const sb_url *u, char *buf, size_t size, size_t *len)
{
	const char *p = u->path ? u->path : "";
	size_t n = strcspn(p, "#");
	size_t pl = strcspn(p, "?#"); /* the path part */
	/* a client resolves "." and ".." segments before it sends (RFC 3986
	 * 5.2; curl and browsers do): the target is the path they leave */
	bool dots = false;
	for (size_t i = 0; i < pl && !dots; i++)
		dots = p[i] == '.' && (i == 0 || p[i - 1] == '/') &&
		       (i + 1 == pl || p[i + 1] == '/' ||
			(p[i + 1] == '.' && (i + 2 == pl || p[i + 2] == '/')));
	if (p[0] == '/' && (!dots || size <= n)) {
		*len = n; /* buf too small to resolve the dots: the path as written */
		return p;
	}
	if (p[0] == '/') {
		size_t o = sb_path_remove_dots(p, pl, buf);
		if (o == 0)
			buf[o++] = '/';
		memcpy(buf + o, p + pl, n - pl);
		*len = o + (n - pl);
		buf[*len] = '\0';
		return buf;
	}
	/* "https://host?x" and "https://host": the path is "/" */
	int w = snprintf(buf, size, "/%.*s", p[0] == '?' ? (int)n : 0, p);
	*len = w < 0 ? 0 : (size_t)w >= size ? size - 1 : (size_t)w;
	return buf;
}

size_t sb_http_scheme_len(const char *s)
{
	if (strncasecmp(s, "https://", 8) == 0)
		return 8;
	if (strncasecmp(s, "http://", 7) == 0)
		return 7;
	return 0;
}

int sb_url_split(const char *url, sb_url *u)
{
	memset(u, 0, sizeof(*u));
	const char *sep = strstr(url, "://");
	if (!sep || sep == url)
		return SB_EINVAL;
	for (const char *p = url; p < sep; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '+' ||
		      *p == '-' || *p == '.' || (p > url && *p >= '0' && *p <= '9')))
			return SB_EINVAL;
	u->scheme = url;
	u->scheme_len = (size_t)(sep - url);
	const char *h = sep + 3;
	const char *end = h + strcspn(h, "/?#");
	const char *at = memchr(h, '@', (size_t)(end - h));
	if (at)
		h = at + 1; /* userinfo is not part of the host */
	const char *colon = NULL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return SB_EINVAL;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		u->host = h;
		u->host_len = (size_t)(rb + 1 - h);
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		u->host = h;
		u->host_len = (size_t)((colon ? colon : end) - h);
	}
	if (u->host_len == 0)
		return SB_EINVAL;
	if (colon) {
		u->port = colon + 1;
		u->port_len = (size_t)(end - colon - 1);
		for (size_t i = 0; i < u->port_len; i++)
			if (u->port[i] < '0' || u->port[i] > '9')
				return SB_EINVAL;
	}
	if (*end == '/') {
		u->path = end;
		u->path_len = strcspn(end, "?#");
	} else {
		u->path = end;
		u->path_len = 0;
	}
	return 0;
}

int sb_url_check_upstream(const char *url, const char **why)
{
	sb_url u;
	if (sb_url_split(url, &u) < 0) {
		*why = "expected \"http://host:port\"";
		return SB_EINVAL;
	}
	if (u.scheme_len != 4 || strncasecmp(u.scheme, "http", 4) != 0) {
		*why = "the scheme must be http:// (the edge speaks HTTP/1.1 to upstreams)";
		return SB_EINVAL;
	}
	const char *h = u.scheme + u.scheme_len + 3;
	if (memchr(h, '@', (size_t)(u.host + u.host_len - h))) {
		*why = "an upstream URL has no user or password";
		return SB_EINVAL;
	}
	/* a name or IPv4 address, or an IPv6 one in brackets: anything else
	 * (a space, a '%') would pass here and fail only when serve resolves it */
	bool v6 = u.host_len >= 2 && u.host[0] == '[' && u.host[u.host_len - 1] == ']';
	bool host_ok = u.host_len > (v6 ? 2u : 0u) && u.host_len <= (v6 ? 47u : 253u);
	for (size_t i = v6; host_ok && i < u.host_len - v6; i++) {
		char ch = u.host[i];
		if (v6)
			host_ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
				  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
		else
			host_ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
				  (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.' || ch == '_';
	}
	if (!host_ok) {
		*why = "the host must be a name or an IP address (letters, digits, '-' and '.'; "
		       "an IPv6 address in [])";
		return SB_EINVAL;
	}
	if (u.port) {
		uint64_t port;
		if (sb_parse_u64(u.port, u.port_len, 65535, &port) < 0 || port == 0) {
			*why = "the port must be a number from 1 to 65535";
			return SB_EINVAL;
		}
	}
	if (u.path_len > 1 || u.path[u.path_len] != '\0') {
		*why = "an upstream URL has no path, query or fragment: requests keep their own";
		return SB_EINVAL;
	}
	return 0;
}

bool sb_var_key_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s == '=' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int sb_url_resolve(const char *url, struct sockaddr_storage *addr, size_t *addrlen,
		   const char **why)
{
	sb_url u;
	if (sb_url_check_upstream(url, why) < 0 || sb_url_split(url, &u) < 0)
		return SB_EINVAL;
	char host[256], port[8] = "80";
	const char *h = u.host;
	size_t hl = u.host_len;
	if (hl && h[0] == '[') { /* an IPv6 literal */
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		*why = "the host name is too long";
		return SB_EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (u.port_len) { /* 1 to 5 digits: sb_url_check_upstream */
		memcpy(port, u.port, u.port_len);
		port[u.port_len] = '\0';
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gr = getaddrinfo(host, port, &hints, &res);
	if (gr != 0 || !res) {
		*why = gr ? gai_strerror(gr) : "no address";
		return SB_ENOENT;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
size_t sb_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t v;
	size_t len;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		len = 2;
		v = c & 0x1F;
	} else if (c < 0xF0) {
		len = 3;
		v = c & 0x0F;
	} else if (c < 0xF5) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
		return 0;
	if (v >= 0xD800 && v <= 0xDFFF)
		return 0;
	*cp = v;
	return len;
}

void sb_utf8_clean(char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = sb_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (l == 0) {
			s[i++] = '?';
			continue;
		}
		i += l;
	}
}

bool sb_utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = sb_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

size_t sb_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return SIZE_MAX;
	size_t dd[41][41];
	for (size_t i = 0; i <= la; i++)
		dd[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		dd[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t c = dd[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (dd[i - 1][j] + 1 < c)
				c = dd[i - 1][j] + 1;
			if (dd[i][j - 1] + 1 < c)
				c = dd[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    dd[i - 2][j - 2] + 1 < c)
				c = dd[i - 2][j - 2] + 1;
			dd[i][j] = c;
		}
	return dd[la][lb];
}

size_t sb_line_chunk(const char *p, size_t n, size_t max)
{
	if (n <= max || max == 0)
		return n;
	const char *nl = memrchr(p, '\n', max);
	if (!nl)
		nl = memchr(p + max, '\n', n - max);
	return nl ? (size_t)(nl - p) + 1 : n;
}
