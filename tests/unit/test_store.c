/* The store on SQLite: schema, tenants, merge with static tenants, change
 * detection across handles. Each test runs in a fresh temporary directory. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memfs.h"
#include "store/store.h"

static char tmpdir[256];
static char datadir[512];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s", "/tmp/sb-store-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp");
	snprintf(datadir, sizeof(datadir), "%s/data", tmpdir);
}

static int rm_entry(const char *path, const struct stat *sbuf, int type, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
	leak_check();
}

TestSuite(store, .init = setup, .fini = teardown);

static sb_store *open_store(void)
{
	sb_store *st = NULL;
	sb_diag d = {0};
	int r = sb_store_open(datadir, &st, &d);
	cr_assert_eq(r, 0, "open: %d %s", r, d.msg);
	cr_assert_not_null(st);
	return st;
}

/* Run SQL on the database behind the store's back (as another tool would). */
static void raw_sql(const char *sql)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/switchboard.db", datadir);
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* ---- open -------------------------------------------------------------- */

Test(store, open_creates_directory_and_database_in_wal_mode)
{
	snprintf(datadir, sizeof(datadir), "%s/a/b/data", tmpdir);
	sb_store *st = open_store();
	struct stat sbuf;
	cr_assert_eq(stat(datadir, &sbuf), 0);
	cr_assert(S_ISDIR(sbuf.st_mode));
	cr_assert_eq(sbuf.st_mode & 0777, 0700, "mode %o", sbuf.st_mode & 0777);
	char path[600];
	snprintf(path, sizeof(path), "%s/switchboard.db", datadir);
	cr_assert_str_eq(sb_store_path(st), path);
	cr_assert_eq(stat(path, &sbuf), 0, "no %s", path);
	cr_assert_eq(sb_store_schema_version(st), SB_STORE_SCHEMA_VERSION);

	/* WAL is a property of the database file: a plain connection sees it */
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	sb_store_close(st);
}

Test(store, open_twice_and_reopen_keeps_data)
{
	sb_store *a = open_store();
	sb_store *b = open_store();
	cr_assert_eq(sb_store_tenant_add(a, "acme", "Acme", "{\"plan\":\"pro\"}", NULL), 0);
	sb_store_close(a);
	sb_store_close(b);

	sb_store *st = open_store();
	sb_tenant_rec rec;
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, NULL), 0);
	cr_assert_str_eq(rec.display_name, "Acme");
	cr_assert_str_eq(rec.settings_json, "{\"plan\":\"pro\"}");
	sb_store_tenant_rec_clear(&rec);
	cr_assert_eq(sb_store_schema_version(st), SB_STORE_SCHEMA_VERSION);
	sb_store_close(st);
}

Test(store, newer_schema_is_refused)
{
	sb_store_close(open_store());
	raw_sql("PRAGMA user_version = 99");
	sb_store *st = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_store_open(datadir, &st, &d), SB_ERANGE);
	cr_assert_null(st);
	cr_assert(strstr(d.msg, "99") != NULL, "%s", d.msg);
}

Test(store, data_dir_that_is_a_file_fails)
{
	FILE *f = fopen(datadir, "w");
	cr_assert_not_null(f);
	fclose(f);
	sb_store *st = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_store_open(datadir, &st, &d), SB_EIO);
	cr_assert_null(st);
	cr_assert(strstr(d.msg, "not a directory") != NULL, "%s", d.msg);
}

/* ---- tenants ----------------------------------------------------------- */

Test(store, add_and_get)
{
	sb_store *st = open_store();
	sb_diag d = {0};
	int64_t before = (int64_t)time(NULL);
	cr_assert_eq(
	    sb_store_tenant_add(st, "acme", "Acme Inc", "{ \"plan\" : \"pro\", \"seats\": 3 }", &d),
	    0, "%s", d.msg);
	sb_tenant_rec rec;
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, &d), 0, "%s", d.msg);
	cr_assert_str_eq(rec.slug, "acme");
	cr_assert_eq(rec.status, SB_TENANT_ACTIVE);
	cr_assert_str_eq(rec.display_name, "Acme Inc");
	cr_assert_str_eq(rec.settings_json, "{\"plan\":\"pro\",\"seats\":3}"); /* compact */
	cr_assert_geq(rec.created_at, before);
	cr_assert_leq(rec.created_at, (int64_t)time(NULL));
	cr_assert_eq(rec.updated_at, rec.created_at);
	sb_store_tenant_rec_clear(&rec);
	cr_assert_null(rec.display_name);

	/* defaults: no name, "{}" */
	cr_assert_eq(sb_store_tenant_add(st, "beta", NULL, NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_add(st, "gamma", "", NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_get(st, "beta", &rec, &d), 0);
	cr_assert_null(rec.display_name);
	cr_assert_str_eq(rec.settings_json, "{}");
	sb_store_tenant_rec_clear(&rec);
	cr_assert_eq(sb_store_tenant_get(st, "gamma", &rec, &d), 0);
	cr_assert_null(rec.display_name, "\"\" is no name");
	sb_store_tenant_rec_clear(&rec);

	/* duplicate */
	memset(&d, 0, sizeof(d));
	cr_assert_eq(sb_store_tenant_add(st, "acme", "Other", NULL, &d), SB_EEXIST);
	cr_assert_str_eq(d.msg, "tenant 'acme' already exists");
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, &d), 0);
	cr_assert_str_eq(rec.display_name, "Acme Inc", "a failed add changes nothing");
	sb_store_tenant_rec_clear(&rec);

	/* unknown */
	cr_assert_eq(sb_store_tenant_get(st, "nope", &rec, &d), SB_ENOENT);
	cr_assert_str_eq(d.msg, "tenant 'nope' not found");
	cr_assert_null(rec.settings_json);
	sb_store_close(st);
}

Test(store, add_checks_slug_syntax_and_name)
{
	sb_store *st = open_store();
	static const char *const bad[] = {
	    "",
	    "Acme",
	    "-acme",
	    "acme-",
	    "a.b",
	    "a_b",
	    "caf\xc3\xa9",
	    "a123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
		sb_diag d = {0};
		cr_assert_eq(sb_store_tenant_add(st, bad[i], NULL, NULL, &d), SB_EBADSLUG, "'%s'",
			     bad[i]);
		cr_assert(strstr(d.msg, "not a valid tenant slug") != NULL, "%s", d.msg);
	}
	/* 63 bytes is the limit */
	cr_assert_eq(sb_store_tenant_add(
			 st, "a12345678901234567890123456789012345678901234567890123456789012",
			 NULL, NULL, NULL),
		     0);
	cr_assert_eq(sb_store_tenant_add(st, "x", "a\nb", NULL, NULL), SB_EINVAL);
	char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(sb_store_tenant_add(st, "x", longname, NULL, NULL), SB_ETOOLONG);
	cr_assert_eq(sb_store_tenant_get(st, "x", &(sb_tenant_rec){0}, NULL), SB_ENOENT);
	sb_store_close(st);
}

static void expect_status(sb_store *st, const char *slug, sb_tenant_status want)
{
	sb_tenant_rec rec;
	cr_assert_eq(sb_store_tenant_get(st, slug, &rec, NULL), 0);
	cr_assert_eq(rec.status, want, "%s: status %d, want %d", slug, rec.status, want);
	sb_store_tenant_rec_clear(&rec);
}

Test(store, suspend_resume)
{
	sb_store *st = open_store();
	sb_diag d = {0};
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_set_status(st, "acme", SB_TENANT_SUSPENDED, &d), 0);
	expect_status(st, "acme", SB_TENANT_SUSPENDED);
	/* again: no error */
	cr_assert_eq(sb_store_tenant_set_status(st, "acme", SB_TENANT_SUSPENDED, &d), 0);
	expect_status(st, "acme", SB_TENANT_SUSPENDED);
	cr_assert_eq(sb_store_tenant_set_status(st, "acme", SB_TENANT_ACTIVE, &d), 0);
	expect_status(st, "acme", SB_TENANT_ACTIVE);

	cr_assert_eq(sb_store_tenant_set_status(st, "nope", SB_TENANT_SUSPENDED, &d), SB_ENOENT);
	cr_assert_str_eq(d.msg, "tenant 'nope' not found");
	cr_assert_eq(sb_store_tenant_set_status(st, "acme", SB_TENANT_NONE, &d), SB_EINVAL);
	expect_status(st, "acme", SB_TENANT_ACTIVE);
	sb_store_close(st);
}

Test(store, remove)
{
	sb_store *st = open_store();
	sb_diag d = {0};
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_add(st, "beta", NULL, NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_remove(st, "acme", &d), 0);
	cr_assert_eq(sb_store_tenant_get(st, "acme", &(sb_tenant_rec){0}, NULL), SB_ENOENT);
	cr_assert_eq(sb_store_tenant_remove(st, "acme", &d), SB_ENOENT);
	cr_assert_str_eq(d.msg, "tenant 'acme' not found");
	expect_status(st, "beta", SB_TENANT_ACTIVE);
	/* a removed slug can be added again */
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, NULL, &d), 0);
	sb_store_close(st);
}

Test(store, update)
{
	sb_store *st = open_store();
	sb_diag d = {0};
	sb_tenant_rec rec;
	cr_assert_eq(sb_store_tenant_add(st, "acme", "Acme", "{\"plan\":\"free\"}", &d), 0);

	cr_assert_eq(sb_store_tenant_update(st, "acme", "Acme Inc", NULL, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, NULL), 0);
	cr_assert_str_eq(rec.display_name, "Acme Inc");
	cr_assert_str_eq(rec.settings_json, "{\"plan\":\"free\"}", "settings unchanged");
	sb_store_tenant_rec_clear(&rec);

	cr_assert_eq(sb_store_tenant_update(st, "acme", NULL, "{\"plan\": \"pro\"}", &d), 0);
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, NULL), 0);
	cr_assert_str_eq(rec.display_name, "Acme Inc", "name unchanged");
	cr_assert_str_eq(rec.settings_json, "{\"plan\":\"pro\"}");
	sb_store_tenant_rec_clear(&rec);

	/* "" removes the name; invalid settings change nothing */
	cr_assert_eq(sb_store_tenant_update(st, "acme", "", NULL, &d), 0);
	cr_assert_eq(sb_store_tenant_update(st, "acme", "X", "[]", &d), SB_EINVAL);
	cr_assert_eq(sb_store_tenant_get(st, "acme", &rec, NULL), 0);
	cr_assert_null(rec.display_name);
	cr_assert_str_eq(rec.settings_json, "{\"plan\":\"pro\"}");
	cr_assert_eq(rec.status, SB_TENANT_ACTIVE);
	sb_store_tenant_rec_clear(&rec);

	cr_assert_eq(sb_store_tenant_update(st, "nope", "N", NULL, &d), SB_ENOENT);
	cr_assert_str_eq(d.msg, "tenant 'nope' not found");
	sb_store_close(st);
}

/* ---- settings ---------------------------------------------------------- */

static void expect_settings_error(const char *json, int code, const char *needle)
{
	sb_diag d = {0};
	char *compact = (char *)"unset";
	cr_assert_eq(sb_store_settings_check(json, &compact, &d), code, "%s", json);
	cr_assert_null(compact);
	cr_assert(strstr(d.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", json, d.msg,
		  needle);
}

Test(store, settings_validation)
{
	char *compact = NULL;
	cr_assert_eq(
	    sb_store_settings_check("{ \"a\" : [1, 2], \"b\": {\"c\": null} }", &compact, NULL), 0);
	cr_assert_str_eq(compact, "{\"a\":[1,2],\"b\":{\"c\":null}}");
	free(compact);
	cr_assert_eq(sb_store_settings_check("{}", NULL, NULL), 0);

	expect_settings_error("[1, 2]", SB_EINVAL, "must be a JSON object");
	expect_settings_error("[1, 2]", SB_EINVAL, "not an array");
	expect_settings_error("5", SB_EINVAL, "not a number");
	expect_settings_error("\"x\"", SB_EINVAL, "not a string");
	expect_settings_error("null", SB_EINVAL, "not null");
	/* the position jansson reports */
	expect_settings_error("{\"a\": 1,\n \"b\": }", SB_EINVAL, "line 2, column");
	expect_settings_error("{\"a\":", SB_EINVAL, "line 1, column 5");
	expect_settings_error("", SB_EINVAL, "not valid JSON");
	expect_settings_error("{} x", SB_EINVAL, "not valid JSON");
	expect_settings_error("{\"a\": 1, \"a\": 2}", SB_EINVAL, "duplicate");

	size_t n = SB_STORE_SETTINGS_MAX + 16;
	char *big = sb_xmalloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	expect_settings_error(big, SB_ETOOLONG, "longer than");
	free(big);

	/* add refuses, and names the reason */
	sb_store *st = open_store();
	sb_diag d = {0};
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, "[]", &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "object") != NULL, "%s", d.msg);
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, "{oops}", &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "line 1, column") != NULL, "%s", d.msg);
	cr_assert_eq(sb_store_tenant_get(st, "acme", &(sb_tenant_rec){0}, NULL), SB_ENOENT);
	sb_store_close(st);
}

/* ---- list -------------------------------------------------------------- */

struct seen {
	char slugs[8][64];
	sb_tenant_status status[8];
	size_t n;
	size_t stop_after; /* 0: never */
};

static int see(void *ctx, const sb_tenant_rec *rec)
{
	struct seen *s = ctx;
	cr_assert_lt(s->n, 8);
	snprintf(s->slugs[s->n], sizeof(s->slugs[0]), "%s", rec->slug);
	s->status[s->n] = rec->status;
	cr_assert_not_null(rec->settings_json);
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

Test(store, list_is_ordered_by_slug)
{
	sb_store *st = open_store();
	struct seen s = {0};
	cr_assert_eq(sb_store_tenant_list(st, see, &s, NULL), 0, "empty store");
	cr_assert_eq(s.n, 0);

	cr_assert_eq(sb_store_tenant_add(st, "zeta", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_add(st, "alpha", "A", NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_add(st, "mid-1", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_add(st, "0day", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_set_status(st, "mid-1", SB_TENANT_SUSPENDED, NULL), 0);
	cr_assert_eq(sb_store_tenant_list(st, see, &s, NULL), 4);
	cr_assert_eq(s.n, 4);
	cr_assert_str_eq(s.slugs[0], "0day");
	cr_assert_str_eq(s.slugs[1], "alpha");
	cr_assert_str_eq(s.slugs[2], "mid-1");
	cr_assert_str_eq(s.slugs[3], "zeta");
	cr_assert_eq(s.status[2], SB_TENANT_SUSPENDED);
	cr_assert_eq(s.status[3], SB_TENANT_ACTIVE);

	/* the callback stops the listing; its value is returned */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	cr_assert_eq(sb_store_tenant_list(st, see, &s, NULL), 7);
	cr_assert_eq(s.n, 2);
	sb_store_close(st);
}

Test(store, failing_list_never_calls_back)
{
	sb_store *st = open_store();
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, NULL, NULL), 0);
	raw_sql("DROP TABLE tenants");
	struct seen s = {0};
	sb_diag d = {0};
	cr_assert_eq(sb_store_tenant_list(st, see, &s, &d), SB_EIO);
	cr_assert_eq(s.n, 0);
	cr_assert(strstr(d.file, "switchboard.db") != NULL, "%s", d.file);
	sb_tenants *t = (sb_tenants *)1;
	cr_assert_eq(sb_store_tenants_load(st, NULL, &t, &d), SB_EIO);
	cr_assert_null(t);
	cr_assert_eq(sb_store_tenant_add(st, "beta", NULL, NULL, &d), SB_EIO);
	sb_store_close(st);
}

/* ---- tenants_load: static + stored -------------------------------------- */

static const char static_toml[] = "[[zone]]\nname = \"example.com\"\n"
				  "[tenants]\nservice = \"app\"\nstatic = [\"codex\", \"beta\"]\n"
				  "[[service]]\nname = \"app\"\nroutes = [\"app.example.com/*\"]\n";

Test(store, tenants_load_merges_static_and_stored)
{
	struct world w = world_load(static_toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_store *st = open_store();
	cr_assert_eq(sb_store_tenant_add(st, "acme", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_add(st, "gone", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_set_status(st, "gone", SB_TENANT_SUSPENDED, NULL), 0);
	/* a static tenant suspended by a stored record */
	cr_assert_eq(sb_store_tenant_add(st, "beta", NULL, NULL, NULL), 0);
	cr_assert_eq(sb_store_tenant_set_status(st, "beta", SB_TENANT_SUSPENDED, NULL), 0);

	sb_tenants *t = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_store_tenants_load(st, w.decl, &t, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_tenants_count(t), 4);
	const char *stored = NULL;
	cr_assert_eq(sb_tenants_get(t, "codex", 5, &stored), SB_TENANT_ACTIVE);
	cr_assert_str_eq(stored, "codex");
	cr_assert_eq(sb_tenants_get(t, "beta", 4, NULL), SB_TENANT_SUSPENDED, "stored wins");
	cr_assert_eq(sb_tenants_get(t, "acme", 4, NULL), SB_TENANT_ACTIVE);
	cr_assert_eq(sb_tenants_get(t, "gone", 4, NULL), SB_TENANT_SUSPENDED);
	cr_assert_eq(sb_tenants_get(t, "nope", 4, NULL), SB_TENANT_NONE);
	sb_tenants_free(t);

	/* the router sees it: a suspended tenant's host is refused */
	sb_tenants_free(w.tenants);
	cr_assert_eq(sb_store_tenants_load(st, w.decl, &w.tenants, &d), 0);
	sb_route_match m;
	cr_assert_eq(lookup(&w, "acme.example.com/", &m), 0);
	cr_assert_eq(lookup(&w, "codex.example.com/", &m), 0);
	cr_assert_eq(lookup(&w, "beta.example.com/", &m), SB_ESUSPENDED);
	cr_assert_eq(lookup(&w, "nope.example.com/", &m), SB_ENOTENANT);

	/* resuming the static tenant's record makes it active again */
	cr_assert_eq(sb_store_tenant_set_status(st, "beta", SB_TENANT_ACTIVE, NULL), 0);
	cr_assert_eq(sb_store_tenants_load(st, w.decl, &t, &d), 0);
	cr_assert_eq(sb_tenants_get(t, "beta", 4, NULL), SB_TENANT_ACTIVE);
	sb_tenants_free(t);

	/* without a declaration: the stored tenants only */
	cr_assert_eq(sb_store_tenants_load(st, NULL, &t, &d), 0);
	cr_assert_eq(sb_tenants_count(t), 3);
	cr_assert_eq(sb_tenants_get(t, "codex", 5, NULL), SB_TENANT_NONE);
	sb_tenants_free(t);
	sb_store_close(st);
	world_free(&w);
}

/* ---- change detection --------------------------------------------------- */

static bool changed(sb_store *st)
{
	bool c = false;
	cr_assert_eq(sb_store_changed(st, &c), 0);
	return c;
}

Test(store, changed_sees_writes_of_another_handle)
{
	sb_store *server = open_store();
	sb_store *cli = open_store(); /* as another process would */
	cr_assert_not(changed(server), "nothing written since open");
	cr_assert_not(changed(server));

	cr_assert_eq(sb_store_tenant_add(cli, "acme", NULL, NULL, NULL), 0);
	cr_assert(changed(server), "add by another handle");
	cr_assert_not(changed(server), "reported once");

	/* reads and failed writes are no change */
	cr_assert_eq(sb_store_tenant_add(cli, "acme", NULL, NULL, NULL), SB_EEXIST);
	cr_assert_eq(sb_store_tenant_remove(cli, "nope", NULL), SB_ENOENT);
	cr_assert_eq(sb_store_tenant_list(cli, see, &(struct seen){0}, NULL), 1);
	cr_assert_not(changed(server));

	cr_assert_eq(sb_store_tenant_set_status(cli, "acme", SB_TENANT_SUSPENDED, NULL), 0);
	cr_assert(changed(server), "suspend");
	cr_assert_eq(sb_store_tenant_update(cli, "acme", "A", NULL, NULL), 0);
	cr_assert(changed(server), "update");
	cr_assert_eq(sb_store_tenant_remove(cli, "acme", NULL), 0);
	cr_assert(changed(server), "remove");
	cr_assert_not(changed(server));

	/* the handle's own writes count too, and the other handle sees them */
	cr_assert(changed(cli), "its own writes above");
	cr_assert_not(changed(cli));
	cr_assert_eq(sb_store_tenant_add(server, "beta", NULL, NULL, NULL), 0);
	cr_assert(changed(server), "own write");
	cr_assert(changed(cli), "write by the other handle");
	cr_assert_not(changed(server));
	cr_assert_not(changed(cli));
	sb_store_close(cli);
	sb_store_close(server);
}

static int see_count(void *ctx, const sb_tenant_rec *rec)
{
	return 0;
}

Test(store, concurrent_writers_in_processes)
{
	enum { N = 8, EACH = 10 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0) {
			/* each child creates (or finds) the store and writes */
			sb_store *st = NULL;
			int bad = sb_store_open(datadir, &st, NULL) < 0;
			for (int j = 0; !bad && j < EACH; j++) {
				char slug[32];
				snprintf(slug, sizeof(slug), "t%d-%d", i, j);
				bad |= sb_store_tenant_add(st, slug, NULL, NULL, NULL) < 0;
			}
			sb_store_close(st);
			_exit(bad);
		}
	}
	for (int i = 0; i < N; i++) {
		int status = 0;
		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
	}
	sb_store *st = open_store();
	cr_assert_eq(sb_store_tenant_list(st, see_count, NULL, NULL), N * EACH);
	sb_store_close(st);
}
