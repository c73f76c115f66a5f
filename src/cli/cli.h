/* The switchboard command line: shared loading and output helpers. */
#ifndef SB_CLI_CLI_H
#define SB_CLI_CLI_H

#include "config/decl.h"
#include "model/model.h"
#include "route/route.h"
#include "store/store.h"

/* Everything derived from one declaration, in data-flow order. */
typedef struct sb_loaded {
	sb_decl *decl;
	sb_model *model;
	sb_route_table *routes;
	sb_tenants *tenants; /* static tenants of the declaration */
	sb_live live;	     /* the store's live state (empty without a store) */
} sb_loaded;

/*
 * Load the declaration at path (a switchboard.toml, or a directory that holds
 * one) and derive the model (with the live state of the store in data_dir,
 * or in the declaration's data_dir when it is NULL, when one exists:
 * previews, deploys, deletes), the route table and the static tenant set.
 * Returns 0, or a negative code with d filled.
 */
int sb_cli_load(const char *path, const char *data_dir, sb_loaded *out, sb_diag *d);
void sb_cli_unload(sb_loaded *l);

/*
 * Open the store of dir for a command that only reads it: nothing is
 * created. Returns 0 with *st, or 0 with *st NULL when nothing is stored
 * there yet; a negative code (d filled) when the store cannot be read, or
 * when dir was given with --data (given) and does not exist, which is more
 * likely a typo than an empty registry.
 */
int sb_cli_store_read(const char *dir, bool given, sb_store **st, sb_diag *d);

/* Print a diagnostic as "switchboard: file:line:col: msg" on stderr. */
void sb_cli_print_diag(const sb_diag *d);

/* Text for an upstream ("http://...", "command: a b c", or "-"). */
const char *sb_cli_upstream_text(const sb_upstream_decl *u, char *buf, size_t size);

int sb_cli_check(int argc, char **argv);
int sb_cli_routes(int argc, char **argv);
int sb_cli_resolve(int argc, char **argv);
/* switchboard tenants add|suspend|resume|remove|list|show (src/cli/tenants.c) */
int sb_cli_tenants(int argc, char **argv);
/* switchboard serve / reload (src/cli/serve.c) */
int sb_cli_serve(int argc, char **argv);
int sb_cli_reload(int argc, char **argv);
int sb_cli_secret(int argc, char **argv);
/* switchboard verify: checks a running edge (src/cli/verify.c, docs/verify.md).
 * Returns the exit status: 0 all passed, 1 a check failed, 2 usage/load. */
int sb_cli_verify(int argc, char **argv);
/* switchboard zone export (src/cli/zone.c) */
int sb_cli_zone(int argc, char **argv);
/* switchboard deploy, delete, preview, versions, rollback (src/cli/live.c) */
int sb_cli_deploy(int argc, char **argv);
int sb_cli_delete(int argc, char **argv);
int sb_cli_preview(int argc, char **argv);
int sb_cli_versions(int argc, char **argv);
int sb_cli_rollback(int argc, char **argv);
/* "switchboard ARGV..." as one string, recorded with a version (malloc'd). */
char *sb_cli_command_line(int argc, char **argv);

/* Remember main's argv as typed (quoted for a shell), before any parsing
 * reorders it: sb_cli_command_line returns it from then on. */
void sb_cli_remember_command_line(int argc, char **argv);
/* Tell a running server (admin API, POST /v1/sync) that the store changed,
 * so that it serves the change before the command returns. Quiet when no
 * server runs; a warning on stderr when one runs and fails. */
void sb_cli_notify(const char *data_dir);
/* Is word one of the space-separated words of list? */
bool sb_cli_word_in(const char *list, const char *word);

/* The one of names that word is most likely a typo of (at most 2 edits,
 * fewer than word has letters, no tie; else the only name word starts), or
 * NULL. */
const char *sb_cli_suggest(const char *word, const char *const *names, size_t n);

/* An argument as typed, for a message: a byte that is not printable ASCII
 * (a newline would split the message, an escape sequence would run in the
 * terminal) as \xNN, a backslash doubled, at most SB_CLI_SHOWN_MAX bytes of
 * it ("..." after). Written to buf (SB_CLI_SHOWN_SIZE bytes); returns buf. */
#define SB_CLI_SHOWN_MAX 80
#define SB_CLI_SHOWN_SIZE (SB_CLI_SHOWN_MAX * 4 + 8)
const char *sb_cli_shown(const char *arg, char *buf, size_t size);

/* Print "<what>: unexpected argument 'arg'" (arg as sb_cli_shown has it),
 * then usage unless it is NULL, on stderr. */
void sb_cli_unexpected(const char *what, const char *arg, const char *usage);

/* Print "<what>: unknown command 'word'" (word as sb_cli_shown has it),
 * with a suggestion from names when there is one, on stderr. */
void sb_cli_unknown(const char *what, const char *word, const char *const *names, size_t n);

/* Parse --pr's value into pr. Returns 0, or 2 (the usage exit code) after
 * saying on stderr what is wrong with it. */
int sb_cli_parse_pr(const char *s, uint32_t *pr);

/* Map a declaration path (file or directory) to the switchboard.toml file. */
int sb_cli_decl_file(const char *path, char *out, size_t size, sb_diag *d);

#endif
