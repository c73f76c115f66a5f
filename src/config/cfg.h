/*
 * Typed access to a parsed TOML tree with positioned errors, shared by the
 * wrangler.toml and switchboard.toml loaders. Every getter that fails fills
 * the diagnostic with the file, the line and column of the offending value
 * (or of the table when a key is missing) and what was expected.
 */
#ifndef SB_CONFIG_CFG_H
#define SB_CONFIG_CFG_H

#include "common/sb.h"
#include "config/toml.h"

/* Optional string: *out stays as it was when the key is absent. Returns 0 or
 * SB_EINVAL (wrong type, diag set). The copy lives in pool. */
int sb_cfg_string(const sb_toml_value *t, const char *key, sb_pool *pool, const char *file,
		  char **out, sb_diag *d);
/* Required string: absent is an error too. */
int sb_cfg_string_req(const sb_toml_value *t, const char *key, const char *what, sb_pool *pool,
		      const char *file, char **out, sb_diag *d);
/* Optional bool. */
int sb_cfg_bool(const sb_toml_value *t, const char *key, const char *file, bool *out, sb_diag *d);
/* Optional integer in [min, max]. */
int sb_cfg_int(const sb_toml_value *t, const char *key, int64_t min, int64_t max, const char *file,
	       int64_t *out, sb_diag *d);
/* Optional array of strings; *out is a NULL-terminated array in pool. */
int sb_cfg_strings(const sb_toml_value *t, const char *key, sb_pool *pool, const char *file,
		   char ***out, size_t *n, sb_diag *d);
/* Optional table: *out is NULL when absent. */
int sb_cfg_table(const sb_toml_value *t, const char *key, const char *file,
		 const sb_toml_value **out, sb_diag *d);
/* Error at a value's position ("file:line:col: msg"). Returns SB_EINVAL. */
int sb_cfg_error(const sb_toml_value *v, const char *file, sb_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Error at the i-th key of table t (not at its value). Returns SB_EINVAL. */
int sb_cfg_key_error(const sb_toml_value *t, size_t i, const char *file, sb_diag *d,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The key of the NULL-terminated list `known` within two edits of k (and
 * fewer edits than k has characters), the closest first; NULL when none. */
const char *sb_cfg_nearest(const char *k, const char *const *known);

/* Reject keys of table t that are not in the NULL-terminated list `known`,
 * naming the table as `where` in the message. */
int sb_cfg_known_keys(const sb_toml_value *t, const char *const *known, const char *where,
		      const char *file, sb_diag *d);

#endif
