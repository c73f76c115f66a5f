/*
 * LD_PRELOAD shim for end-to-end tests: while the file named by
 * SB_TEST_COMMIT_FAIL exists, SQLite's "COMMIT" fails with SQLITE_IOERR, so
 * that a test can make a change fail after everything before the commit has
 * run (tests/e2e/test_dns_transfer.py). Everything else goes to SQLite.
 */
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*exec_fn)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
		       char **);

int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg,
		 char **err)
{
	static exec_fn real;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "sqlite3_exec");
	const char *flag = getenv("SB_TEST_COMMIT_FAIL");
	if (flag && sql && strcmp(sql, "COMMIT") == 0 && access(flag, F_OK) == 0)
		return SQLITE_IOERR;
	return real(db, sql, cb, arg, err);
}
