/*
 * The consistency check: every URL that a deployment or a webhook provider
 * will call must be served. This is the class of failure the plan hit:
 * webhooks sent to a host that nothing routed. Pure: no I/O.
 *
 * Rules (docs/configuration.md, "Consistency"):
 *  - a var whose value is an http(s) URL on a declared zone must name a host
 *    and path that a route serves in the same environment (and, for a
 *    preview, the same pull request);
 *  - a var listed in the service's url_vars must be set, and be such an URL;
 *  - a webhook URL must be on a declared zone, routed in its environment,
 *    and, when the webhook names a service, routed to that service.
 */
#ifndef SB_ROUTE_CHECK_H
#define SB_ROUTE_CHECK_H

#include "route/route.h"

typedef struct sb_violation {
	char file[512]; /* a copy: violations outlive the model */
	int line, col;
	char msg[640];
} sb_violation;

/*
 * Check the model's production and staging deployments, every listed
 * preview, and one representative preview (PR `sample_pr`) that stands for
 * all others, since they are all derived the same way. Violations are
 * appended to *out (realloc'd; free with free()). Returns the number of
 * violations (0 = consistent).
 */
size_t sb_check_run(const sb_model *m, const sb_route_table *rt, const sb_tenants *tenants,
		    uint32_t sample_pr, sb_violation **out);

#endif
