/* The store on SQLite: <data_dir>/switchboard.db in WAL mode, shared by the
 * CLI and a running server. All SQL of Switchboard lives in this file. */
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define DISPLAY_NAME_MAX 256

struct sb_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *data_version; /* "PRAGMA data_version", kept for polling */
	int64_t last_version;
	bool wrote; /* this handle committed a write since the last poll */
};

/*
 * Migration i brings the schema from version i to i + 1. Append only: a
 * released migration is never edited.
 */
static const char *const migrations[] = {
    /* 0 -> 1: tenants */
    "CREATE TABLE tenants ("
    " slug TEXT PRIMARY KEY NOT NULL CHECK (length(slug) BETWEEN 1 AND 63),"
    " status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),"
    " display_name TEXT,"
    " settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 1 -> 2: versions of the live state (deploys, previews, deletes); a row
     * whose state is NULL changed tenants only and keeps the state before */
    "CREATE TABLE versions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created_at INTEGER NOT NULL,"
    " command TEXT NOT NULL,"
    " summary TEXT NOT NULL,"
    " state TEXT CHECK (state IS NULL OR json_valid(state))"
    ");",
};

_Static_assert(SB_ARRAY_LEN(migrations) == SB_STORE_SCHEMA_VERSION,
	       "one migration per schema version");

static const char tenant_columns[] = "slug, status, display_name, settings, created_at, updated_at";

/* ---- helpers ----------------------------------------------------------- */

static int db_error(sb_store *st, sb_diag *d, const char *what)
{
	/* SQLite's words alone hide the cause an operator acts on: which
	 * system call failed, or that the lock was waited for */
	int ec = sqlite3_extended_errcode(st->db) & 0xff, sys = sqlite3_system_errno(st->db);
	char why[160] = "";
	if (ec == SQLITE_BUSY)
		snprintf(why, sizeof(why), " (another process held it for %d s)",
			 BUSY_TIMEOUT_MS / 1000);
	else if ((ec == SQLITE_CANTOPEN || ec == SQLITE_IOERR) && sys)
		snprintf(why, sizeof(why), " (%s)", strerror(sys));
	return sb_diag_setc(d, SB_EIO, st->path, 0, 0, "%s: %s%s", what, sqlite3_errmsg(st->db),
			    why);
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

static int exec(sb_store *st, const char *sql, const char *what, sb_diag *d)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(st, d, what);
	return 0;
}

static int prepare(sb_store *st, const char *sql, sqlite3_stmt **stmt, sb_diag *d)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
		*stmt = NULL;
		return db_error(st, d, "cannot read the database");
	}
	return 0;
}

/* Run a statement that returns one integer (a PRAGMA's value). */
static int query_int(sb_store *st, const char *sql, int64_t *out, sb_diag *d)
{
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st, sql, &stmt, d);
	if (r < 0)
		return r;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	else
		r = db_error(st, d, "cannot read the database");
	sqlite3_finalize(stmt);
	return r;
}

static int begin(sb_store *st, sb_diag *d)
{
	/* IMMEDIATE takes the write lock up front, so a busy database is waited
	 * for (busy_timeout) instead of failing when a read would be upgraded. */
	return exec(st, "BEGIN IMMEDIATE", "cannot start a change", d);
}

static int commit(sb_store *st, sb_diag *d)
{
	int r = exec(st, "COMMIT", "cannot commit the change", d);
	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	else
		st->wrote = true;
	return r;
}

static void rollback(sb_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* mkdir -p with mode 0700 for every directory created. */
static int make_dirs(const char *dir, sb_diag *d)
{
	size_t n = strlen(dir);
	if (n == 0)
		return sb_diag_setc(d, SB_EINVAL, "", 0, 0, "the data directory is empty");
	char *p = sb_xstrndup(dir, n);
	int r = 0;
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		struct stat sbuf;
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			r = sb_diag_setc(d, SB_EIO, p, 0, 0, "cannot create the data directory: %s",
					 strerror(errno));
			goto out;
		}
		if (stat(p, &sbuf) != 0 || !S_ISDIR(sbuf.st_mode)) {
			r = sb_diag_setc(d, SB_EIO, p, 0, 0, "not a directory");
			goto out;
		}
		p[i] = c;
	}
out:
	free(p);
	return r;
}

/* The store checks slug syntax only; see sb_model_slug_check for the rest. */
static int slug_check(const char *slug, sb_diag *d)
{
	size_t n = strlen(slug);
	const char *why = NULL;
	if (n == 0 || n > SB_SLUG_MAX)
		why = "a slug is 1 to 63 characters";
	for (size_t i = 0; !why && i < n; i++) {
		char c = slug[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			why = "a slug has only a-z, 0-9 and '-'";
	}
	if (!why && (slug[0] == '-' || slug[n - 1] == '-'))
		why = "a slug cannot start or end with '-'";
	if (why)
		return sb_diag_setc(d, SB_EBADSLUG, "", 0, 0,
				    "'%.*s' is not a valid tenant slug: %s", n > 80 ? 80 : (int)n,
				    slug, why);
	return 0;
}

static int name_check(const char *name, sb_diag *d)
{
	size_t n = strlen(name);
	if (n > DISPLAY_NAME_MAX)
		return sb_diag_setc(d, SB_ETOOLONG, "", 0, 0,
				    "the display name is longer than %d bytes", DISPLAY_NAME_MAX);
	if (!sb_utf8_valid(name, n))
		return sb_diag_setc(d, SB_EINVAL, "", 0, 0, "the display name is not valid UTF-8");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		/* C0, DEL, and C1 (U+0080 to U+009F: 0xC2 0x80..0x9F in UTF-8) */
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xC2 && i + 1 < n && (unsigned char)name[i + 1] <= 0x9F))
			return sb_diag_setc(d, SB_EINVAL, "", 0, 0,
					    "the display name has a control character");
	}
	return 0;
}

static const char *status_text(sb_tenant_status s)
{
	return s == SB_TENANT_SUSPENDED ? "suspended" : "active";
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	default: return "an object";
	}
}

/* ---- open, close, schema ----------------------------------------------- */

static int set_wal(sb_store *st, sb_diag *d)
{
	/* Switching to WAL needs a moment of exclusive access; while another
	 * process is creating the same database, retry for a while. */
	for (int attempt = 0;; attempt++) {
		sqlite3_stmt *stmt = NULL;
		int r = prepare(st, "PRAGMA journal_mode=WAL", &stmt, d);
		if (r < 0)
			return r;
		int rc = sqlite3_step(stmt) & 0xff;
		bool wal = rc == SQLITE_ROW &&
			   sqlite3_stricmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
		sqlite3_finalize(stmt);
		if (wal)
			return 0;
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED && rc != SQLITE_ROW) ||
		    attempt * 10 >= BUSY_TIMEOUT_MS)
			return sb_diag_setc(d, SB_EIO, st->path, 0, 0,
					    "cannot switch the database to WAL mode: %s",
					    rc == SQLITE_ROW ? "refused" : sqlite3_errmsg(st->db));
		sqlite3_sleep(10);
	}
}

static int migrate(sb_store *st, sb_diag *d)
{
	int64_t v;
	int r;
	if ((r = query_int(st, "PRAGMA user_version", &v, d)) < 0)
		return r;
	if (v == SB_STORE_SCHEMA_VERSION)
		return 0;
	if ((r = begin(st, d)) < 0)
		return r;
	/* another process may have migrated while we waited for the lock */
	if ((r = query_int(st, "PRAGMA user_version", &v, d)) < 0)
		goto out;
	if (v < 0) {
		r = sb_diag_setc(d, SB_ERANGE, st->path, 0, 0,
				 "the database has schema version %lld, which no switchboard "
				 "writes: it is not a Switchboard store",
				 (long long)v);
		goto out;
	}
	if (v > SB_STORE_SCHEMA_VERSION) {
		r = sb_diag_setc(d, SB_ERANGE, st->path, 0, 0,
				 "the database has schema version %lld, newer than this "
				 "switchboard's (%d): upgrade switchboard",
				 (long long)v, SB_STORE_SCHEMA_VERSION);
		goto out;
	}
	/* version 0 with tables: another program's database, not ours to
	 * migrate into */
	int64_t ntables = 0;
	if (v == 0 &&
	    ((r = query_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", &ntables,
			    d)) < 0 ||
	     (ntables > 0 &&
	      (r = sb_diag_setc(d, SB_EINVAL, st->path, 0, 0,
				"the database has tables but no Switchboard schema version: "
				"it is not a Switchboard store (move it away, or give "
				"another --data directory)")) < 0)))
		goto out;
	for (; v < SB_STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "migration to schema version %lld failed",
				 (long long)v + 1);
			r = db_error(st, d, what);
			goto out;
		}
	}
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SB_STORE_SCHEMA_VERSION);
	if ((r = exec(st, sql, "cannot record the schema version", d)) < 0)
		goto out;
	r = commit(st, d);
out:
	rollback(st);
	return r;
}

/* Prepare what sb_store_changed() asks, and take its first reading. */
static int watch_changes(sb_store *st, sb_diag *d)
{
	bool changed;
	int r = prepare(st, "PRAGMA data_version", &st->data_version, d);
	if (r == 0 && sb_store_changed(st, &changed) < 0)
		r = db_error(st, d, "cannot read the data version");
	return r;
}

int sb_store_open(const char *data_dir, sb_store **out, sb_diag *d)
{
	int r;
	sb_buf b;
	sb_store *st = sb_xcalloc(1, sizeof(*st));
	*out = NULL;
	if ((r = make_dirs(data_dir, d)) < 0)
		goto out;
	sb_buf_init(&b);
	sb_buf_addf(&b, "%s%sswitchboard.db", data_dir,
		    data_dir[strlen(data_dir) - 1] == '/' ? "" : "/");
	st->path = sb_buf_steal(&b);
	struct stat sf;
	if (stat(st->path, &sf) != 0 && errno == ENOENT && access(data_dir, W_OK) != 0) {
		/* SQLite would report the read-only retry's ENOENT instead */
		r = sb_diag_setc(d, SB_EIO, st->path, 0, 0, "cannot create the database: %s",
				 strerror(errno));
		goto out;
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(st->path, &st->db, flags, NULL) != SQLITE_OK) {
		r = st->db ? db_error(st, d, "cannot open the database")
			   : sb_diag_setc(d, SB_EIO, st->path, 0, 0, "cannot open the database");
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	/* SQLite falls back to reading a file it cannot write (another user's,
	 * a read-only file system); say so here rather than at the first
	 * statement that writes */
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		r = sb_diag_setc(d, SB_EIO, st->path, 0, 0, "cannot write the database: %s",
				 access(st->path, W_OK) != 0 ? strerror(errno)
							     : "it was opened read-only");
		goto out;
	}
	if ((r = set_wal(st, d)) < 0 ||
	    (r = exec(st, "PRAGMA synchronous=NORMAL", "cannot set up the database", d)) < 0 ||
	    (r = migrate(st, d)) < 0 || (r = watch_changes(st, d)) < 0)
		goto out;
	*out = st;
out:
	if (r < 0)
		sb_store_close(st);
	return r;
}

int sb_store_open_ro(const char *data_dir, sb_store **out, sb_diag *d)
{
	int r = 0;
	int64_t v;
	sb_buf b;
	struct stat sd;
	*out = NULL;
	if (stat(data_dir, &sd) != 0 || !S_ISDIR(sd.st_mode))
		return sb_diag_setc(d, SB_ENOENT, data_dir, 0, 0,
				    "no such data directory (check -c or --data)");
	sb_store *st = sb_xcalloc(1, sizeof(*st));
	sb_buf_init(&b);
	sb_buf_addf(&b, "%s%sswitchboard.db", data_dir,
		    data_dir[strlen(data_dir) - 1] == '/' ? "" : "/");
	st->path = sb_buf_steal(&b);
	if (stat(st->path, &sd) != 0) {
		r = sb_diag_setc(d, SB_ENOENT, st->path, 0, 0, "no store yet");
		goto out;
	}
	if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		r = st->db ? db_error(st, d, "cannot open the database")
			   : sb_diag_setc(d, SB_EIO, st->path, 0, 0, "cannot open the database");
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	int ec = 0;
	if ((r = query_int(st, "PRAGMA user_version", &v, d)) < 0)
		ec = sqlite3_extended_errcode(st->db) & 0xff;
	if (ec == SQLITE_READONLY || ec == SQLITE_CANTOPEN) {
		/* A WAL database whose -shm file does not exist (no server has it
		 * open) and cannot be created here (a directory we may not write,
		 * a read-only file system): read it as an unchanging file, which
		 * it is while nobody has it open, and only someone who could
		 * create that file can open it to write. Not when its -wal file
		 * holds changes: reading the file alone would hide them. */
		struct stat sw;
		sb_buf_init(&b);
		sb_buf_addf(&b, "%s-wal", st->path);
		bool logged = stat(b.data, &sw) == 0 && sw.st_size > 0;
		if (logged)
			r = sb_diag_setc(
			    d, SB_EIO, b.data, 0, 0,
			    "this write-ahead log may hold changes not yet in the "
			    "database, and it cannot be read without write access to "
			    "the data directory: run as the store's owner, or copy the "
			    "directory somewhere writable");
		sb_buf_free(&b);
		if (logged)
			goto out;
		sqlite3_close(st->db);
		st->db = NULL;
		sb_buf_init(&b);
		sb_buf_adds(&b, "file:");
		for (const char *p = st->path; *p; p++)
			if (*p == '%' || *p == '?' || *p == '#')
				sb_buf_addf(&b, "%%%02X", (unsigned)(unsigned char)*p);
			else
				sb_buf_addc(&b, *p);
		sb_buf_adds(&b, "?immutable=1");
		int o = sqlite3_open_v2(
		    b.data, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
		    NULL);
		sb_buf_free(&b);
		if (o != SQLITE_OK) {
			r = st->db ? db_error(st, d, "cannot open the database")
				   : sb_diag_setc(d, SB_EIO, st->path, 0, 0,
						  "cannot open the database");
			goto out;
		}
		r = query_int(st, "PRAGMA user_version", &v, d);
	}
	if (r < 0)
		goto out;
	int64_t ntables = 0;
	if (v == 0) {
		/* the version and the tables read in one statement, so in one read
		 * transaction: read apart, a writer creating the store could commit
		 * between them (no version, then tables), which looked like
		 * another program's database */
		sqlite3_stmt *stmt = NULL;
		if ((r = prepare(st,
				 "SELECT (SELECT user_version FROM pragma_user_version), (SELECT "
				 "count(*) FROM sqlite_master WHERE type = 'table')",
				 &stmt, d)) < 0)
			goto out;
		if (sqlite3_step(stmt) == SQLITE_ROW) {
			v = sqlite3_column_int64(stmt, 0);
			ntables = sqlite3_column_int64(stmt, 1);
		} else {
			r = db_error(st, d, "cannot read the schema version");
		}
		sqlite3_finalize(stmt);
		if (r < 0)
			goto out;
	}
	if (v == 0 && ntables == 0) { /* created a moment ago by a writer not done yet */
		r = sb_diag_setc(d, SB_ENOENT, st->path, 0, 0, "no store yet");
		goto out;
	}
	if (v == 0 || v < 0) {
		r = sb_diag_setc(d, SB_EINVAL, st->path, 0, 0,
				 "the database has %s: it is not a Switchboard store (move it "
				 "away, or give another --data directory)",
				 v == 0 ? "tables but no Switchboard schema version"
					: "a schema version no switchboard writes");
		goto out;
	}
	if (v != SB_STORE_SCHEMA_VERSION) {
		r = sb_diag_setc(d, SB_ERANGE, st->path, 0, 0,
				 v > SB_STORE_SCHEMA_VERSION
				     ? "the database has schema version %lld, newer than this "
				       "switchboard's (%d): upgrade switchboard"
				     : "the database has schema version %lld, older than this "
				       "switchboard's (%d): `switchboard serve` or any change "
				       "migrates it",
				 (long long)v, SB_STORE_SCHEMA_VERSION);
		goto out;
	}
	if ((r = watch_changes(st, d)) < 0)
		goto out;
	*out = st;
out:
	if (r < 0)
		sb_store_close(st);
	return r;
}

void sb_store_close(sb_store *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->data_version);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

const char *sb_store_path(const sb_store *st)
{
	return st->path;
}

int sb_store_schema_version(sb_store *st)
{
	int64_t v;
	int r = query_int(st, "PRAGMA user_version", &v, NULL);
	return r < 0 ? r : (int)v;
}

void sb_store_forget_own_writes(sb_store *st)
{
	st->wrote = false;
}

int sb_store_changed(sb_store *st, bool *changed)
{
	int64_t v = -1;
	int rc = sqlite3_step(st->data_version);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st->data_version, 0);
	sqlite3_reset(st->data_version);
	if (rc != SQLITE_ROW) {
		*changed = true;
		return SB_EIO;
	}
	*changed = v != st->last_version || st->wrote;
	st->last_version = v;
	st->wrote = false;
	return 0;
}

/* ---- settings ---------------------------------------------------------- */

/* Nesting allowed in settings: SQLite's json_valid() stops at 1000 levels,
 * and settings are a service's configuration, not a document. */
#define SETTINGS_DEPTH 64

/* Valid JSON text without the whitespace between its tokens: everything
 * else, numbers and escapes included, is kept as written. Returns the
 * deepest nesting seen. */
static int json_minify(const char *s, sb_buf *out)
{
	bool in_str = false;
	int depth = 0, deepest = 0;
	for (; *s; s++) {
		char c = *s;
		if (in_str) {
			sb_buf_addc(out, c);
			if (c == '\\' && s[1])
				sb_buf_addc(out, *++s);
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c == '"')
			in_str = true;
		else if ((c == '{' || c == '[') && ++depth > deepest)
			deepest = depth;
		else if (c == '}' || c == ']')
			depth--;
		sb_buf_addc(out, c);
	}
	return deepest;
}

int sb_store_settings_check(const char *settings_json, char **compact, sb_diag *d)
{
	if (compact)
		*compact = NULL;
	if (strlen(settings_json) > SB_STORE_SETTINGS_MAX)
		return sb_diag_setc(d, SB_ETOOLONG, "", 0, 0,
				    "the settings are longer than %d bytes", SB_STORE_SETTINGS_MAX);
	json_error_t err;
	/* any number JSON allows (integers beyond 64 bits too) and \u0000: they
	 * are stored as written, jansson only checks them */
	json_t *root = json_loads(settings_json,
				  JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
				      JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
				  &err);
	/* jansson refuses a number a double cannot hold (1e400): valid JSON,
	 * but RFC 8259 section 6 lets a reader set that limit, and most do */
	if (!root && json_error_code(&err) == json_error_numeric_overflow)
		return sb_diag_setc(d, SB_EINVAL, "", 0, 0,
				    "the settings have a number out of range of a double: line "
				    "%d, column %d (byte %d)",
				    err.line, err.column, err.position);
	if (!root)
		return sb_diag_setc(
		    d, SB_EINVAL, "", 0, 0,
		    "the settings are not valid JSON: line %d, column %d (byte %d): %s", err.line,
		    err.column, err.position, err.text);
	int r = 0;
	sb_buf b;
	sb_buf_init(&b);
	if (!json_is_object(root)) {
		r = sb_diag_setc(d, SB_EINVAL, "", 0, 0,
				 "the settings must be a JSON object ({...}), not %s",
				 json_type_name(root));
		goto out;
	}
	if (json_minify(settings_json, &b) > SETTINGS_DEPTH) {
		r = sb_diag_setc(d, SB_EINVAL, "", 0, 0, "the settings nest deeper than %d levels",
				 SETTINGS_DEPTH);
		goto out;
	}
	if (compact)
		*compact = sb_xstrndup(b.data, b.len);
out:
	sb_buf_free(&b);
	json_decref(root);
	return r;
}

/* Valid JSON text with every byte of its strings that is not printable
 * ASCII written as a \u escape (UTF-16 pairs above U+FFFF): a header value
 * that keeps the text as it is otherwise. */
static void json_ascii(sb_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
	const char *end = s + strlen(s);
	bool in_str = false;
	while (s < end) {
		unsigned char c = (unsigned char)*s;
		if (!in_str && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
			s++; /* whitespace between tokens: settings stored by other
			      * means than the CLI may have it */
			continue;
		}
		if (c == '"')
			in_str = !in_str;
		if (in_str && c == '\\' && s + 1 < end) {
			sb_buf_add(out, s, 2); /* an escape, kept as written */
			s += 2;
			continue;
		}
		uint32_t cp = c, u[2];
		size_t n = 1, nu = 1;
		if (c >= 0x80 &&
		    !(n = sb_utf8_seq((const unsigned char *)s, (size_t)(end - s), &cp)))
			n = 1, cp = 0xFFFD; /* not reached: the text was checked as UTF-8 */
		if (cp >= 0x20 && cp < 0x7f) {
			sb_buf_addc(out, (char)c);
			s++;
			continue;
		}
		u[0] = cp;
		if (cp > 0xFFFF) {
			u[0] = 0xD800 + ((cp - 0x10000) >> 10);
			u[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
			nu = 2;
		}
		for (size_t i = 0; i < nu; i++) {
			char e[6] = {'\\',
				     'u',
				     hex[u[i] >> 12 & 15],
				     hex[u[i] >> 8 & 15],
				     hex[u[i] >> 4 & 15],
				     hex[u[i] & 15]};
			sb_buf_add(out, e, 6);
		}
		s += n;
	}
}

/* ---- tenants ----------------------------------------------------------- */

/* Row (in tenant_columns order) -> record; strings in pool, or malloc'd
 * when pool is NULL. */
static int row_to_rec(sb_store *st, sqlite3_stmt *stmt, sb_pool *pool, sb_tenant_rec *rec,
		      sb_diag *d)
{
	memset(rec, 0, sizeof(*rec));
	const char *slug = (const char *)sqlite3_column_text(stmt, 0);
	const char *status = (const char *)sqlite3_column_text(stmt, 1);
	const char *name = (const char *)sqlite3_column_text(stmt, 2);
	const char *settings = (const char *)sqlite3_column_text(stmt, 3);
	size_t sl = slug ? strlen(slug) : 0;
	if (!slug || sl >= sizeof(rec->slug) || !status)
		return sb_diag_setc(d, SB_EIO, st->path, 0, 0, "a tenant row is malformed");
	memcpy(rec->slug, slug, sl + 1);
	rec->status = strcmp(status, "suspended") == 0 ? SB_TENANT_SUSPENDED : SB_TENANT_ACTIVE;
	if (!settings)
		settings = "{}";
	if (pool) {
		rec->display_name = name ? sb_pool_strdup(pool, name) : NULL;
		rec->settings_json = sb_pool_strdup(pool, settings);
	} else {
		rec->display_name = name ? sb_xstrdup(name) : NULL;
		rec->settings_json = sb_xstrdup(settings);
	}
	rec->created_at = sqlite3_column_int64(stmt, 4);
	rec->updated_at = sqlite3_column_int64(stmt, 5);
	return 0;
}

int sb_store_tenant_add(sb_store *st, const char *slug, const char *display_name,
			const char *settings_json, sb_diag *d)
{
	int r;
	char *settings = NULL;
	sqlite3_stmt *stmt = NULL;
	if ((r = slug_check(slug, d)) < 0)
		return r;
	if (display_name && (r = name_check(display_name, d)) < 0)
		return r;
	if (settings_json && (r = sb_store_settings_check(settings_json, &settings, d)) < 0)
		return r;
	if ((r = prepare(st,
			 "INSERT INTO tenants (slug, status, display_name, settings, created_at, "
			 "updated_at) VALUES (?1, 'active', ?2, ?3, ?4, ?4)",
			 &stmt, d)) < 0)
		goto out;
	int64_t t = now();
	sqlite3_bind_text(stmt, 1, slug, -1, SQLITE_STATIC);
	if (display_name && display_name[0])
		sqlite3_bind_text(stmt, 2, display_name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 2);
	sqlite3_bind_text(stmt, 3, settings ? settings : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, t);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		st->wrote = true;
	} else if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		r = sb_diag_setc(d, SB_EEXIST, "", 0, 0, "tenant '%s' already exists", slug);
	} else {
		r = db_error(st, d, "cannot add the tenant");
	}
out:
	sqlite3_finalize(stmt);
	free(settings);
	return r;
}

static int not_found(sb_diag *d, const char *slug)
{
	return sb_diag_setc(d, SB_ENOENT, "", 0, 0, "tenant '%s' not found", slug);
}

/* Runs a prepared change to one tenant's row: 0 when a row changed, the
 * store's error (saying what could not be done) or "not found" otherwise. */
static int change_one(sb_store *st, sqlite3_stmt *stmt, const char *slug, const char *what,
		      sb_diag *d)
{
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return db_error(st, d, what);
	if (sqlite3_changes(st->db) == 0)
		return not_found(d, slug);
	st->wrote = true;
	return 0;
}

int sb_store_tenant_set_status(sb_store *st, const char *slug, sb_tenant_status status, sb_diag *d)
{
	if (status != SB_TENANT_ACTIVE && status != SB_TENANT_SUSPENDED)
		return sb_diag_setc(d, SB_EINVAL, "", 0, 0, "invalid tenant status %d",
				    (int)status);
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st,
			"UPDATE tenants SET status = ?2, updated_at = CASE WHEN status = ?2 THEN "
			"updated_at ELSE ?3 END WHERE slug = ?1",
			&stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, slug, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, status_text(status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now());
	r = change_one(st, stmt, slug, "cannot change the tenant's status", d);
	sqlite3_finalize(stmt);
	return r;
}

int sb_store_tenant_update(sb_store *st, const char *slug, const char *display_name,
			   const char *settings_json, sb_diag *d)
{
	int r;
	char *settings = NULL;
	sqlite3_stmt *stmt = NULL;
	if (display_name && (r = name_check(display_name, d)) < 0)
		return r;
	if (settings_json && (r = sb_store_settings_check(settings_json, &settings, d)) < 0)
		return r;
	if ((r = prepare(st,
			 "UPDATE tenants SET"
			 " display_name = CASE WHEN ?2 THEN ?3 ELSE display_name END,"
			 " settings = CASE WHEN ?4 THEN ?5 ELSE settings END,"
			 " updated_at = ?6 WHERE slug = ?1",
			 &stmt, d)) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, slug, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, display_name != NULL);
	if (display_name && display_name[0])
		sqlite3_bind_text(stmt, 3, display_name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 3);
	sqlite3_bind_int(stmt, 4, settings != NULL);
	if (settings)
		sqlite3_bind_text(stmt, 5, settings, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 5);
	sqlite3_bind_int64(stmt, 6, now());
	r = change_one(st, stmt, slug, "cannot update the tenant", d);
out:
	sqlite3_finalize(stmt);
	free(settings);
	return r;
}

int sb_store_tenant_remove(sb_store *st, const char *slug, sb_diag *d)
{
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st, "DELETE FROM tenants WHERE slug = ?1", &stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, slug, -1, SQLITE_STATIC);
	r = change_one(st, stmt, slug, "cannot remove the tenant", d);
	sqlite3_finalize(stmt);
	return r;
}

int sb_store_tenant_get(sb_store *st, const char *slug, sb_tenant_rec *rec, sb_diag *d)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT %s FROM tenants WHERE slug = ?1", tenant_columns);
	memset(rec, 0, sizeof(*rec));
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st, sql, &stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, slug, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		r = row_to_rec(st, stmt, NULL, rec, d);
	else if (rc == SQLITE_DONE)
		r = not_found(d, slug);
	else
		r = db_error(st, d, "cannot read the tenant");
	sqlite3_finalize(stmt);
	return r;
}

void sb_store_tenant_rec_clear(sb_tenant_rec *rec)
{
	free(rec->display_name);
	free(rec->settings_json);
	memset(rec, 0, sizeof(*rec));
}

/* Every stored tenant, ordered by slug, into an array in pool. */
static int collect(sb_store *st, sb_pool *pool, sb_tenant_rec **out, size_t *n, sb_diag *d)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT %s FROM tenants ORDER BY slug", tenant_columns);
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st, sql, &stmt, d);
	if (r < 0)
		return r;
	size_t cap = 16, len = 0;
	sb_tenant_rec *recs = sb_xmalloc(cap * sizeof(*recs));
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (len == cap) {
			cap *= 2;
			recs = sb_xrealloc(recs, cap * sizeof(*recs));
		}
		if ((r = row_to_rec(st, stmt, pool, &recs[len++], d)) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = db_error(st, d, "cannot list the tenants");
		goto out;
	}
	*out = sb_pool_alloc(pool, (len ? len : 1) * sizeof(*recs));
	memcpy(*out, recs, len * sizeof(*recs));
	*n = len;
out:
	free(recs);
	sqlite3_finalize(stmt);
	return r;
}

int sb_store_tenant_list(sb_store *st, sb_store_tenant_fn fn, void *ctx, sb_diag *d)
{
	sb_pool *pool = sb_pool_new(0);
	sb_tenant_rec *recs = NULL;
	size_t n = 0;
	int r = collect(st, pool, &recs, &n, d);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if ((r = fn(ctx, &recs[i])) != 0)
			goto out;
	r = n > INT32_MAX ? INT32_MAX : (int)n;
out:
	sb_pool_free(pool);
	return r;
}

char *sb_store_tenant_config(const sb_tenant_rec *rc)
{
	bool empty = strcmp(rc->settings_json, "{}") == 0;
	if (!rc->display_name && empty)
		return NULL;
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "{\"display_name\":");
	if (rc->display_name) {
		/* a name stored before names were checked for UTF-8 fails here:
		 * the tenant then goes without one rather than the server
		 * without tenants */
		json_t *n = json_string(rc->display_name);
		char *ns = n ? json_dumps(n, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
		sb_buf_adds(&b, ns ? ns : "null");
		free(ns);
		json_decref(n);
	} else {
		sb_buf_adds(&b, "null");
	}
	sb_buf_adds(&b, ",\"settings\":");
	/* as stored (the CHECK constraint keeps it valid JSON), in ASCII */
	json_ascii(&b, rc->settings_json);
	sb_buf_addc(&b, '}');
	char *s = sb_xstrndup(b.data, b.len);
	sb_buf_free(&b);
	return s;
}

int sb_store_tenants_load(sb_store *st, const sb_decl *decl, sb_tenants **out, sb_diag *d)
{
	*out = NULL;
	sb_pool *pool = sb_pool_new(0);
	sb_tenant_rec *recs = NULL;
	size_t n = 0;
	int r = collect(st, pool, &recs, &n, d);
	if (r < 0)
		goto out;
	size_t nstatic = decl ? decl->nstatic_tenants : 0;
	sb_tenants *t = sb_tenants_new(nstatic + n);
	for (size_t i = 0; i < nstatic; i++) {
		const char *s = decl->static_tenants[i];
		sb_tenants_put(t, s, strlen(s), SB_TENANT_ACTIVE);
	}
	for (size_t i = 0; i < n; i++) {
		const sb_tenant_rec *rc = &recs[i];
		char *cfg = sb_store_tenant_config(rc);
		sb_tenants_put_config(t, rc->slug, strlen(rc->slug), rc->status, cfg,
				      cfg ? strlen(cfg) : 0);
		free(cfg);
	}
	*out = t;
out:
	sb_pool_free(pool);
	return r;
}

/* ---- transactions and versions ------------------------------------------ */

int sb_store_begin(sb_store *st, sb_diag *d)
{
	return begin(st, d);
}

int sb_store_commit(sb_store *st, sb_diag *d)
{
	return commit(st, d);
}

void sb_store_rollback(sb_store *st)
{
	rollback(st);
}

int sb_store_version_add(sb_store *st, const char *command, const char *summary,
			 const char *state_json, int64_t *id, sb_diag *d)
{
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st,
			"INSERT INTO versions (created_at, command, summary, state) "
			"VALUES (?1, ?2, ?3, ?4)",
			&stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, now());
	sqlite3_bind_text(stmt, 2, command, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, summary, -1, SQLITE_STATIC);
	if (state_json)
		sqlite3_bind_text(stmt, 4, state_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 4);
	if (sqlite3_step(stmt) == SQLITE_DONE) {
		st->wrote = true;
		if (id)
			*id = sqlite3_last_insert_rowid(st->db);
	} else {
		r = db_error(st, d, "cannot record the version");
	}
	sqlite3_finalize(stmt);
	return r;
}

int sb_store_state_at(sb_store *st, int64_t at, int64_t *version, char **state_json, sb_diag *d)
{
	sqlite3_stmt *stmt = NULL;
	*state_json = NULL;
	if (version)
		*version = 0;
	/* the version itself (the newest when at is 0), then the newest state
	 * at or before it */
	int r = prepare(st,
			"SELECT v.id, (SELECT s.state FROM versions s WHERE s.id <= v.id AND "
			"s.state IS NOT NULL ORDER BY s.id DESC LIMIT 1) FROM versions v "
			"WHERE ?1 = 0 OR v.id = ?1 ORDER BY v.id DESC LIMIT 1",
			&stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, at);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (version)
			*version = sqlite3_column_int64(stmt, 0);
		const unsigned char *t = sqlite3_column_text(stmt, 1);
		if (t)
			*state_json = sb_xstrdup((const char *)t);
	} else if (rc == SQLITE_DONE) {
		if (at)
			r = sb_diag_setc(d, SB_ENOENT, "", 0, 0,
					 "no version %lld (see `switchboard "
					 "versions`)",
					 (long long)at);
	} else {
		r = db_error(st, d, "cannot read the versions");
	}
	sqlite3_finalize(stmt);
	return r;
}

int sb_store_version_list(sb_store *st, int64_t limit, sb_store_version_fn fn, void *ctx,
			  sb_diag *d)
{
	sqlite3_stmt *stmt = NULL;
	int r = prepare(st,
			"SELECT id, created_at, command, summary, state IS NOT NULL FROM versions "
			"ORDER BY id DESC LIMIT ?1",
			&stmt, d);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, limit > 0 ? limit : -1);
	/* read everything first, so that fn may use the store */
	sb_pool *pool = sb_pool_new(0);
	sb_buf recs;
	sb_buf_init(&recs);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		sb_version_rec v = {
		    .id = sqlite3_column_int64(stmt, 0),
		    .created_at = sqlite3_column_int64(stmt, 1),
		    .command = sb_pool_strdup(pool, (const char *)sqlite3_column_text(stmt, 2)),
		    .summary = sb_pool_strdup(pool, (const char *)sqlite3_column_text(stmt, 3)),
		    .has_state = sqlite3_column_int(stmt, 4) != 0,
		};
		sb_buf_add(&recs, &v, sizeof(v));
	}
	if (rc != SQLITE_DONE) {
		r = db_error(st, d, "cannot list the versions");
		goto out;
	}
	size_t n = recs.len / sizeof(sb_version_rec);
	const sb_version_rec *v = (const sb_version_rec *)(void *)recs.data;
	for (size_t i = 0; i < n; i++)
		if ((r = fn(ctx, &v[i])) != 0)
			goto out;
	r = n > INT32_MAX ? INT32_MAX : (int)n;
out:
	sqlite3_finalize(stmt);
	sb_buf_free(&recs);
	sb_pool_free(pool);
	return r;
}
