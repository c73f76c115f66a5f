/*
 * TOML 1.1 reader: a hand-written recursive-descent parser over the bytes of
 * the document, building an immutable tree allocated from one sb_pool.
 *
 * Positions: the parser works on byte offsets; where() turns an offset into
 * a 1-based line and a column counted in characters (UTF-8 code points). It
 * caches the last answer, and the parser asks in increasing order, so the
 * total cost stays linear.
 *
 * Table rules (TOML 1.1, as checked by toml-test):
 * - a table defined by a header [x] (T_HEADER) cannot be defined again, nor
 *   extended with dotted keys from another section;
 * - a table created by a header only as a parent ([x.y] creates x) may be
 *   defined later by [x] once;
 * - a table created or extended by dotted keys remembers the section
 *   (header, or inline table) that did so; only that section may add to it
 *   with dotted keys, and no header may define it (a header may still define
 *   sub-tables of it);
 * - inline tables and arrays written as values are frozen (T_FROZEN);
 * - an array of tables (T_AOT) is extended by [[x]] and a header path goes
 *   through its last element.
 *
 * Robustness: nesting (tables and arrays, however created) is capped at
 * SB_TOML_MAX_DEPTH, so recursion here and in consumers stays bounded; table
 * lookups go through a hash index once a table grows, so hostile documents
 * with many keys stay linear.
 */
#include "config/toml.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_TOML_MAX_DEPTH 128
#define INDEX_MIN 8 /* tables with this many keys get a hash index */

enum {
	T_HEADER = 1 << 0, /* table defined by [header] */
	T_FROZEN = 1 << 1, /* inline table or array value: immutable */
	T_AOT = 1 << 2,	   /* array created by [[header]] */
};

typedef struct entry {
	const char *key;
	size_t keylen;
	int line, col; /* where the key was first written */
	sb_toml_value *val;
} entry;

struct sb_toml_value {
	sb_toml_type type;
	int line, col;
	unsigned flags;
	unsigned section; /* tables: section that created/extended it by dotted keys */
	int depth;	  /* containers: nesting level, the root is 0 */
	union {
		struct {
			const char *s;
			size_t len;
		} str; /* strings and the canonical text of date-times */
		int64_t i;
		double f;
		bool b;
		struct {
			sb_toml_value **items;
			size_t len, cap;
		} arr;
		struct {
			entry *ents;
			size_t len, cap;
			uint32_t *index; /* open addressing: entry number + 1, 0 = free */
			size_t icap;
		} tab;
	} u;
};

/* The root, with the pool that owns the whole tree. */
typedef struct toml_doc {
	sb_toml_value root;
	sb_pool *pool;
} toml_doc;

typedef struct keypart {
	const char *s;
	size_t len;
	int line, col;
} keypart;

typedef struct key {
	keypart *parts;
	int n, cap;
} keypath;

typedef struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
	const char *file;
	sb_diag *d;
	sb_pool *pool;
	sb_buf buf;  /* scratch for string contents */
	size_t base; /* where the text starts (after a BOM) */
	/* where() cache */
	size_t c_off, c_ls;
	int c_line, c_col;
	unsigned sections; /* last section number handed out */
	sb_toml_value *root;
} parser;

/* ---- positions and errors ---------------------------------------------- */

static void where(parser *p, size_t off, int *line, int *col)
{
	if (off > p->len)
		off = p->len;
	if (off < p->c_off) {
		if (off >= p->c_ls) { /* same line: recount from its start */
			p->c_off = p->c_ls;
			p->c_col = 1;
		} else {
			p->c_off = p->base;
			p->c_ls = p->base;
			p->c_line = 1;
			p->c_col = 1;
		}
	}
	for (size_t i = p->c_off; i < off; i++) {
		unsigned char c = p->s[i];
		if (c == '\n') {
			if (p->c_line < INT32_MAX)
				p->c_line++;
			p->c_col = 1;
			p->c_ls = i + 1;
		} else if ((c & 0xC0) != 0x80 && p->c_col < INT32_MAX) {
			p->c_col++;
		}
	}
	p->c_off = off;
	*line = p->c_line;
	*col = p->c_col;
}

static int perr_at(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr_at(parser *p, int line, int col, const char *fmt, ...)
{
	char msg[sizeof(((sb_diag *)0)->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sb_diag_setc(p->d, SB_EPARSE, p->file, line, col, "%s", msg);
}

static int perr(parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(parser *p, size_t off, const char *fmt, ...)
{
	char msg[sizeof(((sb_diag *)0)->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int line, col;
	where(p, off, &line, &col);
	return perr_at(p, line, col, "%s", msg);
}

/* Describe the character at off for a message ("'x'", "newline", ...). */
static const char *describe(parser *p, size_t off, char *buf, size_t size)
{
	if (off >= p->len)
		return "end of file";
	unsigned char c = p->s[off];
	uint32_t cp;
	if (c == '\n')
		return "newline";
	if (c == '\r')
		return off + 1 < p->len && p->s[off + 1] == '\n' ? "newline"
								 : "carriage return (U+000D)";
	if (c == '\t')
		return "tab";
	if (c == '\'') {
		snprintf(buf, size, "\"'\"");
	} else if (c > 0x20 && c < 0x7f) {
		snprintf(buf, size, "'%c'", c);
	} else if (c == ' ') {
		snprintf(buf, size, "' '");
	} else if (c < 0x80) {
		snprintf(buf, size, "control character U+%04X", c);
	} else if (sb_utf8_seq(p->s + off, p->len - off, &cp)) {
		snprintf(buf, size, "U+%04" PRIX32, cp);
	} else {
		snprintf(buf, size, "invalid UTF-8 byte 0x%02X", c);
	}
	return buf;
}

#define DESC(off) describe(p, (off), descbuf, sizeof(descbuf))

/* A key for messages: printable, escaped, cut at a character boundary when
 * long. size must be at least 16. */
static const char *key_repr(const char *k, size_t n, char *buf, size_t size)
{
	size_t o = 0, i;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (o + 12 > size && (c & 0xC0) != 0x80)
			break;
		if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\u%04X", c);
		} else if (c == '\'' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

#define KEY(kp) key_repr((kp)->s, (kp)->len, keybuf, sizeof(keybuf))

/* ---- tree building ---------------------------------------------------- */

static sb_toml_value *new_value(parser *p, sb_toml_type t, size_t off)
{
	sb_toml_value *v = sb_pool_alloc(p->pool, sizeof(*v));
	v->type = t;
	where(p, off, &v->line, &v->col);
	return v;
}

/* A table or array at nesting level `depth`, starting at line:col; NULL
 * (with the diagnostic set) when that is too deep. */
static sb_toml_value *new_container(parser *p, sb_toml_type t, int line, int col, int depth)
{
	if (depth > SB_TOML_MAX_DEPTH) {
		perr_at(p, line, col, "nesting too deep (more than %d levels)", SB_TOML_MAX_DEPTH);
		return NULL;
	}
	sb_toml_value *v = sb_pool_alloc(p->pool, sizeof(*v));
	v->type = t;
	v->line = line;
	v->col = col;
	v->depth = depth;
	return v;
}

/* The same, starting at byte offset off. */
static sb_toml_value *new_container_off(parser *p, sb_toml_type t, size_t off, int depth)
{
	int line, col;
	where(p, off, &line, &col);
	return new_container(p, t, line, col, depth);
}

static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void index_put(sb_toml_value *t, size_t i)
{
	size_t mask = t->u.tab.icap - 1;
	size_t h = (size_t)hash_key(t->u.tab.ents[i].key, t->u.tab.ents[i].keylen) & mask;
	while (t->u.tab.index[h])
		h = (h + 1) & mask;
	t->u.tab.index[h] = (uint32_t)(i + 1);
}

static void index_rebuild(parser *p, sb_toml_value *t, size_t icap)
{
	t->u.tab.index = sb_pool_alloc(p->pool, icap * sizeof(uint32_t));
	t->u.tab.icap = icap;
	for (size_t i = 0; i < t->u.tab.len; i++)
		index_put(t, i);
}

static entry *table_find_n(const sb_toml_value *t, const char *k, size_t n)
{
	if (t->u.tab.index) {
		size_t mask = t->u.tab.icap - 1;
		size_t h = (size_t)hash_key(k, n) & mask;
		uint32_t i;
		while ((i = t->u.tab.index[h]) != 0) {
			entry *e = &t->u.tab.ents[i - 1];
			if (e->keylen == n && memcmp(e->key, k, n) == 0)
				return e;
			h = (h + 1) & mask;
		}
		return NULL;
	}
	for (size_t i = 0; i < t->u.tab.len; i++) {
		entry *e = &t->u.tab.ents[i];
		if (e->keylen == n && memcmp(e->key, k, n) == 0)
			return e;
	}
	return NULL;
}

static int table_add(parser *p, sb_toml_value *t, const keypart *k, sb_toml_value *v)
{
	if (t->u.tab.len >= UINT32_MAX - 1)
		return perr(p, p->pos, "too many keys in one table");
	if (t->u.tab.len == t->u.tab.cap) {
		size_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 4;
		entry *e = sb_pool_alloc(p->pool, cap * sizeof(*e));
		if (t->u.tab.len)
			memcpy(e, t->u.tab.ents, t->u.tab.len * sizeof(*e));
		t->u.tab.ents = e;
		t->u.tab.cap = cap;
	}
	entry *e = &t->u.tab.ents[t->u.tab.len++];
	e->key = k->s;
	e->keylen = k->len;
	e->line = k->line;
	e->col = k->col;
	e->val = v;
	if (t->u.tab.index && t->u.tab.len * 2 > t->u.tab.icap)
		index_rebuild(p, t, t->u.tab.icap * 2);
	else if (t->u.tab.index)
		index_put(t, t->u.tab.len - 1);
	else if (t->u.tab.len >= INDEX_MIN)
		index_rebuild(p, t, INDEX_MIN * 4);
	return 0;
}

static void array_push(parser *p, sb_toml_value *a, sb_toml_value *v)
{
	if (a->u.arr.len == a->u.arr.cap) {
		size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
		sb_toml_value **items = sb_pool_alloc(p->pool, cap * sizeof(*items));
		if (a->u.arr.len)
			memcpy(items, a->u.arr.items, a->u.arr.len * sizeof(*items));
		a->u.arr.items = items;
		a->u.arr.cap = cap;
	}
	a->u.arr.items[a->u.arr.len++] = v;
}

static const char *kind_name(const sb_toml_value *v)
{
	if (v->type == SB_TOML_TABLE)
		return v->flags & T_FROZEN ? "an inline table" : "a table";
	if (v->type == SB_TOML_ARRAY)
		return v->flags & T_AOT ? "an array of tables" : "an array";
	switch (v->type) {
	case SB_TOML_STRING: return "a string";
	case SB_TOML_INTEGER: return "an integer";
	case SB_TOML_FLOAT: return "a float";
	case SB_TOML_BOOL: return "a boolean";
	default: return "a date-time";
	}
}

/* ---- lexical helpers ---------------------------------------------------- */

static int peek(const parser *p, size_t ahead)
{
	return p->pos + ahead < p->len ? p->s[p->pos + ahead] : -1;
}

static bool at_newline(const parser *p)
{
	int c = peek(p, 0);
	return c == '\n' || (c == '\r' && peek(p, 1) == '\n');
}

static void skip_newline(parser *p)
{
	p->pos += p->s[p->pos] == '\r' ? 2 : 1;
}

static void skip_ws(parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

static bool is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Validate one non-ASCII character at pos; on success advance past it. */
static int take_utf8(parser *p)
{
	uint32_t cp;
	size_t n = sb_utf8_seq(p->s + p->pos, p->len - p->pos, &cp);
	if (!n)
		return perr(p, p->pos, "invalid UTF-8 (byte 0x%02X)", p->s[p->pos]);
	p->pos += n;
	return 0;
}

/* At '#': skip the comment up to (not including) the end of the line. */
static int skip_comment(parser *p)
{
	p->pos++;
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];
		if (c == '\n' || (c == '\r' && peek(p, 1) == '\n'))
			return 0;
		if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
			p->pos++;
		} else if (c >= 0x80) {
			int r = take_utf8(p);
			if (r)
				return r;
		} else {
			return perr(p, p->pos, "control character U+%04X not allowed in comment",
				    c);
		}
	}
	return 0;
}

/* Whitespace, comments and newlines (inside arrays and inline tables). */
static int skip_wcn(parser *p)
{
	for (;;) {
		skip_ws(p);
		if (peek(p, 0) == '#') {
			int r = skip_comment(p);
			if (r)
				return r;
		} else if (at_newline(p)) {
			skip_newline(p);
		} else {
			return 0;
		}
	}
}

/* ---- strings ------------------------------------------------------------ */

static void add_utf8(sb_buf *b, uint32_t cp)
{
	char o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_buf_add(b, o, n);
}

/* Characters allowed in every string kind: tab, printable ASCII, valid
 * UTF-8. Appends one such character (ASCII run for speed) or fails. */
static int string_char(parser *p, const char *what)
{
	unsigned char c = p->s[p->pos];
	if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
		size_t start = p->pos++;
		while (p->pos < p->len) {
			c = p->s[p->pos];
			if (c == '"' || c == '\'' || c == '\\' || c < 0x20 || c >= 0x7f)
				break;
			p->pos++;
		}
		sb_buf_add(&p->buf, p->s + start, p->pos - start);
		return 0;
	}
	if (c >= 0x80) {
		size_t start = p->pos;
		int r = take_utf8(p);
		if (!r)
			sb_buf_add(&p->buf, p->s + start, p->pos - start);
		return r;
	}
	if (c == '\r' && peek(p, 1) != '\n')
		return perr(p, p->pos, "carriage return (U+000D) not allowed in %s", what);
	return perr(p, p->pos, "control character U+%04X not allowed in %s", c, what);
}

/* At '\\' in a basic string. */
static int parse_escape(parser *p, bool ml)
{
	char descbuf[48];
	size_t esc = p->pos++;
	if (p->pos >= p->len)
		return perr(p, esc, "unterminated string: expected an escape after '\\'");
	unsigned char e = p->s[p->pos];
	if (ml && (e == ' ' || e == '\t' || e == '\n' || e == '\r')) {
		/* line-ending backslash: must be followed by blanks then newline */
		size_t q = p->pos;
		while (q < p->len && (p->s[q] == ' ' || p->s[q] == '\t'))
			q++;
		if (!(q < p->len && (p->s[q] == '\n' ||
				     (p->s[q] == '\r' && q + 1 < p->len && p->s[q + 1] == '\n'))))
			return perr(
			    p, esc,
			    "invalid escape: '\\' followed by whitespace must end the line");
		p->pos = q;
		for (;;) {
			skip_ws(p);
			if (at_newline(p))
				skip_newline(p);
			else
				break;
		}
		return 0;
	}
	int ndig = 0;
	switch (e) {
	case 'b': sb_buf_addc(&p->buf, '\b'); break;
	case 't': sb_buf_addc(&p->buf, '\t'); break;
	case 'n': sb_buf_addc(&p->buf, '\n'); break;
	case 'f': sb_buf_addc(&p->buf, '\f'); break;
	case 'r': sb_buf_addc(&p->buf, '\r'); break;
	case 'e': sb_buf_addc(&p->buf, '\x1b'); break;
	case '"': sb_buf_addc(&p->buf, '"'); break;
	case '\\': sb_buf_addc(&p->buf, '\\'); break;
	case 'x': ndig = 2; break;
	case 'u': ndig = 4; break;
	case 'U': ndig = 8; break;
	default:
		if (e > 0x20 && e < 0x7f)
			return perr(p, esc, "invalid escape '\\%c'", e);
		return perr(p, esc, "invalid escape: '\\' followed by %s", DESC(p->pos));
	}
	p->pos++;
	if (!ndig)
		return 0;
	uint32_t cp = 0;
	for (int i = 0; i < ndig; i++) {
		int h = p->pos < p->len ? sb_hexval(p->s[p->pos]) : -1;
		if (h < 0)
			return perr(p, esc, "invalid escape '\\%c': expected %d hexadecimal digits",
				    e, ndig);
		cp = (cp << 4) | (uint32_t)h;
		p->pos++;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return perr(p, esc, "invalid escape: U+%" PRIX32 " is not a Unicode scalar value",
			    cp);
	add_utf8(&p->buf, cp);
	return 0;
}

/*
 * A string starting at pos (a quote). Multi-line forms only when allow_ml
 * (not in keys). The text goes to p->buf.
 */
static int parse_string(parser *p, bool allow_ml)
{
	char q = (char)p->s[p->pos];
	bool basic = q == '"';
	bool ml = allow_ml && peek(p, 1) == q && peek(p, 2) == q;
	const char *what = ml ? (basic ? "multi-line string" : "multi-line literal string")
			      : (basic ? "string" : "literal string");
	size_t open = p->pos;
	int r;
	sb_buf_reset(&p->buf);
	p->pos += ml ? 3 : 1;
	if (ml && at_newline(p))
		skip_newline(p);
	for (;;) {
		if (p->pos >= p->len)
			return perr(p, p->pos, "unterminated %s: expected %s", what,
				    ml ? (basic ? "'\"\"\"'" : "\"'''\"")
				       : (basic ? "'\"'" : "\"'\""));
		unsigned char c = p->s[p->pos];
		if (c == (unsigned char)q) {
			if (!ml) {
				p->pos++;
				return 0;
			}
			size_t n = 0;
			while (n < 6 && peek(p, n) == q)
				n++;
			if (n >= 3) {
				size_t extra = n - 3 > 2 ? 2 : n - 3;
				for (size_t i = 0; i < extra; i++)
					sb_buf_addc(&p->buf, q);
				p->pos += 3 + extra;
				return 0;
			}
			for (size_t i = 0; i < n; i++)
				sb_buf_addc(&p->buf, q);
			p->pos += n;
		} else if (c == '\\' && basic) {
			if ((r = parse_escape(p, ml)))
				return r;
		} else if (c == '\n' || (c == '\r' && peek(p, 1) == '\n')) {
			if (!ml) {
				int line, col;
				where(p, open, &line, &col);
				return perr(p, p->pos,
					    "unterminated %s (opened at %d:%d): newline before the "
					    "closing quote",
					    what, line, col);
			}
			sb_buf_addc(&p->buf, '\n');
			skip_newline(p);
		} else if ((r = string_char(p, what))) {
			return r;
		}
	}
}

/* ---- keys --------------------------------------------------------------- */

static int parse_simple_key(parser *p, keypart *kp)
{
	char descbuf[48];
	int c = peek(p, 0);
	size_t start = p->pos;
	where(p, start, &kp->line, &kp->col);
	if (c == '"' || c == '\'') {
		if (peek(p, 1) == c && peek(p, 2) == c)
			return perr(p, start, "multi-line strings cannot be used as keys");
		int r = parse_string(p, false);
		if (r)
			return r;
		kp->s = sb_pool_strndup(p->pool, p->buf.data ? p->buf.data : "", p->buf.len);
		kp->len = p->buf.len;
		return 0;
	}
	while (p->pos < p->len && is_bare(p->s[p->pos]))
		p->pos++;
	if (p->pos == start)
		return perr(p, start, "expected a key, found %s", DESC(start));
	kp->s = sb_pool_strndup(p->pool, (const char *)p->s + start, p->pos - start);
	kp->len = p->pos - start;
	return 0;
}

/* key = simple-key *( ws '.' ws simple-key ); trailing blanks are skipped. */
static int parse_key(parser *p, keypath *k)
{
	k->n = 0;
	for (;;) {
		if (k->n == k->cap) {
			int cap = k->cap ? k->cap * 2 : 4;
			keypart *np = sb_pool_alloc(p->pool, (size_t)cap * sizeof(*np));
			if (k->n)
				memcpy(np, k->parts, (size_t)k->n * sizeof(*np));
			k->parts = np;
			k->cap = cap;
		}
		if (k->n >= SB_TOML_MAX_DEPTH)
			return perr(p, p->pos, "key has too many parts (more than %d)",
				    SB_TOML_MAX_DEPTH);
		int r = parse_simple_key(p, &k->parts[k->n]);
		if (r)
			return r;
		k->n++;
		skip_ws(p);
		if (peek(p, 0) != '.')
			return 0;
		p->pos++;
		skip_ws(p);
	}
}

/* ---- scalar values ------------------------------------------------------ */

/* Digits of `base` with single underscores between them; at least one. */
static int digits(parser *p, int base, const char *what)
{
	char descbuf[48];
	int c = peek(p, 0);
	int h = c >= 0 ? sb_hexval(c) : -1;
	if (h < 0 || h >= base)
		return perr(p, p->pos, "invalid %s: expected a digit, found %s", what,
			    DESC(p->pos));
	for (;;) {
		p->pos++;
		c = peek(p, 0);
		if (c == '_') {
			p->pos++;
			c = peek(p, 0);
			h = c >= 0 ? sb_hexval(c) : -1;
			if (h < 0 || h >= base)
				return perr(p, p->pos - 1,
					    "invalid %s: '_' must be between two digits", what);
			continue;
		}
		h = c >= 0 ? sb_hexval(c) : -1;
		if (h < 0 || h >= base)
			return 0;
	}
}

/* A hint for a value written without quotes (service = web, http =
 * 127.0.0.1:8080), as nginx and Caddy files have them: the word at off,
 * quoted, or "" when there is no such word. */
static const char *quote_hint(parser *p, size_t off, char *buf, size_t size)
{
	size_t e = off;
	while (e < p->len && e - off <= 40 && p->s[e] > 0x20 && p->s[e] < 0x7f &&
	       !strchr(",]}#=\"'", p->s[e]))
		e++;
	if (e == off || e - off > 40 || (e < p->len && p->s[e] >= 0x7f))
		return "";
	snprintf(buf, size, "; text is written in quotes: \"%.*s\"", (int)(e - off),
		 (const char *)p->s + off);
	return buf;
}

static int parse_number(parser *p, size_t start, sb_toml_value **out)
{
	char descbuf[48];
	int r;
	int c = peek(p, 0);
	bool neg = false, sign = false;
	if (c == '+' || c == '-') {
		neg = c == '-';
		sign = true;
		p->pos++;
		c = peek(p, 0);
	}
	if (c == 'i' || c == 'n') {
		const char *w = c == 'i' ? "inf" : "nan";
		if (p->pos + 3 > p->len || memcmp(p->s + p->pos, w, 3) != 0) {
			char hint[80];
			const char *h = quote_hint(p, start, hint, sizeof(hint));
			return perr(p, start, "expected a value, found %s%s%s%s", DESC(start),
				    h[0] ? " (" : "", h[0] ? h + 2 : "", h[0] ? ")" : "");
		}
		p->pos += 3;
		sb_toml_value *v = new_value(p, SB_TOML_FLOAT, start);
		v->u.f = c == 'i' ? (neg ? -INFINITY : INFINITY) : NAN;
		*out = v;
		return 0;
	}
	if (c == '0' && !sign && (peek(p, 1) == 'x' || peek(p, 1) == 'o' || peek(p, 1) == 'b')) {
		int base = peek(p, 1) == 'x' ? 16 : peek(p, 1) == 'o' ? 8 : 2;
		p->pos += 2;
		size_t ds = p->pos;
		if ((r = digits(p, base, "integer")))
			return r;
		uint64_t v = 0;
		for (size_t i = ds; i < p->pos; i++) {
			if (p->s[i] == '_')
				continue;
			unsigned d = (unsigned)sb_hexval(p->s[i]);
			if (v > ((uint64_t)INT64_MAX - d) / (uint64_t)base)
				return perr(p, start, "integer out of range (64-bit signed)");
			v = v * (uint64_t)base + d;
		}
		sb_toml_value *val = new_value(p, SB_TOML_INTEGER, start);
		val->u.i = (int64_t)v;
		*out = val;
		return 0;
	}
	if (!is_digit(c))
		return perr(p, p->pos, "invalid number: expected a digit, found %s", DESC(p->pos));
	size_t int_start = p->pos;
	if (c == '0') {
		p->pos++;
		if (is_digit(peek(p, 0)) || peek(p, 0) == '_')
			return perr(p, int_start, "invalid number: leading zeros are not allowed");
	} else if ((r = digits(p, 10, "number"))) {
		return r;
	}
	size_t int_end = p->pos;
	bool is_float = false;
	if (peek(p, 0) == '.') {
		p->pos++;
		if ((r = digits(p, 10, "float")))
			return r;
		is_float = true;
	}
	if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
		p->pos++;
		if (peek(p, 0) == '+' || peek(p, 0) == '-')
			p->pos++;
		if ((r = digits(p, 10, "float exponent")))
			return r;
		is_float = true;
	}
	if (!is_float) {
		uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		for (size_t i = int_start; i < int_end; i++) {
			if (p->s[i] == '_')
				continue;
			unsigned d = (unsigned)(p->s[i] - '0');
			if (v > (lim - d) / 10)
				return perr(p, start, "integer out of range (64-bit signed)");
			v = v * 10 + d;
		}
		sb_toml_value *val = new_value(p, SB_TOML_INTEGER, start);
		val->u.i = neg ? (int64_t)(0 - v) : (int64_t)v;
		if (neg && v == (uint64_t)INT64_MAX + 1)
			val->u.i = INT64_MIN;
		*out = val;
		return 0;
	}
	sb_buf_reset(&p->buf);
	for (size_t i = start; i < p->pos; i++)
		if (p->s[i] != '_')
			sb_buf_addc(&p->buf, (char)p->s[i]);
	errno = 0;
	char *end;
	double f = strtod(p->buf.data, &end);
	if (end != p->buf.data + p->buf.len)
		return perr(p, start, "invalid float");
	if (errno == ERANGE && isinf(f))
		return perr(p, start, "float out of range");
	sb_toml_value *val = new_value(p, SB_TOML_FLOAT, start);
	val->u.f = f;
	*out = val;
	return 0;
}

/* Exactly n decimal digits at pos; returns the value or -1. */
static int fixed_digits(parser *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		int c = peek(p, (size_t)i);
		if (!is_digit(c))
			return -1;
		v = v * 10 + (c - '0');
	}
	p->pos += (size_t)n;
	return v;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

/* HH:MM[:SS[.frac]] at pos, appended canonically to p->buf. */
static int parse_time(parser *p)
{
	size_t t0 = p->pos;
	int h = fixed_digits(p, 2);
	if (h < 0)
		return perr(p, p->pos, "invalid time: expected 2-digit hour");
	if (peek(p, 0) != ':')
		return perr(p, p->pos, "invalid time: expected ':' after hour");
	p->pos++;
	int mi = fixed_digits(p, 2);
	if (mi < 0)
		return perr(p, p->pos, "invalid time: expected 2-digit minute");
	int sec = 0;
	bool has_sec = false;
	if (peek(p, 0) == ':') {
		p->pos++;
		sec = fixed_digits(p, 2);
		if (sec < 0)
			return perr(p, p->pos, "invalid time: expected 2-digit second");
		has_sec = true;
	}
	if (h > 23)
		return perr(p, t0, "invalid time: hour %d out of range (00-23)", h);
	if (mi > 59)
		return perr(p, t0 + 3, "invalid time: minute %d out of range (00-59)", mi);
	if (sec > 60)
		return perr(p, t0 + 6, "invalid time: second %d out of range (00-60)", sec);
	sb_buf_addf(&p->buf, "%02d:%02d:%02d", h, mi, sec);
	if (peek(p, 0) == '.') {
		if (!has_sec)
			return perr(p, p->pos, "invalid time: a fraction needs seconds");
		size_t f0 = p->pos++;
		if (!is_digit(peek(p, 0)))
			return perr(p, p->pos, "invalid time: expected digits after '.'");
		while (is_digit(peek(p, 0)))
			p->pos++;
		sb_buf_add(&p->buf, p->s + f0, p->pos - f0);
	}
	return 0;
}

static void datetime_value(parser *p, sb_toml_type type, size_t start, sb_toml_value **out)
{
	sb_toml_value *v = new_value(p, type, start);
	v->u.str.s = sb_pool_strndup(p->pool, p->buf.data, p->buf.len);
	v->u.str.len = p->buf.len;
	*out = v;
}

/*
 * A local time (HH:MM...) or a date (YYYY-MM-DD), possibly followed by a time
 * and an offset, starting at pos. The caller has seen "DD:" or "DDDD-". The
 * canonical text goes to p->buf.
 */
static int parse_datetime(parser *p, sb_toml_value **out)
{
	size_t start = p->pos;
	int r;
	sb_buf_reset(&p->buf);
	if (peek(p, 2) == ':') {
		if ((r = parse_time(p)))
			return r;
		datetime_value(p, SB_TOML_TIME_LOCAL, start, out);
		return 0;
	}
	int y = fixed_digits(p, 4);
	p->pos++; /* '-' */
	int m = fixed_digits(p, 2);
	if (m < 0)
		return perr(p, p->pos, "invalid date: expected 2-digit month");
	if (peek(p, 0) != '-')
		return perr(p, p->pos, "invalid date: expected '-' after month");
	p->pos++;
	int d = fixed_digits(p, 2);
	if (d < 0)
		return perr(p, p->pos, "invalid date: expected 2-digit day");
	if (m < 1 || m > 12)
		return perr(p, start + 5, "invalid date: month %d out of range (01-12)", m);
	if (d < 1 || d > days_in_month(y, m))
		return perr(p, start + 8, "invalid date: day %d out of range for %04d-%02d", d, y,
			    m);
	sb_buf_addf(&p->buf, "%04d-%02d-%02d", y, m, d);
	/* 'T', 't', or a space followed by a time ("HH:") */
	int c = peek(p, 0);
	if (!(c == 'T' || c == 't' ||
	      (c == ' ' && is_digit(peek(p, 1)) && is_digit(peek(p, 2)) && peek(p, 3) == ':'))) {
		datetime_value(p, SB_TOML_DATE_LOCAL, start, out);
		return 0;
	}
	p->pos++;
	sb_buf_addc(&p->buf, 'T');
	if ((r = parse_time(p)))
		return r;
	sb_toml_type type = SB_TOML_DATETIME_LOCAL;
	c = peek(p, 0);
	if (c == 'Z' || c == 'z') {
		p->pos++;
		sb_buf_addc(&p->buf, 'Z');
		type = SB_TOML_DATETIME;
	} else if (c == '+' || c == '-') {
		size_t o0 = p->pos++;
		int oh = fixed_digits(p, 2);
		if (oh < 0)
			return perr(p, p->pos, "invalid offset: expected 2-digit hour");
		if (peek(p, 0) != ':')
			return perr(p, p->pos, "invalid offset: expected ':' after hour");
		p->pos++;
		int om = fixed_digits(p, 2);
		if (om < 0)
			return perr(p, p->pos, "invalid offset: expected 2-digit minute");
		if (oh > 23 || om > 59)
			return perr(p, o0, "invalid offset: %c%02d:%02d out of range", c, oh, om);
		sb_buf_addf(&p->buf, "%c%02d:%02d", c, oh, om);
		type = SB_TOML_DATETIME;
	}
	datetime_value(p, type, start, out);
	return 0;
}

/* ---- composite values --------------------------------------------------- */

static int parse_value(parser *p, int depth, sb_toml_value **out);
static int parse_keyval(parser *p, sb_toml_value *tab, unsigned section);

static int parse_array(parser *p, int depth, sb_toml_value **out)
{
	char descbuf[48];
	int r;
	sb_toml_value *a = new_container_off(p, SB_TOML_ARRAY, p->pos, depth);
	if (!a)
		return SB_EPARSE;
	a->flags = T_FROZEN;
	p->pos++;
	for (;;) {
		if ((r = skip_wcn(p)))
			return r;
		if (peek(p, 0) == ']')
			break;
		sb_toml_value *v;
		if ((r = parse_value(p, depth + 1, &v)))
			return r;
		array_push(p, a, v);
		if ((r = skip_wcn(p)))
			return r;
		if (peek(p, 0) == ',') {
			p->pos++;
		} else if (peek(p, 0) != ']') {
			return perr(p, p->pos, "expected ',' or ']' after array element, found %s",
				    DESC(p->pos));
		}
	}
	p->pos++;
	*out = a;
	return 0;
}

static int parse_inline_table(parser *p, int depth, sb_toml_value **out)
{
	char descbuf[48];
	int r;
	sb_toml_value *t = new_container_off(p, SB_TOML_TABLE, p->pos, depth);
	if (!t)
		return SB_EPARSE;
	unsigned section = ++p->sections;
	p->pos++;
	for (;;) {
		if ((r = skip_wcn(p)))
			return r;
		if (peek(p, 0) == '}')
			break;
		if ((r = parse_keyval(p, t, section)))
			return r;
		if ((r = skip_wcn(p)))
			return r;
		if (peek(p, 0) == ',') {
			p->pos++;
		} else if (peek(p, 0) != '}') {
			return perr(p, p->pos,
				    "expected ',' or '}' after value in inline table, found %s",
				    DESC(p->pos));
		}
	}
	p->pos++;
	t->flags |= T_FROZEN;
	*out = t;
	return 0;
}

static int parse_value(parser *p, int depth, sb_toml_value **out)
{
	char descbuf[48];
	size_t start = p->pos;
	int c = peek(p, 0);
	int r;
	switch (c) {
	case '"':
	case '\'': {
		if ((r = parse_string(p, true)))
			return r;
		sb_toml_value *v = new_value(p, SB_TOML_STRING, start);
		v->u.str.s = sb_pool_strndup(p->pool, p->buf.data ? p->buf.data : "", p->buf.len);
		v->u.str.len = p->buf.len;
		*out = v;
		return 0;
	}
	case '[': return parse_array(p, depth, out);
	case '{': return parse_inline_table(p, depth, out);
	case 't':
	case 'f': {
		size_t n = c == 't' ? 4 : 5;
		if (p->pos + n > p->len || memcmp(p->s + p->pos, c == 't' ? "true" : "false", n) ||
		    is_bare(peek(p, n))) {
			char hint[80];
			return perr(
			    p, start,
			    "expected a value, found %s (booleans are 'true' and 'false'%s)",
			    DESC(start), quote_hint(p, start, hint, sizeof(hint)));
		}
		p->pos += n;
		sb_toml_value *v = new_value(p, SB_TOML_BOOL, start);
		v->u.b = c == 't';
		*out = v;
		break;
	}
	default:
		if (is_digit(c) && is_digit(peek(p, 1)) &&
		    ((is_digit(peek(p, 2)) && is_digit(peek(p, 3)) && peek(p, 4) == '-') ||
		     peek(p, 2) == ':')) {
			if ((r = parse_datetime(p, out)))
				return r;
		} else if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n') {
			if ((r = parse_number(p, start, out)))
				return r;
		} else {
			char hint[80];
			const char *h = quote_hint(p, start, hint, sizeof(hint));
			return perr(p, start, "expected a value, found %s%s%s%s", DESC(start),
				    h[0] ? " (" : "", h[0] ? h + 2 : "", h[0] ? ")" : "");
		}
		break;
	}
	/* A scalar token must end here. */
	c = peek(p, 0);
	if (c >= 0 && (is_bare(c) || c == '.' || c == ':' || c == '+')) {
		char hint[80];
		const char *h = quote_hint(p, start, hint, sizeof(hint));
		return perr(p, p->pos, "unexpected %s after value%s%s%s", DESC(p->pos),
			    h[0] ? " (" : "", h[0] ? h + 2 : "", h[0] ? ")" : "");
	}
	return 0;
}

/* key = value, into table `tab` for section `section`. */
static int parse_keyval(parser *p, sb_toml_value *tab, unsigned section)
{
	char descbuf[48], keybuf[160];
	keypath k = {0};
	int r = parse_key(p, &k);
	if (r)
		return r;
	if (peek(p, 0) != '=')
		return perr(p, p->pos, "expected '=' after key, found %s", DESC(p->pos));
	p->pos++;
	skip_ws(p);
	sb_toml_value *t = tab;
	for (int i = 0; i < k.n - 1; i++) {
		keypart *kp = &k.parts[i];
		entry *e = table_find_n(t, kp->s, kp->len);
		if (!e) {
			sb_toml_value *nt =
			    new_container(p, SB_TOML_TABLE, kp->line, kp->col, t->depth + 1);
			if (!nt)
				return SB_EPARSE;
			nt->section = section;
			if ((r = table_add(p, t, kp, nt)))
				return r;
			t = nt;
			continue;
		}
		sb_toml_value *v = e->val;
		if (v->type != SB_TOML_TABLE)
			return perr_at(p, kp->line, kp->col,
				       "cannot add keys to '%s': it is %s (defined at %d:%d)",
				       KEY(kp), kind_name(v), e->line, e->col);
		if (v->flags & T_FROZEN)
			return perr_at(p, kp->line, kp->col,
				       "cannot add keys to inline table '%s' (defined at %d:%d)",
				       KEY(kp), e->line, e->col);
		if ((v->flags & T_HEADER) || (v->section && v->section != section))
			return perr_at(p, kp->line, kp->col,
				       "cannot add keys to table '%s' with dotted keys here: it "
				       "was defined at %d:%d",
				       KEY(kp), v->line, v->col);
		v->section = section;
		t = v;
	}
	keypart *last = &k.parts[k.n - 1];
	entry *e = table_find_n(t, last->s, last->len);
	if (e)
		return perr_at(p, last->line, last->col,
			       "duplicate key '%s' (first defined at %d:%d)", KEY(last), e->line,
			       e->col);
	sb_toml_value *v;
	if ((r = parse_value(p, t->depth + 1, &v)))
		return r;
	return table_add(p, t, last, v);
}

/* [a.b] or [[a.b]]; on success *cur is the table that follows. */
static int parse_header(parser *p, sb_toml_value **cur)
{
	char descbuf[48], keybuf[160];
	size_t open = p->pos;
	bool aot = peek(p, 1) == '[';
	int r, hl, hc;
	where(p, open, &hl, &hc);
	p->pos += aot ? 2 : 1;
	skip_ws(p);
	keypath k = {0};
	if ((r = parse_key(p, &k)))
		return r;
	if (peek(p, 0) != ']' || (aot && peek(p, 1) != ']')) {
		size_t bad = p->pos + (aot && peek(p, 0) == ']');
		return perr(p, bad, "expected '%s' to close the %s header, found %s",
			    aot ? "]]" : "]", aot ? "array-of-tables" : "table", DESC(bad));
	}
	p->pos += aot ? 2 : 1;

	sb_toml_value *t = p->root;
	for (int i = 0; i < k.n - 1; i++) {
		keypart *kp = &k.parts[i];
		entry *e = table_find_n(t, kp->s, kp->len);
		if (!e) {
			sb_toml_value *nt = new_container(p, SB_TOML_TABLE, hl, hc, t->depth + 1);
			if (!nt)
				return SB_EPARSE;
			if ((r = table_add(p, t, kp, nt)))
				return r;
			t = nt;
			continue;
		}
		sb_toml_value *v = e->val;
		if (v->type == SB_TOML_TABLE && !(v->flags & T_FROZEN)) {
			t = v;
		} else if (v->type == SB_TOML_ARRAY && (v->flags & T_AOT)) {
			t = v->u.arr.items[v->u.arr.len - 1];
		} else {
			return perr_at(p, kp->line, kp->col,
				       "cannot define a table inside '%s': it is %s (defined at "
				       "%d:%d)",
				       KEY(kp), kind_name(v), e->line, e->col);
		}
	}
	keypart *last = &k.parts[k.n - 1];
	entry *e = table_find_n(t, last->s, last->len);
	if (!aot) {
		if (!e) {
			sb_toml_value *nt = new_container(p, SB_TOML_TABLE, hl, hc, t->depth + 1);
			if (!nt)
				return SB_EPARSE;
			nt->flags = T_HEADER;
			if ((r = table_add(p, t, last, nt)))
				return r;
			*cur = nt;
			return 0;
		}
		sb_toml_value *v = e->val;
		if (v->type == SB_TOML_TABLE && !(v->flags & (T_HEADER | T_FROZEN)) &&
		    !v->section) {
			v->flags |= T_HEADER;
			v->line = hl;
			v->col = hc;
			*cur = v;
			return 0;
		}
		if (v->type == SB_TOML_TABLE)
			return perr_at(p, last->line, last->col,
				       "table '%s' already defined at %d:%d", KEY(last), v->line,
				       v->col);
		return perr_at(p, last->line, last->col,
			       "cannot define table '%s': it is already %s (defined at %d:%d)",
			       KEY(last), kind_name(v), e->line, e->col);
	}
	sb_toml_value *a;
	if (!e) {
		if (!(a = new_container(p, SB_TOML_ARRAY, hl, hc, t->depth + 1)))
			return SB_EPARSE;
		a->flags = T_AOT;
		if ((r = table_add(p, t, last, a)))
			return r;
	} else if (e->val->type == SB_TOML_ARRAY && (e->val->flags & T_AOT)) {
		a = e->val;
	} else {
		return perr_at(p, last->line, last->col,
			       "cannot define array of tables '%s': it is already %s (defined "
			       "at %d:%d)",
			       KEY(last), kind_name(e->val), e->line, e->col);
	}
	sb_toml_value *el = new_container(p, SB_TOML_TABLE, hl, hc, a->depth + 1);
	if (!el)
		return SB_EPARSE;
	el->flags = T_HEADER;
	array_push(p, a, el);
	*cur = el;
	return 0;
}

static int parse_document(parser *p)
{
	char descbuf[48];
	sb_toml_value *cur = p->root;
	unsigned section = ++p->sections;
	int r;
	if (p->len >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
		p->pos = p->base = p->c_off = p->c_ls = 3; /* the BOM is not a column */
	while (p->pos < p->len) {
		skip_ws(p);
		int c = peek(p, 0);
		const char *what = NULL;
		if (c < 0) {
			break;
		} else if (at_newline(p)) {
			skip_newline(p);
			continue;
		} else if (c == '#') {
			/* comment on its own line: handled below */
		} else if (c == '[') {
			if ((r = parse_header(p, &cur)))
				return r;
			section = ++p->sections;
			what = "table header";
		} else {
			if ((r = parse_keyval(p, cur, section)))
				return r;
			what = "value";
		}
		skip_ws(p);
		if (peek(p, 0) == '#' && (r = skip_comment(p)))
			return r;
		if (p->pos >= p->len)
			break;
		if (!at_newline(p)) {
			if (what)
				return perr(p, p->pos, "expected newline after %s, found %s", what,
					    DESC(p->pos));
			return perr(p, p->pos, "unexpected %s", DESC(p->pos));
		}
		skip_newline(p);
	}
	return 0;
}

/* ---- JSON with comments (wrangler.json, wrangler.jsonc) ---------------
 *
 * The same tree from JSON as wrangler reads it: // and block comments and
 * trailing commas allowed, objects become tables, numbers integers (floats
 * when they have a fraction or an exponent). TOML has no null, so null is an
 * error that says so. Positions and messages work as for TOML.
 */

static int json_ws(parser *p)
{
	for (;;) {
		int c = peek(p, 0);
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			p->pos++;
		} else if (c == '/' && peek(p, 1) == '/') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (c == '/' && peek(p, 1) == '*') {
			size_t start = p->pos;
			p->pos += 2;
			while (p->pos < p->len && !(p->s[p->pos] == '*' && peek(p, 1) == '/'))
				p->pos++;
			if (p->pos >= p->len)
				return perr(p, start,
					    "unterminated comment: no '*/' after this '/*'");
			p->pos += 2;
		} else {
			return 0;
		}
	}
}

static int json_hex4(parser *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = sb_hexval(peek(p, 0));
		if (h < 0)
			return perr(p, p->pos, "expected four hex digits after \\u");
		v = v << 4 | (uint32_t)h;
		p->pos++;
	}
	*out = v;
	return 0;
}

/* At '"': the string's bytes into the pool (NUL-terminated; *len bytes). */
static int json_string(parser *p, const char **out, size_t *len)
{
	char descbuf[48];
	size_t open = p->pos++;
	sb_buf_reset(&p->buf);
	for (;;) {
		if (p->pos >= p->len)
			return perr(p, open, "unterminated string");
		unsigned char c = p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20)
			return perr(p, p->pos, "%s not allowed in a string (escape it)",
				    DESC(p->pos));
		if (c >= 0x80) {
			size_t start = p->pos;
			int r = take_utf8(p);
			if (r)
				return r;
			sb_buf_add(&p->buf, p->s + start, p->pos - start);
			continue;
		}
		if (c != '\\') {
			sb_buf_addc(&p->buf, (char)c);
			p->pos++;
			continue;
		}
		size_t esc = p->pos++;
		int e = peek(p, 0);
		if (e < 0)
			return perr(p, open, "unterminated string");
		p->pos++;
		switch (e) {
		case '"': sb_buf_addc(&p->buf, '"'); break;
		case '\\': sb_buf_addc(&p->buf, '\\'); break;
		case '/': sb_buf_addc(&p->buf, '/'); break;
		case 'b': sb_buf_addc(&p->buf, '\b'); break;
		case 'f': sb_buf_addc(&p->buf, '\f'); break;
		case 'n': sb_buf_addc(&p->buf, '\n'); break;
		case 'r': sb_buf_addc(&p->buf, '\r'); break;
		case 't': sb_buf_addc(&p->buf, '\t'); break;
		case 'u': {
			uint32_t cp, lo;
			int r = json_hex4(p, &cp);
			if (r)
				return r;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return perr(p, esc, "a lone low surrogate \\u%04X", (unsigned)cp);
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (peek(p, 0) != '\\' || peek(p, 1) != 'u')
					return perr(p, esc,
						    "a high surrogate \\u%04X without its pair",
						    (unsigned)cp);
				p->pos += 2;
				if ((r = json_hex4(p, &lo)))
					return r;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return perr(p, esc,
						    "a high surrogate \\u%04X without its pair",
						    (unsigned)cp);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			add_utf8(&p->buf, cp);
			break;
		}
		default: return perr(p, esc, "invalid escape '\\%c'", (char)e);
		}
	}
	char *s = sb_pool_alloc(p->pool, p->buf.len + 1);
	if (p->buf.len)
		memcpy(s, p->buf.data, p->buf.len);
	s[p->buf.len] = '\0';
	*out = s;
	*len = p->buf.len;
	return 0;
}

static int json_number(parser *p, sb_toml_value **out)
{
	char descbuf[48];
	size_t start = p->pos;
	bool is_float = false;
	if (peek(p, 0) == '-')
		p->pos++;
	if (peek(p, 0) == '0') {
		p->pos++;
	} else if (is_digit(peek(p, 0))) {
		while (is_digit(peek(p, 0)))
			p->pos++;
	} else {
		return perr(p, p->pos, "expected a digit, found %s", DESC(p->pos));
	}
	if (peek(p, 0) == '.') {
		is_float = true;
		p->pos++;
		if (!is_digit(peek(p, 0)))
			return perr(p, p->pos, "expected a digit after '.', found %s",
				    DESC(p->pos));
		while (is_digit(peek(p, 0)))
			p->pos++;
	}
	if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
		is_float = true;
		p->pos++;
		if (peek(p, 0) == '+' || peek(p, 0) == '-')
			p->pos++;
		if (!is_digit(peek(p, 0)))
			return perr(p, p->pos, "expected a digit in the exponent, found %s",
				    DESC(p->pos));
		while (is_digit(peek(p, 0)))
			p->pos++;
	}
	char num[64];
	size_t n = p->pos - start;
	if (n >= sizeof(num))
		return perr(p, start, "number too long");
	memcpy(num, p->s + start, n);
	num[n] = '\0';
	sb_toml_value *v = new_value(p, is_float ? SB_TOML_FLOAT : SB_TOML_INTEGER, start);
	errno = 0;
	char *end;
	if (is_float) {
		v->u.f = strtod(num, &end);
		if (errno == ERANGE && (v->u.f > 1 || v->u.f < -1))
			return perr(p, start, "number out of range of a double");
	} else {
		long long i = strtoll(num, &end, 10);
		if (errno == ERANGE)
			return perr(p, start, "integer out of range (64-bit)");
		v->u.i = i;
	}
	*out = v;
	return 0;
}

static int json_value(parser *p, int depth, sb_toml_value **out);

/* At '{' or '[': members or items up to the closing bracket. A table's
 * members go into `into` when it is not NULL (the root). */
static int json_container(parser *p, int depth, sb_toml_value *into, sb_toml_value **out)
{
	char descbuf[48], keybuf[96];
	bool obj = p->s[p->pos] == '{';
	char close = obj ? '}' : ']';
	sb_toml_value *v = into;
	if (!v && !(v = new_container_off(p, obj ? SB_TOML_TABLE : SB_TOML_ARRAY, p->pos, depth)))
		return SB_EPARSE;
	p->pos++;
	int r;
	for (;;) {
		if ((r = json_ws(p)))
			return r;
		if (peek(p, 0) == close) {
			p->pos++;
			break;
		}
		sb_toml_value *item;
		if (obj) {
			keypart k;
			if (peek(p, 0) != '"')
				return perr(p, p->pos,
					    "expected a member name in double quotes or '}', "
					    "found %s",
					    DESC(p->pos));
			where(p, p->pos, &k.line, &k.col);
			size_t kpos = p->pos;
			if ((r = json_string(p, &k.s, &k.len)))
				return r;
			if (table_find_n(v, k.s, k.len))
				return perr(p, kpos, "duplicate key '%s'", KEY(&k));
			if ((r = json_ws(p)))
				return r;
			if (peek(p, 0) != ':')
				return perr(p, p->pos,
					    "expected ':' after the member name, found %s",
					    DESC(p->pos));
			p->pos++;
			if ((r = json_ws(p)) || (r = json_value(p, depth + 1, &item)) ||
			    (r = table_add(p, v, &k, item)))
				return r;
		} else {
			if ((r = json_value(p, depth + 1, &item)))
				return r;
			array_push(p, v, item);
		}
		if ((r = json_ws(p)))
			return r;
		if (peek(p, 0) == ',') {
			p->pos++; /* a trailing comma is allowed, as wrangler allows it */
		} else if (peek(p, 0) != close) {
			return perr(p, p->pos, "expected ',' or '%c', found %s", close,
				    DESC(p->pos));
		}
	}
	v->flags |= T_FROZEN;
	if (out)
		*out = v;
	return 0;
}

static int json_value(parser *p, int depth, sb_toml_value **out)
{
	char descbuf[48];
	int c = peek(p, 0);
	if (c == '{' || c == '[')
		return json_container(p, depth, NULL, out);
	if (c == '"') {
		sb_toml_value *v = new_value(p, SB_TOML_STRING, p->pos);
		int r = json_string(p, &v->u.str.s, &v->u.str.len);
		if (r)
			return r;
		*out = v;
		return 0;
	}
	if (c == '-' || is_digit(c))
		return json_number(p, out);
	static const struct {
		const char *w;
		size_t n;
	} words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
	for (size_t i = 0; i < 3; i++)
		if (p->len - p->pos >= words[i].n &&
		    memcmp(p->s + p->pos, words[i].w, words[i].n) == 0) {
			if (i == 2)
				return perr(p, p->pos, "null is not supported: leave the key out");
			sb_toml_value *v = new_value(p, SB_TOML_BOOL, p->pos);
			v->u.b = i == 0;
			p->pos += words[i].n;
			*out = v;
			return 0;
		}
	return perr(p, p->pos, "expected a value, found %s", DESC(p->pos));
}

/* The whole text: one object, the root table. */
static int json_document(parser *p)
{
	char descbuf[48];
	if (p->len >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
		p->pos = p->base = p->c_off = p->c_ls = 3; /* the BOM is not a column */
	int r = json_ws(p);
	if (!r && peek(p, 0) != '{')
		r = perr(p, p->pos, "expected '{' (a JSON object), found %s", DESC(p->pos));
	if (!r)
		r = json_container(p, 0, p->root, NULL);
	if (!r)
		r = json_ws(p);
	if (!r && p->pos < p->len)
		r = perr(p, p->pos, "unexpected %s after the object", DESC(p->pos));
	p->root->flags = 0;
	return r;
}

/* ---- public API ---------------------------------------------------------- */

/* A document read by `body` (TOML or JSON) into a tree of its own pool. */
static int parse_with(int (*body)(parser *), const char *text, size_t len, const char *filename,
		      sb_toml_value **root, sb_diag *d)
{
	*root = NULL;
	sb_pool *pool = sb_pool_new(0);
	toml_doc *doc = sb_pool_alloc(pool, sizeof(*doc));
	doc->pool = pool;
	doc->root.type = SB_TOML_TABLE;
	doc->root.line = 1;
	doc->root.col = 1;
	parser p = {
	    .s = (const unsigned char *)(text ? text : ""),
	    .len = text ? len : 0,
	    .file = filename ? filename : "",
	    .d = d,
	    .pool = pool,
	    .c_line = 1,
	    .c_col = 1,
	    .root = &doc->root,
	};
	sb_buf_init(&p.buf);
	/* UTF-16 (what Windows PowerShell's '>' and Notepad's "Unicode" save):
	 * every other byte is NUL, which would be reported as a stray control
	 * character without saying why */
	const unsigned char *s = p.s;
	int r = p.len >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF) ||
			       (s[0] && !s[1]) || (!s[0] && s[1]))
		    ? perr_at(&p, 1, 1, "the file is UTF-16, not UTF-8: save it as UTF-8")
		    : body(&p);
	sb_buf_free(&p.buf);
	if (r) {
		sb_pool_free(pool);
		return SB_EPARSE;
	}
	*root = &doc->root;
	return 0;
}

int sb_toml_parse(const char *text, size_t len, const char *filename, sb_toml_value **root,
		  sb_diag *d)
{
	return parse_with(parse_document, text, len, filename, root, d);
}

int sb_toml_parse_jsonc(const char *text, size_t len, const char *filename, sb_toml_value **root,
			sb_diag *d)
{
	return parse_with(json_document, text, len, filename, root, d);
}

void sb_toml_free(sb_toml_value *root)
{
	if (!root)
		return;
	sb_pool_free(((toml_doc *)root)->pool);
}

sb_toml_type sb_toml_type_of(const sb_toml_value *v)
{
	return v->type;
}

const char *sb_toml_type_name(sb_toml_type t)
{
	switch (t) {
	case SB_TOML_STRING: return "string";
	case SB_TOML_INTEGER: return "integer";
	case SB_TOML_FLOAT: return "float";
	case SB_TOML_BOOL: return "bool";
	case SB_TOML_DATETIME: return "datetime";
	case SB_TOML_DATETIME_LOCAL: return "datetime-local";
	case SB_TOML_DATE_LOCAL: return "date-local";
	case SB_TOML_TIME_LOCAL: return "time-local";
	case SB_TOML_ARRAY: return "array";
	case SB_TOML_TABLE: return "table";
	}
	return "unknown";
}

int sb_toml_line(const sb_toml_value *v)
{
	return v->line;
}

int sb_toml_col(const sb_toml_value *v)
{
	return v->col;
}

size_t sb_toml_table_len(const sb_toml_value *t)
{
	return t && t->type == SB_TOML_TABLE ? t->u.tab.len : 0;
}

void sb_toml_table_key_pos(const sb_toml_value *t, size_t i, int *line, int *col)
{
	bool ok = t && t->type == SB_TOML_TABLE && i < t->u.tab.len;
	*line = ok ? t->u.tab.ents[i].line : 0;
	*col = ok ? t->u.tab.ents[i].col : 0;
}

const char *sb_toml_table_key(const sb_toml_value *t, size_t i, size_t *keylen)
{
	if (!t || t->type != SB_TOML_TABLE || i >= t->u.tab.len)
		return NULL;
	if (keylen)
		*keylen = t->u.tab.ents[i].keylen;
	return t->u.tab.ents[i].key;
}

const sb_toml_value *sb_toml_table_value(const sb_toml_value *t, size_t i)
{
	if (!t || t->type != SB_TOML_TABLE || i >= t->u.tab.len)
		return NULL;
	return t->u.tab.ents[i].val;
}

const sb_toml_value *sb_toml_table_get(const sb_toml_value *t, const char *key)
{
	if (!t || t->type != SB_TOML_TABLE || !key)
		return NULL;
	entry *e = table_find_n(t, key, strlen(key));
	return e ? e->val : NULL;
}

size_t sb_toml_array_len(const sb_toml_value *a)
{
	return a && a->type == SB_TOML_ARRAY ? a->u.arr.len : 0;
}

const sb_toml_value *sb_toml_array_at(const sb_toml_value *a, size_t i)
{
	if (!a || a->type != SB_TOML_ARRAY || i >= a->u.arr.len)
		return NULL;
	return a->u.arr.items[i];
}

const char *sb_toml_string(const sb_toml_value *v, size_t *len)
{
	if (!v || v->type != SB_TOML_STRING)
		return NULL;
	if (len)
		*len = v->u.str.len;
	return v->u.str.s;
}

int64_t sb_toml_int(const sb_toml_value *v)
{
	return v && v->type == SB_TOML_INTEGER ? v->u.i : 0;
}

double sb_toml_float(const sb_toml_value *v)
{
	return v && v->type == SB_TOML_FLOAT ? v->u.f : 0.0;
}

bool sb_toml_bool(const sb_toml_value *v)
{
	return v && v->type == SB_TOML_BOOL ? v->u.b : false;
}

const char *sb_toml_datetime(const sb_toml_value *v)
{
	if (!v || v->type < SB_TOML_DATETIME || v->type > SB_TOML_TIME_LOCAL)
		return NULL;
	return v->u.str.s;
}
