/*
 * switchboard.toml: Switchboard's own declaration (docs/configuration.md).
 *
 * It adds only what wrangler.toml cannot say: zones, upstreams, the
 * tenant-aware service, reserved labels, the naming of staging and preview
 * hosts, and webhook endpoints. Services point at their wrangler.toml (or are
 * declared inline with the same keys), which stays the source for names, vars
 * and routes.
 *
 * Pure: files are read through a callback, so tests can load from memory.
 */
#ifndef SB_CONFIG_DECL_H
#define SB_CONFIG_DECL_H

#include "common/sb.h"
#include "config/wrangler.h"

typedef enum sb_env {
	SB_ENV_PRODUCTION = 0,
	SB_ENV_STAGING = 1,
	SB_ENV_PREVIEW = 2,
	SB_ENV_COUNT = 3,
} sb_env;

/* "production", "staging", "preview". */
const char *sb_env_name(sb_env e);
/* Parse an environment name. Returns 0 or SB_EINVAL. */
int sb_env_parse(const char *s, sb_env *out);

typedef struct sb_upstream_decl {
	const char *url; /* "http://127.0.0.1:9101", or NULL */
	char **argv;	 /* command to start (NULL-terminated), or NULL */
	size_t argc;
	int line, col;
} sb_upstream_decl;

typedef struct sb_soa_decl {
	const char *mname; /* default: first nameserver */
	const char *rname; /* default: hostmaster.<zone> */
	uint32_t refresh, retry, expire, minimum, ttl;
} sb_soa_decl;

/* [dns]: zone transfer, NOTIFY and rate limiting (docs/dns.md). */
typedef struct sb_dns_key_cfg { /* [[dns.key]] */
	const char *name, *algorithm, *secret;
	int line, col;
} sb_dns_key_cfg;

typedef struct sb_dns_peer_cfg { /* [[dns.allow_transfer]], [[dns.notify]] */
	const char *address, *key;
	int line, col;
} sb_dns_peer_cfg;

typedef struct sb_dns_cfg {
	bool tenant_wildcard; /* tenant_records = "wildcard" */
	sb_dns_key_cfg *keys;
	size_t nkeys;
	sb_dns_peer_cfg *allow;
	size_t nallow;
	sb_dns_peer_cfg *notify;
	size_t nnotify;
	uint32_t ixfr_history, notify_retries;
	uint32_t rrl_rps, rrl_slip, rrl_ipv4_prefix, rrl_ipv6_prefix, rrl_table_size;
	bool rrl_slip_set;
	int line, col, rrl_line, rrl_col;
} sb_dns_cfg;

/* A static record of a zone ([[zone.record]]); data in master-file syntax. */
typedef struct sb_record_decl {
	const char *name; /* "@", relative, or absolute with a trailing dot */
	const char *type;
	int64_t ttl; /* < 0: the zone's ttl */
	const char *data;
	int line, col; /* the [[zone.record]] table */
	int name_line, name_col, type_line, type_col, data_line, data_col; /* its values */
} sb_record_decl;

typedef struct sb_zone_decl {
	const char *name; /* lower case, no trailing dot */
	char **addresses; /* IPv4/IPv6 literals, validated */
	size_t naddresses;
	char **nameservers;
	size_t nnameservers;
	uint32_t ttl;
	sb_soa_decl soa;
	sb_record_decl *records;
	size_t nrecords;
	int line, col;
} sb_zone_decl;

typedef struct sb_service_decl {
	sb_wrangler wr;		   /* from the wrangler.toml or the inline table */
	const char *wrangler_file; /* resolved path, or NULL when inline */
	const char *label;	   /* override of the host label used for naming */
	int label_line, label_col; /* where label was written */
	sb_upstream_decl upstream[SB_ENV_COUNT];
	char **url_vars;
	size_t nurl_vars;
	int *url_var_pos;	 /* line and column of each url_vars entry: 2 ints each */
	uint64_t max_body_bytes; /* 0: the [http] default */
	/* environments = { production = "prod", staging = "stage" }: the
	 * wrangler environment each of ours is read from ("": the top level for
	 * production, the naming rule for staging); NULL: [env.production] or the
	 * top level, and [env.staging] (docs/configuration.md) */
	const char *wr_env[SB_ENV_COUNT];
	int line, col;
} sb_service_decl;

typedef struct sb_webhook_decl {
	const char *provider;
	const char *url;
	const char *service; /* expected handler service, or NULL */
	sb_env env;
	int line, col;
} sb_webhook_decl;

/* [http]: limits and timeouts of the edge; defaults in docs/configuration.md. */
typedef struct sb_http_decl {
	uint32_t threads;	    /* serving threads; 0 = number of cores */
	uint32_t max_connections;   /* client connections, all threads together */
	uint32_t max_header_bytes;  /* request head; more gets 431 */
	uint64_t max_body_bytes;    /* request body, default for every service; 413 */
	uint32_t header_timeout_ms; /* whole head must arrive within; 408 */
	uint32_t idle_timeout_ms;   /* keep-alive idle, client side */
	uint32_t connect_timeout_ms;
	uint32_t response_timeout_ms; /* upstream's first response byte; 504 */
	uint32_t upstream_idle_ms;    /* pooled upstream connection idle */
	uint32_t health_interval_ms;
	uint32_t health_timeout_ms;
	uint32_t health_fails;	   /* failed checks in a row that mark an upstream down */
	uint32_t health_passes;	   /* passed checks in a row that mark it up again */
	uint32_t drain_timeout_ms; /* SIGTERM: in-flight requests get this long */
	char **trusted_proxies;	   /* CIDRs whose X-Forwarded-* are kept */
	size_t ntrusted_proxies;
	const char *access_log; /* path, "-" for stdout (default), "off" */
} sb_http_decl;

typedef struct sb_decl {
	sb_pool *pool;
	const char *file; /* the switchboard.toml path */
	const char *dir;  /* its directory, base for relative paths */
	const char *data_dir;
	const char *listen_http;
	const char *listen_dns;
	const char *listen_admin; /* admin API on TCP (bearer token), or NULL */
	bool dns_tenant_wildcard; /* [dns] tenant_records = "wildcard" */
	sb_dns_cfg dns;

	sb_zone_decl *zones;
	size_t nzones;
	sb_service_decl *services;
	size_t nservices;
	sb_webhook_decl *webhooks;
	size_t nwebhooks;

	const char *tenant_service; /* name of the tenant-aware service, or NULL */
	int tenant_service_line, tenant_service_col;
	char **reserved; /* extra reserved labels */
	size_t nreserved;
	char **static_tenants;
	size_t nstatic_tenants;
	int *static_pos; /* line and column of each static tenant: 2 ints each */
	int tenants_line, tenants_col;

	const char *preview_format; /* default "{label}-preview-{pr}" */
	const char *staging_format; /* default "{label}-staging" */
	int naming_line, naming_col;

	sb_http_decl http;

	uint32_t *preview_prs; /* previews listed as live in the declaration */
	size_t npreview_prs;
} sb_decl;

/* Read a whole file; fills d and returns a negative code on failure. */
typedef int (*sb_decl_read_fn)(void *ctx, const char *path, char **data, size_t *len, sb_diag *d);

/*
 * Load the declaration at `path` (a switchboard.toml file; the caller maps a
 * directory to the file inside it) and every wrangler.toml it names, relative
 * to its directory. Returns 0 and a new declaration, or a negative code with
 * d naming the file, line and column and what was expected.
 */
int sb_decl_load(const char *path, sb_decl_read_fn read, void *ctx, sb_decl **out, sb_diag *d);

/* Same, from text already in memory (wrangler files still come via read). */
int sb_decl_load_text(const char *path, const char *text, size_t len, sb_decl_read_fn read,
		      void *ctx, sb_decl **out, sb_diag *d);

void sb_decl_free(sb_decl *decl);

/* Is s an address the edge can listen on, as [listen] takes it: "IPv4:port"
 * or "[IPv6]:port", the port 0 (any free one) to 65535? serve's --listen
 * and --dns follow the same rule. */
bool sb_decl_listen_ok(const char *s);

#endif
