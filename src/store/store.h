/*
 * The store: Switchboard's persistent state (tenants today; deployments and
 * versions later). The interface is backend-neutral: the SQLite
 * implementation (store.c) keeps its database at <data_dir>/switchboard.db,
 * and a PostgreSQL one may follow behind the same functions. No SQL leaves
 * store.c.
 *
 * Concurrency: several processes may open the same store at once (the CLI
 * while a server runs): writes are short transactions, and a writer that
 * finds the database busy waits for it (up to a few seconds) instead of
 * failing. One sb_store handle must be used by one thread at a time; a server
 * gives its control thread its own handle.
 *
 * Every function that can fail returns 0 (or a documented non-negative value)
 * or a negative SB_E* code, and fills the sb_diag (which may be NULL) with the
 * database path and what went wrong. Database failures are SB_EIO.
 */
#ifndef SB_STORE_STORE_H
#define SB_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sb.h"
#include "config/decl.h"
#include "route/route.h"

/* Current schema version (stored with the database; see sb_store_open). */
#define SB_STORE_SCHEMA_VERSION 2

/* Largest accepted settings document, in bytes. */
#define SB_STORE_SETTINGS_MAX 65536

typedef struct sb_store sb_store;

/*
 * One stored tenant. display_name is NULL when the tenant has none;
 * settings_json is never NULL: a compact JSON object ("{}" by default).
 * Times are unix seconds (UTC).
 *
 * Ownership: a record filled by sb_store_tenant_get() owns its strings
 * (malloc'd); release them with sb_store_tenant_rec_clear(). A record passed
 * to an sb_store_tenant_list() callback belongs to the store and is valid
 * only during the call: copy what you keep.
 */
typedef struct sb_tenant_rec {
	char slug[64];
	sb_tenant_status status; /* SB_TENANT_ACTIVE or SB_TENANT_SUSPENDED */
	char *display_name;
	char *settings_json;
	int64_t created_at, updated_at;
} sb_tenant_rec;

/*
 * Open (creating when missing) the store in data_dir: the directory (and any
 * missing parent, mode 0700) and the database with its schema. An existing
 * database of an older schema version is migrated. Returns 0 and a handle in
 * *out, SB_EIO (cannot create the directory, or open or migrate the
 * database), or SB_ERANGE (the database was written by a newer Switchboard:
 * its schema version is above SB_STORE_SCHEMA_VERSION).
 */
int sb_store_open(const char *data_dir, sb_store **out, sb_diag *d);

/*
 * Open the store of data_dir for reading only: nothing is created, changed
 * or migrated, so it works on a store the user cannot write. Returns 0,
 * SB_ENOENT (no store there yet, or no such directory: d says which),
 * SB_EIO, or SB_ERANGE (a schema other than this Switchboard's: a newer
 * one, or an older one that `serve` or a change migrates).
 */
int sb_store_open_ro(const char *data_dir, sb_store **out, sb_diag *d);

/* Close a handle (NULL is fine). */
void sb_store_close(sb_store *st);

/* Path of the database, for messages ("<data_dir>/switchboard.db"). */
const char *sb_store_path(const sb_store *st);

/* Schema version of the open database (SB_STORE_SCHEMA_VERSION once open). */
int sb_store_schema_version(sb_store *st);

/*
 * Check a settings document: JSON text that must be an object (no duplicate
 * keys, at most SB_STORE_SETTINGS_MAX bytes, nested at most 64 levels).
 * When compact is not NULL it receives the document without the whitespace
 * between tokens, everything else (numbers, escapes) as written (malloc'd;
 * free it). Returns 0, SB_EINVAL (not JSON: the message gives jansson's
 * line, column and reason; not an object; too deep) or SB_ETOOLONG.
 */
int sb_store_settings_check(const char *settings_json, char **compact, sb_diag *d);

/*
 * What the tenant-aware service receives as X-Tenant-Config for rc: one line
 * of ASCII JSON, {"display_name": ..., "settings": {...}}, the settings as
 * stored with every non-ASCII character of their strings \u-escaped; or
 * NULL for a tenant with neither (no header then: most tenants of a big
 * registry). malloc'd; free it.
 */
char *sb_store_tenant_config(const sb_tenant_rec *rc);

/*
 * Add a tenant, active, with an optional display name (NULL or "" for none)
 * and settings (NULL for "{}"; stored compactly). The store checks the slug's
 * syntax only ([a-z0-9], '-' inside, 1 to 63 bytes); reserved labels and
 * naming suffixes depend on the declaration and are the caller's to check
 * (sb_model_slug_check). Returns 0, SB_EEXIST (a tenant with this slug is
 * stored), SB_EBADSLUG, SB_EINVAL or SB_ETOOLONG (settings), or SB_EIO.
 */
int sb_store_tenant_add(sb_store *st, const char *slug, const char *display_name,
			const char *settings_json, sb_diag *d);

/*
 * Set a stored tenant's status (SB_TENANT_ACTIVE or SB_TENANT_SUSPENDED;
 * setting the status it already has succeeds). Returns 0, SB_ENOENT (no
 * such tenant stored), SB_EINVAL (another status value) or SB_EIO.
 */
int sb_store_tenant_set_status(sb_store *st, const char *slug, sb_tenant_status status, sb_diag *d);

/*
 * Change a stored tenant's display name and/or settings; NULL leaves a field
 * unchanged, a display name of "" removes it. Settings are validated as in
 * sb_store_tenant_add. Returns 0, SB_ENOENT, SB_EINVAL, SB_ETOOLONG or
 * SB_EIO.
 */
int sb_store_tenant_update(sb_store *st, const char *slug, const char *display_name,
			   const char *settings_json, sb_diag *d);

/* Delete a stored tenant. Returns 0, SB_ENOENT or SB_EIO. */
int sb_store_tenant_remove(sb_store *st, const char *slug, sb_diag *d);

/*
 * Read one stored tenant into *rec (free its strings with
 * sb_store_tenant_rec_clear). Returns 0, SB_ENOENT (rec zeroed) or SB_EIO.
 */
int sb_store_tenant_get(sb_store *st, const char *slug, sb_tenant_rec *rec, sb_diag *d);

/* Free the strings of a record filled by sb_store_tenant_get and zero it. */
void sb_store_tenant_rec_clear(sb_tenant_rec *rec);

/*
 * Called once per tenant by sb_store_tenant_list. Return 0 to go on; any
 * other value stops the listing, which then returns that value.
 */
typedef int (*sb_store_tenant_fn)(void *ctx, const sb_tenant_rec *rec);

/*
 * Call fn for every stored tenant, ordered by slug. All records are read
 * (one consistent snapshot) before the first call, so a listing that fails
 * never calls fn, and fn may use the store. Returns the number of tenants
 * listed (>= 0), fn's non-zero value when it stopped the listing, or SB_EIO.
 */
int sb_store_tenant_list(sb_store *st, sb_store_tenant_fn fn, void *ctx, sb_diag *d);

/*
 * Build a fresh tenant set for the router: the declaration's static tenants
 * (active; decl may be NULL) plus every stored tenant, whose stored status
 * wins over the static one (a static tenant is suspended by storing a
 * suspended record for it). The caller frees *out with sb_tenants_free().
 * Returns 0, or SB_EIO with *out NULL.
 */
int sb_store_tenants_load(sb_store *st, const sb_decl *decl, sb_tenants **out, sb_diag *d);

/*
 * Cheap change detection, for polling (a server may call it several times a
 * second): *changed is true when the store was written since the previous
 * call on this handle (or since sb_store_open for the first call), by any
 * process or handle, this one included. Returns 0, or SB_EIO (*changed is
 * then true, so that a caller rebuilds rather than misses a change).
 */
int sb_store_changed(sb_store *st, bool *changed);

/* Forget this handle's own writes for sb_store_changed (a server that just
 * published what it wrote); changes by other processes still show. */
void sb_store_forget_own_writes(sb_store *st);

/* ---- transactions and versions ------------------------------------------ */

/*
 * An explicit transaction around several calls (the tenant functions and
 * sb_store_version_add join it): begin takes the write lock at once
 * (waiting for another writer up to a few seconds), commit makes it all
 * durable, rollback (also fine without a transaction) forgets it all.
 * begin and commit return 0 or SB_EIO; a commit that fails rolls back.
 */
int sb_store_begin(sb_store *st, sb_diag *d);
int sb_store_commit(sb_store *st, sb_diag *d);
void sb_store_rollback(sb_store *st);

/* One version, as listed. Strings are the store's, valid during the call. */
typedef struct sb_version_rec {
	int64_t id; /* 1, 2, ...: never reused */
	int64_t created_at;
	const char *command; /* the command line that made it */
	const char *summary; /* what changed, in words */
	bool has_state;	     /* false: tenants changed, the live state did not */
} sb_version_rec;

/*
 * Record a version: the command, a summary of what changed, and the live
 * state after it (a JSON document, model/live.h), or NULL when only tenants
 * changed. *id (may be NULL) receives its number. Returns 0 or SB_EIO.
 */
int sb_store_version_add(sb_store *st, const char *command, const char *summary,
			 const char *state_json, int64_t *id, sb_diag *d);

/*
 * The live state as of version at (0: the newest version): *version gets
 * the version's number (0 when none was ever recorded), *state_json the
 * state document in force then (malloc'd; NULL for the empty state).
 * Returns 0, SB_ENOENT (no version at) or SB_EIO.
 */
int sb_store_state_at(sb_store *st, int64_t at, int64_t *version, char **state_json, sb_diag *d);

typedef int (*sb_store_version_fn)(void *ctx, const sb_version_rec *v);

/* Call fn for the newest limit versions (0: all), newest first. Returns the
 * number listed, fn's non-zero value when it stopped, or SB_EIO. */
int sb_store_version_list(sb_store *st, int64_t limit, sb_store_version_fn fn, void *ctx,
			  sb_diag *d);

#endif
