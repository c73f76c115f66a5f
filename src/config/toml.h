/*
 * TOML 1.1 reader.
 *
 * Parses a whole document into an immutable tree. Pure: no I/O; the caller
 * reads the file and passes its bytes and its name (used in diagnostics only).
 * Every value remembers the line and column where it starts, so that loaders
 * built on top (wrangler.toml, switchboard.toml) can report errors with a
 * position.
 *
 * Conformance is judged by the toml-test corpus (the TOML 1.1 list); see
 * tests/e2e/test_toml_corpus.py.
 */
#ifndef SB_CONFIG_TOML_H
#define SB_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sb.h"

typedef enum sb_toml_type {
	SB_TOML_STRING,
	SB_TOML_INTEGER,
	SB_TOML_FLOAT,
	SB_TOML_BOOL,
	SB_TOML_DATETIME,	/* offset date-time */
	SB_TOML_DATETIME_LOCAL, /* local date-time */
	SB_TOML_DATE_LOCAL,
	SB_TOML_TIME_LOCAL,
	SB_TOML_ARRAY,
	SB_TOML_TABLE,
} sb_toml_type;

/* One node of the tree (opaque). Owned by its document. */
typedef struct sb_toml_value sb_toml_value;

/*
 * Parse `len` bytes of `text`. `filename` is copied into diagnostics only.
 * On success returns 0 and stores the root table in *root (free it with
 * sb_toml_free). On failure returns SB_EPARSE, leaves *root NULL and fills
 * *d with file, 1-based line and column (columns count characters, not bytes;
 * a leading BOM is not counted) and a message saying what was expected.
 * Tables and arrays nested more than 128 levels deep are rejected, as are
 * floats that overflow a double.
 */
int sb_toml_parse(const char *text, size_t len, const char *filename, sb_toml_value **root,
		  sb_diag *d);

/*
 * Parse JSON with comments (wrangler.json, wrangler.jsonc) into the same
 * tree: the text is one object, which becomes the root table; objects are
 * tables, arrays arrays, numbers integers (floats with a fraction or an
 * exponent), true and false booleans. // and block comments and trailing
 * commas are allowed, as wrangler allows them. null is an error (TOML has
 * none), as are duplicate keys. Returns 0 or SB_EPARSE, as sb_toml_parse.
 */
int sb_toml_parse_jsonc(const char *text, size_t len, const char *filename, sb_toml_value **root,
			sb_diag *d);

/* Free a tree returned by sb_toml_parse or sb_toml_parse_jsonc (NULL is
 * fine). */
void sb_toml_free(sb_toml_value *root);

sb_toml_type sb_toml_type_of(const sb_toml_value *v);
/* Lower-case name of a type as used by toml-test ("string", "datetime-local",
 * ...; "array" and "table" for containers). */
const char *sb_toml_type_name(sb_toml_type t);

/* Position where the value starts (for a table: its header or opening brace;
 * for the root: 1:1). */
int sb_toml_line(const sb_toml_value *v);
int sb_toml_col(const sb_toml_value *v);

/* Tables keep keys in the order they first appeared. */
size_t sb_toml_table_len(const sb_toml_value *t);
/* i-th key, NUL-terminated; its length is stored in *keylen when keylen is
 * not NULL (a quoted key may contain "\u0000"). */
const char *sb_toml_table_key(const sb_toml_value *t, size_t i, size_t *keylen);
const sb_toml_value *sb_toml_table_value(const sb_toml_value *t, size_t i);
/* Where the i-th key was first written (of a dotted key or header, the part
 * that names this table's entry). */
void sb_toml_table_key_pos(const sb_toml_value *t, size_t i, int *line, int *col);
/* Value for a key, or NULL. */
const sb_toml_value *sb_toml_table_get(const sb_toml_value *t, const char *key);

size_t sb_toml_array_len(const sb_toml_value *a);
const sb_toml_value *sb_toml_array_at(const sb_toml_value *a, size_t i);

/* Scalars. Each must only be called on a value of the matching type. */
const char *sb_toml_string(const sb_toml_value *v, size_t *len); /* NUL-terminated */
int64_t sb_toml_int(const sb_toml_value *v);
double sb_toml_float(const sb_toml_value *v);
bool sb_toml_bool(const sb_toml_value *v);
/*
 * Date/time kinds: the canonical text, RFC 3339 with 'T' between date and
 * time and an upper-case 'Z', seconds always present (TOML 1.1 allows them to
 * be omitted; they are filled in as ":00"), fraction kept as written.
 */
const char *sb_toml_datetime(const sb_toml_value *v);

#endif
