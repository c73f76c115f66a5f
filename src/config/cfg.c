/* Typed, positioned access to TOML trees for the loaders. */
#include "config/cfg.h"

#include <stdio.h>
#include <string.h>

int sb_cfg_error(const sb_toml_value *v, const char *file, sb_diag *d, const char *fmt, ...)
{
	char msg[sizeof(d->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sb_diag_set(d, file, v ? sb_toml_line(v) : 0, v ? sb_toml_col(v) : 0, "%s", msg);
}

int sb_cfg_key_error(const sb_toml_value *t, size_t i, const char *file, sb_diag *d,
		     const char *fmt, ...)
{
	char msg[sizeof(d->msg)];
	int line, col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_toml_table_key_pos(t, i, &line, &col);
	return sb_diag_set(d, file, line, col, "%s", msg);
}

static const char *article_type(sb_toml_type t)
{
	switch (t) {
	case SB_TOML_STRING: return "a string";
	case SB_TOML_INTEGER: return "an integer";
	case SB_TOML_FLOAT: return "a float";
	case SB_TOML_BOOL: return "a boolean";
	case SB_TOML_ARRAY: return "an array";
	case SB_TOML_TABLE: return "a table";
	default: return "a date/time";
	}
}

static int want(const sb_toml_value *v, sb_toml_type t, const char *key, const char *file,
		sb_diag *d)
{
	if (sb_toml_type_of(v) == t)
		return 0;
	return sb_cfg_error(v, file, d, "'%s' must be %s, not %s", key, article_type(t),
			    article_type(sb_toml_type_of(v)));
}

int sb_cfg_string(const sb_toml_value *t, const char *key, sb_pool *pool, const char *file,
		  char **out, sb_diag *d)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	if (!v)
		return 0;
	int r = want(v, SB_TOML_STRING, key, file, d);
	if (r < 0)
		return r;
	size_t n;
	const char *s = sb_toml_string(v, &n);
	if (memchr(s, '\0', n))
		return sb_cfg_error(v, file, d, "'%s' must not contain a NUL character", key);
	*out = sb_pool_strndup(pool, s, n);
	return 0;
}

int sb_cfg_string_req(const sb_toml_value *t, const char *key, const char *what, sb_pool *pool,
		      const char *file, char **out, sb_diag *d)
{
	if (!sb_toml_table_get(t, key))
		return sb_cfg_error(t, file, d, "missing '%s' (%s)", key, what);
	return sb_cfg_string(t, key, pool, file, out, d);
}

int sb_cfg_bool(const sb_toml_value *t, const char *key, const char *file, bool *out, sb_diag *d)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	if (!v)
		return 0;
	int r = want(v, SB_TOML_BOOL, key, file, d);
	if (r == 0)
		*out = sb_toml_bool(v);
	return r;
}

int sb_cfg_int(const sb_toml_value *t, const char *key, int64_t min, int64_t max, const char *file,
	       int64_t *out, sb_diag *d)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	if (!v)
		return 0;
	int r = want(v, SB_TOML_INTEGER, key, file, d);
	if (r < 0)
		return r;
	int64_t x = sb_toml_int(v);
	if (x < min || x > max)
		return sb_cfg_error(v, file, d, "'%s' must be between %lld and %lld, not %lld", key,
				    (long long)min, (long long)max, (long long)x);
	*out = x;
	return 0;
}

int sb_cfg_strings(const sb_toml_value *t, const char *key, sb_pool *pool, const char *file,
		   char ***out, size_t *n, sb_diag *d)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	if (!v)
		return 0;
	int r = want(v, SB_TOML_ARRAY, key, file, d);
	if (r < 0)
		return r;
	size_t len = sb_toml_array_len(v);
	char **arr = sb_pool_alloc(pool, (len + 1) * sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		const sb_toml_value *e = sb_toml_array_at(v, i);
		if (sb_toml_type_of(e) != SB_TOML_STRING)
			return sb_cfg_error(e, file, d,
					    "'%s' must be an array of strings; item %zu is %s", key,
					    i + 1, article_type(sb_toml_type_of(e)));
		size_t sl;
		const char *s = sb_toml_string(e, &sl);
		if (memchr(s, '\0', sl))
			return sb_cfg_error(e, file, d, "'%s' item %zu contains a NUL character",
					    key, i + 1);
		arr[i] = sb_pool_strndup(pool, s, sl);
	}
	*out = arr;
	*n = len;
	return 0;
}

int sb_cfg_table(const sb_toml_value *t, const char *key, const char *file,
		 const sb_toml_value **out, sb_diag *d)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	*out = NULL;
	if (!v)
		return 0;
	int r = want(v, SB_TOML_TABLE, key, file, d);
	if (r == 0)
		*out = v;
	return r;
}

const char *sb_cfg_nearest(const char *k, const char *const *known)
{
	const char *near = NULL;
	size_t best = 3;
	for (const char *const *p = known; *p; p++) {
		size_t e = sb_edit_distance(k, *p);
		if (e < best && e < strlen(k)) {
			best = e;
			near = *p;
		}
	}
	return near;
}

int sb_cfg_known_keys(const sb_toml_value *t, const char *const *known, const char *where,
		      const char *file, sb_diag *d)
{
	for (size_t i = 0; i < sb_toml_table_len(t); i++) {
		const char *k = sb_toml_table_key(t, i, NULL);
		bool ok = false;
		for (const char *const *p = known; *p; p++)
			if (strcmp(*p, k) == 0) {
				ok = true;
				break;
			}
		if (ok)
			continue;
		const char *near = sb_cfg_nearest(k, known);
		size_t n = 0;
		while (known[n])
			n++;
		if (near)
			return sb_cfg_key_error(t, i, file, d,
						"unknown key '%s' in %s (did you mean '%s'?)", k,
						where, near);
		sb_buf b;
		sb_buf_init(&b);
		for (size_t j = 0; j < n && j < 13; j++) {
			sb_buf_adds(&b, j ? ", " : "");
			sb_buf_adds(&b, known[j]);
		}
		if (n > 13)
			sb_buf_addf(&b, " and %zu more: see docs/configuration.md", n - 13);
		int r =
		    sb_cfg_key_error(t, i, file, d, "unknown key '%s' in %s (expected one of: %s)",
				     k, where, b.data);
		sb_buf_free(&b);
		return r;
	}
	return 0;
}
