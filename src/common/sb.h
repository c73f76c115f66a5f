/*
 * Switchboard: shared foundations used by every module.
 *
 * Error convention (as in Knot DNS and libuv): a function that can fail
 * returns 0 (or a non-negative count) on success and a negative SB_E* code on
 * failure; sb_strerror() turns the code into text. Out-of-memory is not an
 * error code: allocation goes through sb_xmalloc() and friends, which abort
 * through one place, sb_oom().
 */
#ifndef SB_COMMON_SB_H
#define SB_COMMON_SB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_VERSION "0.1.0"

enum sb_error {
	SB_OK = 0,
	SB_EINVAL = -1,	       /* invalid argument or input */
	SB_ENOENT = -2,	       /* no such file, key or entry */
	SB_EPARSE = -3,	       /* syntax error in input */
	SB_EIO = -4,	       /* read or write failed */
	SB_EEXIST = -5,	       /* already exists / duplicate */
	SB_ERANGE = -6,	       /* value out of range */
	SB_ENOROUTE = -7,      /* no route serves this host and path */
	SB_ENOTENANT = -8,     /* tenant-aware host, slug not registered */
	SB_ESUSPENDED = -9,    /* tenant registered but suspended */
	SB_EBADSLUG = -10,     /* label is not a valid tenant slug */
	SB_ERESERVED = -11,    /* label is reserved, never a tenant */
	SB_ECONSISTENCY = -12, /* declaration is inconsistent */
	SB_ETOOLONG = -13,     /* name or value longer than allowed */
	SB_EPERM = -14,	       /* not allowed: a credential is missing or wrong */
	SB_ERROR_MIN = -15,
};

/* Text for an SB_E* code (never NULL; unknown codes give "unknown error"). */
const char *sb_strerror(int code);

/* Abort the process after printing "out of memory". The one OOM exit. */
_Noreturn void sb_oom(void);

/* malloc/calloc/realloc/strdup/strndup that never return NULL. */
void *sb_xmalloc(size_t n);
void *sb_xcalloc(size_t n, size_t size);
void *sb_xrealloc(void *p, size_t n);
char *sb_xstrdup(const char *s);
char *sb_xstrndup(const char *s, size_t n);

/*
 * A diagnostic with a position: "file:line:col: message". Loaders fill one on
 * failure so that every error says what and where. line/col are 1-based; 0
 * means "not known" and is left out when printed.
 */
typedef struct sb_diag {
	char file[512];
	int line;
	int col;
	char msg[768];
} sb_diag;

/* Set a diagnostic (printf-style message). Always returns SB_EINVAL so callers
 * can write `return sb_diag_set(...)`; pass another code with sb_diag_setc. */
int sb_diag_set(sb_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int sb_diag_setc(sb_diag *d, int code, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Format "file:line:col: msg" into buf (bounded). Returns buf. */
const char *sb_diag_format(const sb_diag *d, char *buf, size_t size);

/* "file:line:col" as sb_diag_format writes a place: without the line and
 * column when there are none (what a live change declares has no line),
 * "?" for no file. Written to buf; returns buf. */
#define SB_WHERE_SIZE 560 /* enough for any sb_diag file and its place */
const char *sb_where(const char *file, int line, int col, char *buf, size_t size);

/* A growable byte buffer, always NUL-terminated. */
typedef struct sb_buf {
	char *data;
	size_t len;
	size_t cap;
} sb_buf;

void sb_buf_init(sb_buf *b);
void sb_buf_free(sb_buf *b);
void sb_buf_reset(sb_buf *b);
void sb_buf_add(sb_buf *b, const void *p, size_t n);
/* Make room for extra more bytes (and the NUL) without adding them. */
void sb_buf_reserve(sb_buf *b, size_t extra);
/* Append n bytes the caller fills in: returns where they go (NUL-terminated
 * after them). Inline, for the request path's header building. */
static inline char *sb_buf_put(sb_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap)
		sb_buf_reserve(b, n);
	char *p = b->data + b->len;
	b->len += n;
	p[n] = '\0';
	return p;
}
void sb_buf_addc(sb_buf *b, char c);
void sb_buf_adds(sb_buf *b, const char *s);
void sb_buf_addf(sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_buf_vaddf(sb_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Take ownership of the bytes (the buffer is reset). */
char *sb_buf_steal(sb_buf *b);
/* Append s as a JSON string literal, quotes included. */
void sb_buf_add_json_str(sb_buf *b, const char *s, size_t n);

/*
 * A bump allocator: many small allocations freed at once. Used for loaded
 * declarations, the model and compiled tables, and later per request.
 */
typedef struct sb_pool sb_pool;

sb_pool *sb_pool_new(size_t block_size);
void sb_pool_free(sb_pool *p);
void *sb_pool_alloc(sb_pool *p, size_t n); /* 8-byte aligned, zeroed */
char *sb_pool_strndup(sb_pool *p, const char *s, size_t n);
char *sb_pool_strdup(sb_pool *p, const char *s);
char *sb_pool_printf(sb_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes obtained from the system for this pool (for memory reports). */
size_t sb_pool_footprint(const sb_pool *p);

/* Files the configuration reads are at most this big. */
#define SB_FILE_MAX (64 << 20)

/* Read a whole regular file (at most SB_FILE_MAX bytes). Returns 0, or
 * SB_ENOENT, SB_EIO, SB_EINVAL (a directory, a FIFO, a device) or
 * SB_ETOOLONG, with d filled. */
int sb_file_read(const char *path, char **out, size_t *len, sb_diag *d);

/* The value of one hexadecimal digit (either case), or -1. */
int sb_hexval(int c);

/* Parse a decimal unsigned integer from [s, s+n) with bounds. */
int sb_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);

/* The length of the first piece of the n bytes at p to write to a pipe
 * shared with other writers, which keeps a write whole only up to max
 * (PIPE_BUF) bytes: n when n <= max; otherwise the whole lines that fit in
 * max, or, when the first line is longer than max, that line alone (or
 * everything, when no newline ends it). Never 0 for n > 0. */
size_t sb_line_chunk(const char *p, size_t n, size_t max);

/* The edit distance between a and b: insertions, deletions, substitutions
 * and adjacent transpositions ("rollbakc"), for "did you mean" on short
 * words; SIZE_MAX when either is longer than 40 bytes. */
size_t sb_edit_distance(const char *a, const char *b);

/* A 64-bit finaliser (MurmurHash3's fmix64): spreads every input bit over
 * the whole word, for hashes combined from parts. */
static inline uint64_t sb_hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* 64-bit FNV-1a over bytes, lowercasing ASCII letters first. */
static inline uint64_t sb_hash_ci(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h ^= c;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * Split an absolute http(s) URL into spans of the original string:
 * scheme "https", host "api.example.com", port "8443" (may be empty), path
 * "/x" (empty when absent; query and fragment excluded). Returns 0 or
 * SB_EINVAL when it is not "scheme://host[:port][/path][?query][#frag]".
 */
typedef struct sb_url {
	const char *scheme, *host, *port, *path;
	size_t scheme_len, host_len, port_len, path_len;
} sb_url;
int sb_url_split(const char *url, sb_url *u);

/* The length of the "http://" or "https://" at the start of s, in any
 * letter case (RFC 3986 3.1: a scheme is case-insensitive); 0 when s has
 * neither. */
size_t sb_http_scheme_len(const char *s);

/* The request target of a split URL, as a client sends it: its path with
 * "." and ".." segments resolved (RFC 3986 5.2.4), and its query, without
 * the fragment; "/" before a query when there is no path. Points into the
 * URL, or into buf (size bytes) when it had to be rewritten (buf too small
 * for a path with dot segments: the path as written); *len receives its
 * length. */
const char *sb_url_target(const sb_url *u, char *buf, size_t size, size_t *len);

/* RFC 3986 5.2.4 remove_dot_segments of in[0..n) into out (at least n
 * bytes; the result is never longer). Returns the output's length. */
size_t sb_path_remove_dots(const char *in, size_t n, char *out);

/*
 * Is url an upstream the edge can forward to: "http://host[:port][/]", the
 * port 1 to 65535 (the host is not resolved here)? Returns 0, or SB_EINVAL
 * with *why saying what is wrong.
 */
int sb_url_check_upstream(const char *url, const char **why);

/* Can s name a var (an environment variable of a process the edge starts):
 * not empty, no '=', no control character? */
bool sb_var_key_ok(const char *s);

struct sockaddr_storage;
/*
 * Check url as sb_url_check_upstream does and resolve its host (port 80
 * when none is given) to its first address. Returns 0 with *addr and
 * *addrlen set, SB_EINVAL (not an upstream URL) or SB_ENOENT (the host does
 * not resolve), *why saying which.
 */
int sb_url_resolve(const char *url, struct sockaddr_storage *addr, size_t *addrlen,
		   const char **why);

#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available, n >= 1) and
 * its code point in *cp, or 0: overlong forms, surrogates and code points
 * above U+10FFFF are invalid. */
size_t sb_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);
/* Whether n bytes at s are valid UTF-8. */
bool sb_utf8_valid(const char *s, size_t n);
/* Replace each byte of s that does not start a valid sequence with '?'
 * (for messages cut at a byte count, or made from foreign bytes). */
void sb_utf8_clean(char *s);

#endif
