/* switchboard.toml loader. Unknown keys are errors here (it is our format, so
 * a typo should fail loudly); wrangler.toml stays permissive. */
#include "config/decl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg.h"

static const char *const env_names[SB_ENV_COUNT] = {"production", "staging", "preview"};

const char *sb_env_name(sb_env e)
{
	return (unsigned)e < SB_ENV_COUNT ? env_names[e] : "?";
}

int sb_env_parse(const char *s, sb_env *out)
{
	for (int i = 0; i < SB_ENV_COUNT; i++)
		if (strcmp(s, env_names[i]) == 0) {
			*out = (sb_env)i;
			return 0;
		}
	return SB_EINVAL;
}

/* A DNS name as we accept it in a declaration: LDH labels of 1..63, total
 * <= 253, lower-cased in place, a trailing dot dropped. */
/* A DNS name (lower-cased in place, a trailing dot dropped): labels of 1 to
 * 63 letters, digits and '-', not at either end of a label; '_' too unless
 * it must be a host name (a label, a nameserver), where it is not valid. */
static bool dns_name_ok(char *s, bool hostname)
{
	size_t n = strlen(s);
	if (n && s[n - 1] == '.')
		s[--n] = '\0';
	if (n == 0 || n > 253)
		return false;
	size_t lab = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-' || s[i - lab] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			s[i] = (char)(c + 32);
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   (c == '_' && !hostname)))
			return false;
		lab++;
	}
	return true;
}

static bool non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static int load_soa(const sb_toml_value *z, const char *file, sb_pool *pool, sb_zone_decl *zd,
		    sb_diag *d)
{
	static const char *const known[] = {"mname",  "rname",	 "refresh", "retry",
					    "expire", "minimum", "ttl",	    NULL};
	const sb_toml_value *soa;
	int r = sb_cfg_table(z, "soa", file, &soa, d);
	zd->soa.refresh = 3600;
	zd->soa.retry = 600;
	zd->soa.expire = 1209600;
	zd->soa.minimum = 300;
	zd->soa.ttl = zd->ttl;
	zd->soa.mname = zd->nnameservers ? zd->nameservers[0] : NULL;
	zd->soa.rname = sb_pool_printf(pool, "hostmaster.%s", zd->name);
	if (r < 0 || !soa)
		return r;
	if ((r = sb_cfg_known_keys(soa, known, "[zone.soa]", file, d)) < 0)
		return r;
	char *mname = NULL, *rname = NULL;
	int64_t v[5] = {zd->soa.refresh, zd->soa.retry, zd->soa.expire, zd->soa.minimum,
			zd->soa.ttl};
	const char *keys[5] = {"refresh", "retry", "expire", "minimum", "ttl"};
	if ((r = sb_cfg_string(soa, "mname", pool, file, &mname, d)) < 0 ||
	    (r = sb_cfg_string(soa, "rname", pool, file, &rname, d)) < 0)
		return r;
	for (int i = 0; i < 5; i++)
		if ((r = sb_cfg_int(soa, keys[i], 0, 2147483647, file, &v[i], d)) < 0)
			return r;
	if (mname && !dns_name_ok(mname, true))
		return sb_cfg_error(sb_toml_table_get(soa, "mname"), file, d,
				    "'mname' must be a DNS name, not \"%s\"", mname);
	if (rname && !dns_name_ok(rname, false))
		return sb_cfg_error(
		    sb_toml_table_get(soa, "rname"), file, d,
		    "'rname' must be a DNS name (mailbox with '.' for '@'), not \"%s\"", rname);
	if (mname)
		zd->soa.mname = mname;
	if (rname)
		zd->soa.rname = rname;
	zd->soa.refresh = (uint32_t)v[0];
	zd->soa.retry = (uint32_t)v[1];
	zd->soa.expire = (uint32_t)v[2];
	zd->soa.minimum = (uint32_t)v[3];
	zd->soa.ttl = (uint32_t)v[4];
	return 0;
}

static int load_zone(const sb_toml_value *z, const char *file, sb_pool *pool, sb_zone_decl *zd,
		     sb_diag *d)
{
	static const char *const known[] = {"name", "addresses", "nameservers", "ttl",
					    "soa",  "record",	 NULL};
	int r;
	char *name = NULL;
	int64_t ttl = 300;
	if (sb_toml_type_of(z) != SB_TOML_TABLE)
		return sb_cfg_error(z, file, d, "each [[zone]] must be a table");
	if ((r = sb_cfg_known_keys(z, known, "[[zone]]", file, d)) < 0 ||
	    (r = sb_cfg_string_req(z, "name", "the zone's domain, e.g. \"example.com\"", pool, file,
				   &name, d)) < 0 ||
	    (r = sb_cfg_strings(z, "addresses", pool, file, &zd->addresses, &zd->naddresses, d)) <
		0 ||
	    (r = sb_cfg_strings(z, "nameservers", pool, file, &zd->nameservers, &zd->nnameservers,
				d)) < 0 ||
	    (r = sb_cfg_int(z, "ttl", 0, 2147483647, file, &ttl, d)) < 0)
		return r;
	if (!dns_name_ok(name, false))
		return sb_cfg_error(sb_toml_table_get(z, "name"), file, d,
				    "zone 'name' must be a DNS name, not \"%s\"%s", name,
				    non_ascii(name) ? " (write an international name in its xn-- "
						      "(punycode) form)"
						    : "");
	zd->name = name;
	zd->ttl = (uint32_t)ttl;
	zd->line = sb_toml_line(z);
	zd->col = sb_toml_col(z);
	const sb_toml_value *addrs = sb_toml_table_get(z, "addresses");
	for (size_t i = 0; i < zd->naddresses; i++) {
		unsigned char buf[16];
		if (inet_pton(AF_INET, zd->addresses[i], buf) != 1 &&
		    inet_pton(AF_INET6, zd->addresses[i], buf) != 1)
			return sb_cfg_error(sb_toml_array_at(addrs, i), file, d,
					    "\"%s\" is not an IPv4 or IPv6 address",
					    zd->addresses[i]);
	}
	const sb_toml_value *ns = sb_toml_table_get(z, "nameservers");
	for (size_t i = 0; i < zd->nnameservers; i++)
		if (!dns_name_ok(zd->nameservers[i], true))
			return sb_cfg_error(sb_toml_array_at(ns, i), file, d,
					    "nameserver \"%s\" is not a DNS name%s",
					    zd->nameservers[i],
					    non_ascii(zd->nameservers[i])
						? " (write an international name in its xn-- "
						  "(punycode) form)"
						: "");
	const sb_toml_value *recs = sb_toml_table_get(z, "record");
	if (recs) {
		if (sb_toml_type_of(recs) != SB_TOML_ARRAY)
			return sb_cfg_error(recs, file, d,
					    "records are declared as [[zone.record]]");
		zd->nrecords = sb_toml_array_len(recs);
		zd->records = sb_pool_alloc(pool, (zd->nrecords + 1) * sizeof(*zd->records));
		for (size_t i = 0; i < zd->nrecords; i++) {
			static const char *const rk[] = {"name", "type", "ttl", "data", NULL};
			const sb_toml_value *rv = sb_toml_array_at(recs, i);
			sb_record_decl *rd = &zd->records[i];
			char *rname = NULL, *type = NULL, *data = NULL;
			int64_t rttl = -1;
			if (sb_toml_type_of(rv) != SB_TOML_TABLE)
				return sb_cfg_error(rv, file, d, "each [[zone.record]] is a table");
			if ((r = sb_cfg_known_keys(rv, rk, "[[zone.record]]", file, d)) < 0 ||
			    (r = sb_cfg_string_req(rv, "name", "\"@\", a relative or absolute name",
						   pool, file, &rname, d)) < 0 ||
			    (r = sb_cfg_string_req(rv, "type",
						   "A, AAAA, CNAME, MX, TXT, CAA or SRV", pool,
						   file, &type, d)) < 0 ||
			    (r = sb_cfg_string_req(rv, "data", "the record data, as in a zone file",
						   pool, file, &data, d)) < 0 ||
			    (r = sb_cfg_int(rv, "ttl", 0, 2147483647, file, &rttl, d)) < 0)
				return r;
			const sb_toml_value *nv = sb_toml_table_get(rv, "name"),
					    *tv = sb_toml_table_get(rv, "type"),
					    *dv = sb_toml_table_get(rv, "data");
			*rd = (sb_record_decl){.name = rname,
					       .type = type,
					       .ttl = rttl,
					       .data = data,
					       .line = sb_toml_line(rv),
					       .col = sb_toml_col(rv),
					       .name_line = sb_toml_line(nv),
					       .name_col = sb_toml_col(nv),
					       .type_line = sb_toml_line(tv),
					       .type_col = sb_toml_col(tv),
					       .data_line = sb_toml_line(dv),
					       .data_col = sb_toml_col(dv)};
		}
	}
	return load_soa(z, file, pool, zd, d);
}

static int load_upstream(const sb_toml_value *v, const char *file, sb_pool *pool,
			 sb_upstream_decl *u, sb_diag *d)
{
	int r;
	u->line = sb_toml_line(v);
	u->col = sb_toml_col(v);
	char *url = NULL;
	if (sb_toml_type_of(v) == SB_TOML_STRING) {
		url = sb_pool_strdup(pool, sb_toml_string(v, NULL));
	} else if (sb_toml_type_of(v) == SB_TOML_TABLE) {
		static const char *const known[] = {"url", "command", NULL};
		if ((r = sb_cfg_known_keys(v, known, "an upstream", file, d)) < 0 ||
		    (r = sb_cfg_string(v, "url", pool, file, &url, d)) < 0 ||
		    (r = sb_cfg_strings(v, "command", pool, file, &u->argv, &u->argc, d)) < 0)
			return r;
		if (url && u->argv)
			return sb_cfg_error(v, file, d,
					    "an upstream has either 'url' or 'command', not both");
		if (u->argv && (u->argc == 0 || !u->argv[0][0]))
			return sb_cfg_error(
			    u->argc ? sb_toml_array_at(sb_toml_table_get(v, "command"), 0) : v,
			    file, d, "'command' must name a program to start");
		if (!url && !u->argv)
			return sb_cfg_error(
			    v, file, d,
			    "an upstream needs 'url' (\"http://host:port\") or 'command' "
			    "([\"program\", \"arg\", ...])");
	} else {
		return sb_cfg_error(v, file, d,
				    "an upstream must be an URL string or { command = [...] }");
	}
	if (url) {
		const char *why;
		if (sb_url_check_upstream(url, &why) < 0)
			return sb_cfg_error(v, file, d, "upstream URL \"%s\": %s", url, why);
		u->url = url;
	}
	return 0;
}

bool sb_decl_listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;
	if (!colon || sb_parse_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0)
		return false;
	char host[64];
	size_t hl = (size_t)(colon - s);
	bool v6 = hl >= 2 && s[0] == '[' && s[hl - 1] == ']';
	if (v6) {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	unsigned char a[sizeof(struct in6_addr)];
	return inet_pton(v6 ? AF_INET6 : AF_INET, host, a) == 1;
}

static int load_environments(const sb_toml_value *s, const char *file, sb_pool *pool,
			     sb_service_decl *sd, sb_diag *d);

static int load_service(const sb_toml_value *s, const char *file, const char *dir, sb_pool *pool,
			sb_decl_read_fn read, void *ctx, sb_service_decl *sd, sb_diag *d)
{
	int r;
	char *wpath = NULL, *label = NULL;
	sb_toml_value *wdoc = NULL;
	char *text = NULL;
	if (sb_toml_type_of(s) != SB_TOML_TABLE)
		return sb_cfg_error(s, file, d, "each [[service]] must be a table");
	sd->line = sb_toml_line(s);
	sd->col = sb_toml_col(s);
	int64_t maxbody = 0;
	if ((r = sb_cfg_int(s, "max_body_bytes", 0, INT64_MAX, file, &maxbody, d)) < 0)
		return r;
	sd->max_body_bytes = (uint64_t)maxbody;
	if ((r = sb_cfg_string(s, "wrangler", pool, file, &wpath, d)) < 0 ||
	    (r = sb_cfg_string(s, "label", pool, file, &label, d)) < 0 ||
	    (r = sb_cfg_strings(s, "url_vars", pool, file, &sd->url_vars, &sd->nurl_vars, d)) < 0)
		return r;
	const sb_toml_value *uv = sb_toml_table_get(s, "url_vars");
	sd->url_var_pos = sb_pool_alloc(pool, (sd->nurl_vars + 1) * 2 * sizeof(int));
	for (size_t i = 0; i < sd->nurl_vars; i++) {
		sd->url_var_pos[2 * i] = sb_toml_line(sb_toml_array_at(uv, i));
		sd->url_var_pos[2 * i + 1] = sb_toml_col(sb_toml_array_at(uv, i));
	}
	sd->label = label;
	if (label) {
		sd->label_line = sb_toml_line(sb_toml_table_get(s, "label"));
		sd->label_col = sb_toml_col(sb_toml_table_get(s, "label"));
	}
	if (label && (strchr(label, '.') || !dns_name_ok(label, true)))
		return sb_cfg_error(sb_toml_table_get(s, "label"), file, d,
				    "'label' must be one host name label (letters, digits and "
				    "'-', not at either end), not \"%s\"",
				    label);
	/* the naming rule appends to the label: an encoded international
	 * label (xn--) would no longer decode */
	if (label && strncasecmp(label, "xn--", 4) == 0)
		return sb_cfg_error(sb_toml_table_get(s, "label"), file, d,
				    "'label' \"%s\" is an encoded international label (xn--), "
				    "and the naming rule adds text to the label, so its staging "
				    "and preview names would not decode: choose an ASCII label",
				    label);

	const sb_toml_value *ups;
	if ((r = sb_cfg_table(s, "upstream", file, &ups, d)) < 0)
		return r;
	for (size_t i = 0; ups && i < sb_toml_table_len(ups); i++) {
		const char *en = sb_toml_table_key(ups, i, NULL);
		sb_env e;
		if (sb_env_parse(en, &e) < 0)
			return sb_cfg_key_error(ups, i, file, d,
						"unknown environment '%s' in 'upstream' (expected "
						"production, staging or preview)",
						en);
		if ((r = load_upstream(sb_toml_table_value(ups, i), file, pool, &sd->upstream[e],
				       d)) < 0)
			return r;
	}

	if (wpath) {
		static const char *const known[] = {"wrangler", "label",	  "upstream",
						    "url_vars", "max_body_bytes", "environments",
						    NULL};
		if ((r = sb_cfg_known_keys(s, known,
					   "a [[service]] that points at a wrangler.toml (names, "
					   "vars and routes belong in that file)",
					   file, d)) < 0)
			return r;
		const char *full =
		    wpath[0] == '/' ? wpath : sb_pool_printf(pool, "%s/%s", dir, wpath);
		sd->wrangler_file = full;
		size_t len;
		sb_diag rd;
		if ((r = read(ctx, full, &text, &len, &rd)) < 0) {
			const sb_toml_value *wv = sb_toml_table_get(s, "wrangler");
			r = sb_cfg_error(wv, file, d, "cannot read wrangler file \"%s\": %s", full,
					 rd.msg);
			goto out;
		}
		/* wrangler reads wrangler.json and wrangler.jsonc too (the default
		 * for new projects): the same keys, in JSON with comments */
		size_t fl = strlen(full);
		bool json = (fl >= 5 && strcmp(full + fl - 5, ".json") == 0) ||
			    (fl >= 6 && strcmp(full + fl - 6, ".jsonc") == 0);
		if ((r = (json ? sb_toml_parse_jsonc : sb_toml_parse)(text, len, full, &wdoc, d)) <
		    0)
			goto out;
		static const char *const ours[] = {"label",	     "upstream",     "url_vars",
						   "max_body_bytes", "environments", NULL};
		for (const char *const *k = ours; *k; k++) {
			const sb_toml_value *v = sb_toml_table_get(wdoc, *k);
			if (v) {
				r = sb_cfg_error(v, full, d,
						 "'%s' is Switchboard's: it belongs in the "
						 "[[service]] of switchboard.toml, not in %s",
						 *k, json ? "the wrangler file" : "wrangler.toml");
				goto out;
			}
		}
		r = sb_wrangler_load(wdoc, full, pool, &sd->wr, d);
	} else {
		if (!sb_toml_table_get(s, "name"))
			return sb_cfg_error(s, file, d,
					    "a [[service]] needs 'wrangler' (path to its "
					    "wrangler.toml) or an inline 'name'");
		/* An inline service is a wrangler table plus our keys. Keys
		 * wrangler.toml files have that we do not use are accepted (a
		 * table pasted from one); anything else is a typo to report. */
		static const char *const ours[] = {"label", "upstream", "url_vars",
						   "max_body_bytes", "environments"};
		const char *const *rd = sb_wrangler_read_keys(), *const *oth =
								     sb_wrangler_other_keys();
		size_t nrd = 0, noth = 0, n = 0;
		while (rd[nrd])
			nrd++;
		while (oth[noth])
			noth++;
		/* ours and the keys read first: they are the ones suggested */
		const char **known =
		    sb_pool_alloc(pool, (SB_ARRAY_LEN(ours) + nrd + noth + 1) * sizeof(*known));
		for (size_t i = 0; i < SB_ARRAY_LEN(ours); i++)
			known[n++] = ours[i];
		for (size_t i = 0; i < nrd; i++)
			known[n++] = rd[i];
		for (size_t i = 0; i < noth; i++)
			known[n++] = oth[i];
		known[n] = NULL;
		if ((r = sb_cfg_known_keys(s, known, "an inline [[service]]", file, d)) < 0)
			return r;
		r = sb_wrangler_load(s, file, pool, &sd->wr, d);
	}
	if (r == 0)
		r = load_environments(s, file, pool, sd, d);
out:
	sb_toml_free(wdoc);
	free(text);
	return r;
}

/*
 * environments = { production = "...", staging = "..." }: which wrangler
 * environment each of ours is read from; "" is the top level for production,
 * and for staging the naming rule (as without [env.staging]). Without it, a wrangler file whose
 * environments only look like ours ([env.prod], [env.stage]) is an error
 * that says how to choose: production would otherwise be the top level and
 * staging derived, without a word.
 */
static int load_environments(const sb_toml_value *s, const char *file, sb_pool *pool,
			     sb_service_decl *sd, sb_diag *d)
{
	const sb_toml_value *envs;
	int r = sb_cfg_table(s, "environments", file, &envs, d);
	if (r < 0)
		return r;
	for (size_t i = 0; envs && i < sb_toml_table_len(envs); i++) {
		const char *ours = sb_toml_table_key(envs, i, NULL);
		const sb_toml_value *v = sb_toml_table_value(envs, i);
		sb_env e;
		if (sb_env_parse(ours, &e) < 0 || e == SB_ENV_PREVIEW)
			return sb_cfg_key_error(
			    envs, i, file, d,
			    "unknown environment '%s' in 'environments' (expected "
			    "production or staging; previews derive from production)",
			    ours);
		char *name = NULL;
		if ((r = sb_cfg_string(envs, ours, pool, file, &name, d)) < 0)
			return r;
		if (name[0] && !sb_wrangler_env(&sd->wr, name))
			return sb_cfg_error(v, file, d, "%s has no [env.%s]",
					    sd->wrangler_file ? sd->wrangler_file : "the service",
					    name);
		sd->wr_env[e] = name;
	}
	static const struct {
		sb_env env;
		const char *canonical;
		const char *alike[5];
	} guess[] = {{SB_ENV_PRODUCTION, "production", {"prod", "prd", "live", "main", NULL}},
		     {SB_ENV_STAGING, "staging", {"stage", "stg", "stag", "preprod", NULL}}};
	for (size_t g = 0; g < SB_ARRAY_LEN(guess); g++) {
		if (sd->wr_env[guess[g].env] || sb_wrangler_env(&sd->wr, guess[g].canonical))
			continue;
		/* wrangler's environment names are case-sensitive: [env.Production]
		 * is not [env.production], and is said so like [env.prod] */
		for (size_t k = 0; k < sd->wr.nenvs; k++) {
			const sb_wr_env *we = &sd->wr.envs[k];
			bool alike = strcasecmp(we->env, guess[g].canonical) == 0;
			for (const char *const *a = guess[g].alike; !alike && *a; a++)
				alike = strcasecmp(we->env, *a) == 0;
			if (!alike)
				continue;
			return sb_diag_set(
			    d, sd->wr.file, we->line, we->col,
			    "[env.%s] looks like %s, which Switchboard reads from [env.%s]%s; say "
			    "which in the [[service]] of switchboard.toml: environments = { %s = "
			    "\"%s\" }%s",
			    we->env, guess[g].canonical, guess[g].canonical,
			    guess[g].env == SB_ENV_PRODUCTION ? " or the top level" : "",
			    guess[g].canonical, we->env,
			    guess[g].env == SB_ENV_PRODUCTION
				? " (or production = \"\" for the top level)"
				: " (or staging = \"\" for hosts by the naming rule)");
		}
	}
	return 0;
}

static int load_webhook(const sb_toml_value *w, const char *file, sb_pool *pool,
			sb_webhook_decl *wd, sb_diag *d)
{
	static const char *const known[] = {"provider", "url", "service", "environment", NULL};
	int r;
	char *provider = NULL, *url = NULL, *service = NULL, *env = NULL;
	if (sb_toml_type_of(w) != SB_TOML_TABLE)
		return sb_cfg_error(w, file, d, "each [[webhook]] must be a table");
	if ((r = sb_cfg_known_keys(w, known, "[[webhook]]", file, d)) < 0 ||
	    (r = sb_cfg_string_req(w, "provider", "who sends it, e.g. \"stripe\"", pool, file,
				   &provider, d)) < 0 ||
	    (r = sb_cfg_string_req(w, "url", "the endpoint the provider posts to", pool, file, &url,
				   d)) < 0 ||
	    (r = sb_cfg_string(w, "service", pool, file, &service, d)) < 0 ||
	    (r = sb_cfg_string(w, "environment", pool, file, &env, d)) < 0)
		return r;
	if (!sb_http_scheme_len(url))
		return sb_cfg_error(sb_toml_table_get(w, "url"), file, d,
				    "webhook 'url' must be an http(s) URL, not \"%s\"", url);
	wd->env = SB_ENV_PRODUCTION;
	if (env && sb_env_parse(env, &wd->env) < 0)
		return sb_cfg_error(sb_toml_table_get(w, "environment"), file, d,
				    "unknown environment '%s' (expected production, staging or "
				    "preview)",
				    env);
	wd->provider = provider;
	wd->url = url;
	wd->service = service;
	wd->line = sb_toml_line(w);
	wd->col = sb_toml_col(w);
	return 0;
}

/* A naming template: {label} once, {pr} once for previews (never for
 * staging), other characters LDH. */
static int check_format(const sb_toml_value *v, const char *fmt, bool need_pr, const char *file,
			sb_diag *d)
{
	int nlabel = 0, npr = 0;
	for (const char *p = fmt; *p;) {
		if (strncmp(p, "{label}", 7) == 0) {
			nlabel++;
			p += 7;
		} else if (strncmp(p, "{pr}", 4) == 0) {
			npr++;
			p += 4;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
			p++;
		} else {
			return sb_cfg_error(v, file, d,
					    "naming template \"%s\": only {label}, {pr}, a-z, 0-9 "
					    "and '-' are allowed",
					    fmt);
		}
	}
	if (nlabel != 1)
		return sb_cfg_error(v, file, d, "naming template \"%s\" must contain {label} once",
				    fmt);
	if (need_pr && npr != 1)
		return sb_cfg_error(v, file, d, "preview template \"%s\" must contain {pr} once",
				    fmt);
	if (!need_pr && npr)
		return sb_cfg_error(v, file, d, "staging template \"%s\" cannot contain {pr}", fmt);
	if (!need_pr && strcmp(fmt, "{label}") == 0)
		return sb_cfg_error(v, file, d,
				    "staging template \"%s\" would name staging hosts as "
				    "production's: add to it (\"{label}-staging\")",
				    fmt);
	/* a host label neither starts nor ends with '-' (RFC 952, 1123) */
	if (fmt[0] == '-' || fmt[strlen(fmt) - 1] == '-')
		return sb_cfg_error(v, file, d,
				    "naming template \"%s\" %s with '-': the labels it makes "
				    "would not be host names (a label neither starts nor ends "
				    "with '-')",
				    fmt, fmt[0] == '-' ? "starts" : "ends");
	if (need_pr && (strstr(fmt, "{label}{pr}") || strstr(fmt, "{pr}{label}")))
		return sb_cfg_error(v, file, d,
				    "naming template \"%s\" needs a separator between {label} and "
				    "{pr}",
				    fmt);
	return 0;
}

static int load_http(const sb_toml_value *root, sb_decl *dc, sb_diag *d)
{
	static const char *const known[] = {"threads",
					    "max_connections",
					    "max_header_bytes",
					    "max_body_bytes",
					    "header_timeout_ms",
					    "idle_timeout_ms",
					    "connect_timeout_ms",
					    "response_timeout_ms",
					    "upstream_idle_ms",
					    "health_interval_ms",
					    "health_timeout_ms",
					    "health_fails",
					    "health_passes",
					    "drain_timeout_ms",
					    "trusted_proxies",
					    "access_log",
					    NULL};
	sb_http_decl *h = &dc->http;
	*h = (sb_http_decl){.threads = 0,
			    .max_connections = 16384,
			    .max_header_bytes = 16384,
			    .max_body_bytes = 10u << 20,
			    .header_timeout_ms = 10000,
			    .idle_timeout_ms = 60000,
			    .connect_timeout_ms = 5000,
			    .response_timeout_ms = 60000,
			    .upstream_idle_ms = 30000,
			    .health_interval_ms = 5000,
			    .health_timeout_ms = 2000,
			    .health_fails = 1,
			    .health_passes = 1,
			    .drain_timeout_ms = 10000,
			    .access_log = "-"};
	const sb_toml_value *t;
	int r = sb_cfg_table(root, "http", dc->file, &t, d);
	if (r < 0 || !t)
		return r;
	if ((r = sb_cfg_known_keys(t, known, "[http]", dc->file, d)) < 0)
		return r;
	struct {
		const char *key;
		int64_t min, max;
		void *dst;
		bool wide;
	} ints[] = {
	    {"threads", 0, 1024, &h->threads, false},
	    {"max_connections", 1, 10000000, &h->max_connections, false},
	    {"max_header_bytes", 1024, 1 << 20, &h->max_header_bytes, false},
	    {"max_body_bytes", 0, INT64_MAX, &h->max_body_bytes, true},
	    {"header_timeout_ms", 1, 3600000, &h->header_timeout_ms, false},
	    {"idle_timeout_ms", 1, 86400000, &h->idle_timeout_ms, false},
	    {"connect_timeout_ms", 1, 600000, &h->connect_timeout_ms, false},
	    {"response_timeout_ms", 1, 86400000, &h->response_timeout_ms, false},
	    {"upstream_idle_ms", 1, 86400000, &h->upstream_idle_ms, false},
	    {"health_interval_ms", 0, 86400000, &h->health_interval_ms, false},
	    {"health_timeout_ms", 1, 600000, &h->health_timeout_ms, false},
	    {"health_fails", 1, 100, &h->health_fails, false},
	    {"health_passes", 1, 100, &h->health_passes, false},
	    {"drain_timeout_ms", 0, 3600000, &h->drain_timeout_ms, false},
	};
	for (size_t i = 0; i < SB_ARRAY_LEN(ints); i++) {
		int64_t v = ints[i].wide ? (int64_t) * (uint64_t *)ints[i].dst
					 : (int64_t) * (uint32_t *)ints[i].dst;
		if ((r = sb_cfg_int(t, ints[i].key, ints[i].min, ints[i].max, dc->file, &v, d)) < 0)
			return r;
		if (ints[i].wide)
			*(uint64_t *)ints[i].dst = (uint64_t)v;
		else
			*(uint32_t *)ints[i].dst = (uint32_t)v;
	}
	char *log = NULL;
	if ((r = sb_cfg_strings(t, "trusted_proxies", dc->pool, dc->file, &h->trusted_proxies,
				&h->ntrusted_proxies, d)) < 0 ||
	    (r = sb_cfg_string(t, "access_log", dc->pool, dc->file, &log, d)) < 0)
		return r;
	if (log && !log[0])
		return sb_cfg_error(sb_toml_table_get(t, "access_log"), dc->file, d,
				    "'access_log' is empty: \"-\" (stdout), \"off\" or a file");
	/* a relative path is the declaration's, as data_dir and wrangler are,
	 * not the working directory's (a service manager's is often /) */
	if (log && strcmp(log, "-") != 0 && strcmp(log, "off") != 0 && log[0] != '/')
		log = sb_pool_printf(dc->pool, "%s/%s", dc->dir, log);
	if (log)
		h->access_log = log;
	const sb_toml_value *tp = sb_toml_table_get(t, "trusted_proxies");
	for (size_t i = 0; i < h->ntrusted_proxies; i++) {
		unsigned char buf[16];
		char a[64];
		const char *cidr = h->trusted_proxies[i];
		const char *slash = strchr(cidr, '/');
		size_t al = slash ? (size_t)(slash - cidr) : strlen(cidr);
		uint64_t bits = 0;
		bool v6 = memchr(cidr, ':', al) != NULL;
		if (al >= sizeof(a) ||
		    (snprintf(a, sizeof(a), "%.*s", (int)al, cidr),
		     inet_pton(v6 ? AF_INET6 : AF_INET, a, buf) != 1) ||
		    (slash && sb_parse_u64(slash + 1, strlen(slash + 1), v6 ? 128 : 32, &bits) < 0))
			return sb_cfg_error(sb_toml_array_at(tp, i), dc->file, d,
					    "trusted proxy \"%s\" is not an address or CIDR "
					    "(\"10.0.0.0/8\", \"::1\")",
					    cidr);
		/* bits set past the prefix ("10.0.0.1/8"): most likely a typo for
		 * one address or another prefix; nginx warns, we ask */
		size_t nbytes = v6 ? 16 : 4;
		bool host_bits = false;
		for (size_t k = 0; slash && k < nbytes; k++) {
			size_t lo = k * 8;
			unsigned mask = bits >= lo + 8 ? 0
					: bits <= lo   ? 0xff
						       : 0xffu >> (bits - lo);
			host_bits |= (buf[k] & mask) != 0;
		}
		if (host_bits)
			return sb_cfg_error(
			    sb_toml_array_at(tp, i), dc->file, d,
			    "trusted proxy \"%s\" has address bits set past its "
			    "/%u prefix: write the network (its first address) or one "
			    "address",
			    cidr, (unsigned)bits);
	}
	return 0;
}

static int load_peers(const sb_toml_value *t, const char *key, const char *what, sb_decl *dc,
		      sb_dns_peer_cfg **out, size_t *n, sb_diag *d)
{
	const sb_toml_value *arr = sb_toml_table_get(t, key);
	int r;
	if (!arr)
		return 0;
	if (sb_toml_type_of(arr) != SB_TOML_ARRAY)
		return sb_cfg_error(arr, dc->file, d, "%s are declared as [[dns.%s]] tables", what,
				    key);
	*n = sb_toml_array_len(arr);
	*out = sb_pool_alloc(dc->pool, (*n + 1) * sizeof(**out));
	for (size_t i = 0; i < *n; i++) {
		static const char *const known[] = {"address", "key", NULL};
		const sb_toml_value *v = sb_toml_array_at(arr, i);
		char *addr = NULL, *k = NULL;
		char where[64];
		snprintf(where, sizeof(where), "[[dns.%s]]", key);
		if (sb_toml_type_of(v) != SB_TOML_TABLE)
			return sb_cfg_error(v, dc->file, d, "each %s is a table", where);
		if ((r = sb_cfg_known_keys(v, known, where, dc->file, d)) < 0 ||
		    (r = sb_cfg_string_req(v, "address", "an address (with a port or prefix)",
					   dc->pool, dc->file, &addr, d)) < 0 ||
		    (r = sb_cfg_string(v, "key", dc->pool, dc->file, &k, d)) < 0)
			return r;
		(*out)[i] = (sb_dns_peer_cfg){addr, k, sb_toml_line(v), sb_toml_col(v)};
	}
	return 0;
}

static int load_dns(const sb_toml_value *root, sb_decl *dc, sb_diag *d)
{
	static const char *const known[] = {"tenant_records", "key", "allow_transfer",
					    "notify",	      "rrl", "ixfr_history",
					    "notify_retries", NULL};
	const char *file = dc->file;
	sb_dns_cfg *c = &dc->dns;
	const sb_toml_value *t;
	int r = sb_cfg_table(root, "dns", file, &t, d);
	if (r < 0 || !t)
		return r;
	c->line = sb_toml_line(t);
	c->col = sb_toml_col(t);
	char *tr = NULL;
	int64_t hist = 0, retries = 0;
	if ((r = sb_cfg_known_keys(t, known, "[dns]", file, d)) < 0 ||
	    (r = sb_cfg_string(t, "tenant_records", dc->pool, file, &tr, d)) < 0 ||
	    (r = sb_cfg_int(t, "ixfr_history", 0, 100000, file, &hist, d)) < 0 ||
	    (r = sb_cfg_int(t, "notify_retries", 0, 1000, file, &retries, d)) < 0)
		return r;
	if (tr && strcmp(tr, "each") != 0 && strcmp(tr, "wildcard") != 0)
		return sb_cfg_error(sb_toml_table_get(t, "tenant_records"), file, d,
				    "'tenant_records' is \"each\" (one record per active "
				    "tenant) or \"wildcard\"");
	c->tenant_wildcard = dc->dns_tenant_wildcard = tr && strcmp(tr, "wildcard") == 0;
	c->ixfr_history = (uint32_t)hist;
	c->notify_retries = (uint32_t)retries;

	const sb_toml_value *keys = sb_toml_table_get(t, "key");
	if (keys) {
		if (sb_toml_type_of(keys) != SB_TOML_ARRAY)
			return sb_cfg_error(keys, file, d,
					    "keys are declared as [[dns.key]] tables");
		c->nkeys = sb_toml_array_len(keys);
		c->keys = sb_pool_alloc(dc->pool, (c->nkeys + 1) * sizeof(*c->keys));
		for (size_t i = 0; i < c->nkeys; i++) {
			static const char *const kk[] = {"name", "algorithm", "secret", NULL};
			const sb_toml_value *v = sb_toml_array_at(keys, i);
			char *name = NULL, *alg = NULL, *sec = NULL;
			if (sb_toml_type_of(v) != SB_TOML_TABLE)
				return sb_cfg_error(v, file, d, "each [[dns.key]] is a table");
			if ((r = sb_cfg_known_keys(v, kk, "[[dns.key]]", file, d)) < 0 ||
			    (r = sb_cfg_string_req(v, "name", "the TSIG key's name", dc->pool, file,
						   &name, d)) < 0 ||
			    (r = sb_cfg_string(v, "algorithm", dc->pool, file, &alg, d)) < 0 ||
			    (r = sb_cfg_string_req(v, "secret", "the key, base64", dc->pool, file,
						   &sec, d)) < 0)
				return r;
			c->keys[i] =
			    (sb_dns_key_cfg){name, alg, sec, sb_toml_line(v), sb_toml_col(v)};
		}
	}
	if ((r = load_peers(t, "allow_transfer", "transfer permissions", dc, &c->allow, &c->nallow,
			    d)) < 0 ||
	    (r = load_peers(t, "notify", "secondaries to notify", dc, &c->notify, &c->nnotify, d)) <
		0)
		return r;

	const sb_toml_value *rrl;
	if ((r = sb_cfg_table(t, "rrl", file, &rrl, d)) < 0)
		return r;
	if (rrl) {
		static const char *const rk[] = {"responses_per_second", "slip",
						 "ipv4_prefix",		 "ipv6_prefix",
						 "table_size",		 NULL};
		int64_t v[5] = {0, 2, 24, 56, 0};
		const char *names[5] = {"responses_per_second", "slip", "ipv4_prefix",
					"ipv6_prefix", "table_size"};
		const int64_t max[5] = {10000000, 100, 32, 128, 1 << 24};
		if ((r = sb_cfg_known_keys(rrl, rk, "[dns] rrl", file, d)) < 0)
			return r;
		for (int i = 0; i < 5; i++)
			if ((r = sb_cfg_int(rrl, names[i], i >= 2 && i <= 3 ? 1 : 0, max[i], file,
					    &v[i], d)) < 0)
				return r;
		c->rrl_rps = (uint32_t)v[0];
		c->rrl_slip = (uint32_t)v[1];
		c->rrl_ipv4_prefix = (uint32_t)v[2];
		c->rrl_ipv6_prefix = (uint32_t)v[3];
		c->rrl_table_size = (uint32_t)v[4];
		c->rrl_slip_set = true;
		c->rrl_line = sb_toml_line(rrl);
		c->rrl_col = sb_toml_col(rrl);
	}
	return 0;
}

static int load_root(const sb_toml_value *root, sb_decl *dc, sb_decl_read_fn read, void *ctx,
		     sb_diag *d)
{
	static const char *const known[] = {"data_dir", "listen",  "zone",    "tenants",
					    "naming",	"service", "webhook", "previews",
					    "http",	"dns",	   NULL};
	const char *file = dc->file;
	sb_pool *pool = dc->pool;
	int r;
	char *data_dir = NULL;
	if ((r = sb_cfg_known_keys(root, known, "switchboard.toml", file, d)) < 0 ||
	    (r = sb_cfg_string(root, "data_dir", pool, file, &data_dir, d)) < 0)
		return r;
	/* "" would put the store beside switchboard.toml without a word */
	if (data_dir && !data_dir[0])
		return sb_cfg_error(sb_toml_table_get(root, "data_dir"), file, d,
				    "'data_dir' is empty: name a directory, or leave the key out "
				    "for .switchboard beside this file");
	dc->data_dir =
	    data_dir
		? (data_dir[0] == '/' ? data_dir : sb_pool_printf(pool, "%s/%s", dc->dir, data_dir))
		: sb_pool_printf(pool, "%s/.switchboard", dc->dir);

	const sb_toml_value *t;
	if ((r = sb_cfg_table(root, "listen", file, &t, d)) < 0)
		return r;
	if (t) {
		static const char *const lk[] = {"http", "dns", "admin", NULL};
		char *http = NULL, *dns = NULL, *admin = NULL;
		if ((r = sb_cfg_known_keys(t, lk, "[listen]", file, d)) < 0 ||
		    (r = sb_cfg_string(t, "http", pool, file, &http, d)) < 0 ||
		    (r = sb_cfg_string(t, "dns", pool, file, &dns, d)) < 0 ||
		    (r = sb_cfg_string(t, "admin", pool, file, &admin, d)) < 0)
			return r;
		const char *keys[] = {"http", "dns", "admin"}, *vals[] = {http, dns, admin};
		for (int i = 0; i < 3; i++)
			if (vals[i] && !sb_decl_listen_ok(vals[i]))
				return sb_cfg_error(
				    sb_toml_table_get(t, keys[i]), file, d,
				    "[listen] %s: expected an IP address and port "
				    "(\"127.0.0.1:8080\", \"[::1]:53\"), not \"%s\"",
				    keys[i], vals[i]);
		dc->listen_http = http;
		dc->listen_dns = dns;
		dc->listen_admin = admin;
	}

	if ((r = load_http(root, dc, d)) < 0)
		return r;
	if ((r = load_dns(root, dc, d)) < 0)
		return r;

	/* [[zone]] */
	const sb_toml_value *zones = sb_toml_table_get(root, "zone");
	if (zones) {
		if (sb_toml_type_of(zones) != SB_TOML_ARRAY)
			return sb_cfg_error(zones, file, d,
					    "zones are declared as [[zone]] tables");
		dc->nzones = sb_toml_array_len(zones);
		dc->zones = sb_pool_alloc(pool, (dc->nzones + 1) * sizeof(*dc->zones));
		for (size_t i = 0; i < dc->nzones; i++) {
			if ((r = load_zone(sb_toml_array_at(zones, i), file, pool, &dc->zones[i],
					   d)) < 0)
				return r;
			for (size_t j = 0; j < i; j++)
				if (strcmp(dc->zones[j].name, dc->zones[i].name) == 0)
					return sb_cfg_error(
					    sb_toml_array_at(zones, i), file, d,
					    "zone \"%s\" is declared twice (first at "
					    "line %d)",
					    dc->zones[i].name, dc->zones[j].line);
		}
	}

	/* [naming] */
	dc->preview_format = "{label}-preview-{pr}";
	dc->staging_format = "{label}-staging";
	if ((r = sb_cfg_table(root, "naming", file, &t, d)) < 0)
		return r;
	if (t) {
		static const char *const nk[] = {"preview", "staging", NULL};
		char *pv = NULL, *st = NULL;
		if ((r = sb_cfg_known_keys(t, nk, "[naming]", file, d)) < 0 ||
		    (r = sb_cfg_string(t, "preview", pool, file, &pv, d)) < 0 ||
		    (r = sb_cfg_string(t, "staging", pool, file, &st, d)) < 0)
			return r;
		if (pv &&
		    (r = check_format(sb_toml_table_get(t, "preview"), pv, true, file, d)) < 0)
			return r;
		if (st &&
		    (r = check_format(sb_toml_table_get(t, "staging"), st, false, file, d)) < 0)
			return r;
		if (pv)
			dc->preview_format = pv;
		if (st)
			dc->staging_format = st;
		dc->naming_line = sb_toml_line(t);
		dc->naming_col = sb_toml_col(t);
	}

	/* [tenants] */
	if ((r = sb_cfg_table(root, "tenants", file, &t, d)) < 0)
		return r;
	if (t) {
		static const char *const tk[] = {"service", "reserved", "static", NULL};
		char *svc = NULL;
		if ((r = sb_cfg_known_keys(t, tk, "[tenants]", file, d)) < 0 ||
		    (r = sb_cfg_string(t, "service", pool, file, &svc, d)) < 0 ||
		    (r = sb_cfg_strings(t, "reserved", pool, file, &dc->reserved, &dc->nreserved,
					d)) < 0 ||
		    (r = sb_cfg_strings(t, "static", pool, file, &dc->static_tenants,
					&dc->nstatic_tenants, d)) < 0)
			return r;
		dc->tenant_service = svc;
		const sb_toml_value *sv = sb_toml_table_get(t, "service");
		dc->tenant_service_line = sv ? sb_toml_line(sv) : sb_toml_line(t);
		dc->tenant_service_col = sv ? sb_toml_col(sv) : sb_toml_col(t);
		dc->tenants_line = sb_toml_line(t);
		dc->tenants_col = sb_toml_col(t);
		const sb_toml_value *rv = sb_toml_table_get(t, "reserved");
		for (size_t i = 0; i < dc->nreserved; i++) {
			char *l = dc->reserved[i];
			if (strchr(l, '.') || !dns_name_ok(l, true))
				return sb_cfg_error(sb_toml_array_at(rv, i), file, d,
						    "a reserved name is one host name label "
						    "(letters, digits and '-'), not \"%s\"",
						    l);
		}
		const sb_toml_value *stv = sb_toml_table_get(t, "static");
		dc->static_pos = sb_pool_alloc(pool, (dc->nstatic_tenants + 1) * 2 * sizeof(int));
		for (size_t i = 0; i < dc->nstatic_tenants; i++) {
			dc->static_pos[2 * i] = sb_toml_line(sb_toml_array_at(stv, i));
			dc->static_pos[2 * i + 1] = sb_toml_col(sb_toml_array_at(stv, i));
			for (size_t j = 0; j < i; j++)
				if (strcmp(dc->static_tenants[j], dc->static_tenants[i]) == 0)
					return sb_cfg_error(sb_toml_array_at(stv, i), file, d,
							    "static tenant \"%s\" is listed twice",
							    dc->static_tenants[i]);
		}
		if (dc->nstatic_tenants && !svc)
			return sb_cfg_error(t, file, d,
					    "'static' tenants need 'service' (the tenant-aware "
					    "service that serves {slug}.<zone>)");
	}

	/* [previews] */
	if ((r = sb_cfg_table(root, "previews", file, &t, d)) < 0)
		return r;
	if (t) {
		static const char *const pk[] = {"prs", NULL};
		if ((r = sb_cfg_known_keys(t, pk, "[previews]", file, d)) < 0)
			return r;
		const sb_toml_value *prs = sb_toml_table_get(t, "prs");
		if (prs) {
			if (sb_toml_type_of(prs) != SB_TOML_ARRAY)
				return sb_cfg_error(
				    prs, file, d, "'prs' must be an array of pull request numbers");
			dc->npreview_prs = sb_toml_array_len(prs);
			dc->preview_prs =
			    sb_pool_alloc(pool, (dc->npreview_prs + 1) * sizeof(uint32_t));
			for (size_t i = 0; i < dc->npreview_prs; i++) {
				const sb_toml_value *e = sb_toml_array_at(prs, i);
				if (sb_toml_type_of(e) != SB_TOML_INTEGER || sb_toml_int(e) < 1 ||
				    sb_toml_int(e) > 999999999)
					return sb_cfg_error(e, file, d,
							    "a pull request number is an integer "
							    "from 1 to 999999999");
				dc->preview_prs[i] = (uint32_t)sb_toml_int(e);
				for (size_t j = 0; j < i; j++)
					if (dc->preview_prs[j] == dc->preview_prs[i])
						return sb_cfg_error(
						    e, file, d,
						    "pull request %u is listed twice in "
						    "'prs'",
						    dc->preview_prs[i]);
			}
		}
	}

	/* [[service]] */
	const sb_toml_value *svcs = sb_toml_table_get(root, "service");
	if (svcs) {
		if (sb_toml_type_of(svcs) != SB_TOML_ARRAY)
			return sb_cfg_error(svcs, file, d,
					    "services are declared as [[service]] tables");
		dc->nservices = sb_toml_array_len(svcs);
		dc->services = sb_pool_alloc(pool, (dc->nservices + 1) * sizeof(*dc->services));
		for (size_t i = 0; i < dc->nservices; i++)
			if ((r = load_service(sb_toml_array_at(svcs, i), file, dc->dir, pool, read,
					      ctx, &dc->services[i], d)) < 0)
				return r;
	}

	/* [[webhook]] */
	const sb_toml_value *whs = sb_toml_table_get(root, "webhook");
	if (whs) {
		if (sb_toml_type_of(whs) != SB_TOML_ARRAY)
			return sb_cfg_error(whs, file, d,
					    "webhooks are declared as [[webhook]] tables");
		dc->nwebhooks = sb_toml_array_len(whs);
		dc->webhooks = sb_pool_alloc(pool, (dc->nwebhooks + 1) * sizeof(*dc->webhooks));
		for (size_t i = 0; i < dc->nwebhooks; i++)
			if ((r = load_webhook(sb_toml_array_at(whs, i), file, pool,
					      &dc->webhooks[i], d)) < 0)
				return r;
	}
	return 0;
}

int sb_decl_load_text(const char *path, const char *text, size_t len, sb_decl_read_fn read,
		      void *ctx, sb_decl **out, sb_diag *d)
{
	sb_toml_value *root = NULL;
	sb_decl *dc = sb_xcalloc(1, sizeof(*dc));
	dc->pool = sb_pool_new(0);
	dc->file = sb_pool_strdup(dc->pool, path);
	const char *slash = strrchr(path, '/');
	dc->dir =
	    slash ? sb_pool_strndup(dc->pool, path, (size_t)(slash - path) + (slash == path)) : ".";
	int r = sb_toml_parse(text, len, path, &root, d);
	if (r == 0)
		r = load_root(root, dc, read, ctx, d);
	sb_toml_free(root);
	if (r < 0) {
		sb_decl_free(dc);
		dc = NULL;
	}
	*out = dc;
	return r;
}

int sb_decl_load(const char *path, sb_decl_read_fn read, void *ctx, sb_decl **out, sb_diag *d)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	int r = read(ctx, path, &text, &len, d);
	if (r < 0)
		return r;
	r = sb_decl_load_text(path, text, len, read, ctx, out, d);
	free(text);
	return r;
}

void sb_decl_free(sb_decl *decl)
{
	if (!decl)
		return;
	sb_pool_free(decl->pool);
	free(decl);
}
