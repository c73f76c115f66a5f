/*
 * The edge's control side: start-up, snapshots, serving threads, signals,
 * reloads, tenant registry polling and active health checks. The request
 * path is in proxy.c.
 */
#include "http/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/api.h"
#include "admin/ops.h"
#include "dns/xfr.h"
#include "http/procs.h"
#include "store/store.h"

#define STORE_POLL_MS 200

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sb_edge_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

void sb_edge_signals(bool hold)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

int64_t sb_edge_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* The soft open-file limit, or 0 when there is none. */
static unsigned long long nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (unsigned long long)rl.rlim_cur;
}

/* ---- logs that never wait ------------------------------------------------ */

/*
 * How to write to fd (stdout, stderr, a log path) without waiting for its
 * reader: a pipe, a FIFO or a character device (a tty) is opened anew as a
 * description of our own with O_NONBLOCK (never set on fd itself: its
 * description is shared with the shell, the terminal, the supervisor's
 * other children); a socket is written with send(MSG_DONTWAIT). own: fd's
 * description is ours alone (a path we opened), which may then be made
 * non-blocking in place. *out is the descriptor to write (fd itself, or a
 * new one the caller closes); *err why a blocking write remains (0: none).
 */
static int log_writer(int fd, bool own, int *out, int *err)
{
	struct stat st;
	*out = fd;
	*err = 0;
	if (fstat(fd, &st) < 0) {
		*err = errno;
		return SB_LOG_BLOCKING;
	}
	if (S_ISREG(st.st_mode))
		return SB_LOG_FILE;
	if (S_ISSOCK(st.st_mode))
		return SB_LOG_SOCKET;
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		*err = ENOTSUP;
		return SB_LOG_BLOCKING;
	}
	int mode = S_ISFIFO(st.st_mode) ? SB_LOG_PIPE : SB_LOG_NONBLOCK;
	if (own) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			*err = errno;
			return SB_LOG_BLOCKING;
		}
		return mode;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (nfd < 0) {
		*err = errno;
		return SB_LOG_BLOCKING;
	}
	*out = nfd;
	return mode;
}

/* Diagnostics: stderr as sb_edge_run set it up (log_writer), fd 2 before
 * and after. Lines are rare: one lock for all threads keeps a line that
 * went out in part (a tty, a socket, a line over PIPE_BUF) from being run
 * into by another thread's. */
static pthread_mutex_t diag_lock = PTHREAD_MUTEX_INITIALIZER;
static int diag_fd = 2;
static int diag_mode = SB_LOG_BLOCKING;
static bool diag_broken; /* the last line went out in part: end it first */
static atomic_uint_fast64_t diag_dropped;

/* How long the rest of a line that went out in part may be waited for: the
 * reader is reading (it took the start), and a half line would run into
 * the next one. Bounded, so a reader that stops there costs this once. */
#define DIAG_PART_WAIT_MS 50

ssize_t sb_edge_log_out(int fd, int mode, const char *p, size_t n)
{
	for (;;) {
		ssize_t w = mode == SB_LOG_SOCKET ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
						  : write(fd, p, n);
		if (w >= 0 || errno != EINTR)
			return w;
	}
}

/*
 * Write buf[0..len) to stderr (diag_lock held). When part of it went out,
 * or with wait_unstarted when none did, the rest is waited for, up to
 * wait_ms in all. Returns the bytes written.
 */
static size_t diag_out(const char *buf, size_t len, int wait_ms, bool wait_unstarted)
{
	size_t done = 0;
	int64_t until = 0;
	for (;;) {
		ssize_t w = sb_edge_log_out(diag_fd, diag_mode, buf + done, len - done);
		if (w > 0)
			done += (size_t)w;
		if (done == len || (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
		    (done == 0 && !wait_unstarted))
			return done;
		if (!until)
			until = sb_edge_mono_ms() + wait_ms;
		int64_t left = until - sb_edge_mono_ms();
		struct pollfd pfd = {.fd = diag_fd, .events = POLLOUT};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return done;
	}
}

void sb_edge_diag_write(const char *line, size_t n)
{
	char buf[8192];
	pthread_mutex_lock(&diag_lock);
	uint64_t lost = atomic_exchange(&diag_dropped, 0);
	size_t len = 0;
	if (diag_broken)
		buf[len++] = '\n';
	if (lost)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"switchboard: warning: %" PRIu64
					" diagnostic lines dropped (stderr not keeping up)\n",
					(uint64_t)lost);
	if (n > sizeof(buf) - len)
		n = sizeof(buf) - len; /* longer than any line made here */
	memcpy(buf + len, line, n);
	len += n;
	/* one write per line, so lines of different threads do not interleave */
	size_t done = diag_out(buf, len, DIAG_PART_WAIT_MS, false);
	if (done == len) {
		diag_broken = false;
	} else {
		/* not or not all written: this line is lost, and so is the count
		 * if it did not go out whole */
		size_t head = len - n;
		atomic_fetch_add(&diag_dropped, 1 + (done < head ? lost : 0));
		if (done > 0)
			diag_broken = true;
	}
	pthread_mutex_unlock(&diag_lock);
}

void sb_edge_log(const char *level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(buf, sizeof(buf), "switchboard: %s: ", level);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(buf);
	buf[len++] = '\n';
	sb_edge_diag_write(buf, len);
}

/* stderr without waiting, for sb_edge_run; before any thread but this one
 * logs */
static void diag_open(void)
{
	int err;
	diag_mode = log_writer(2, false, &diag_fd, &err);
	if (diag_mode == SB_LOG_BLOCKING)
		sb_edge_log("warning",
			    "stderr cannot be written without waiting (%s): a reader that stops "
			    "reading holds up the diagnostics",
			    strerror(err));
}

/* How long the edge, about to exit, waits for its stderr reader to take
 * the count of the lines it dropped: the last lines of a stop are the
 * likeliest to meet a full terminal or socket, and with no line after them
 * to carry it, the count would go unsaid. Bounded: a reader that is gone
 * delays the exit this long once. */
#define DIAG_FINAL_WAIT_MS 1000

/* Back to fd 2, once every thread that logs has ended; first the count of
 * lines dropped since the last one written, if any (see above). */
static void diag_close(void)
{
	pthread_mutex_lock(&diag_lock);
	uint64_t lost = atomic_exchange(&diag_dropped, 0);
	if (lost) {
		char buf[128];
		size_t len = 0;
		if (diag_broken)
			buf[len++] = '\n';
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"switchboard: warning: %" PRIu64
					" diagnostic lines dropped (stderr not keeping up)\n",
					lost);
		(void)diag_out(buf, len, DIAG_FINAL_WAIT_MS, true);
	}
	if (diag_fd != 2)
		close(diag_fd);
	diag_fd = 2;
	diag_mode = SB_LOG_BLOCKING;
	pthread_mutex_unlock(&diag_lock);
}

void sb_edge_pidfile(const char *data_dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/switchboard.pid", data_dir);
}

/* ---- snapshots ---------------------------------------------------------- */

static void config_unref(sb_config *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; c->deps && i < c->model->ndeployments; i++)
		if (c->deps[i].upstream)
			atomic_fetch_sub(&c->deps[i].upstream->refs, 1);
	sb_route_free(c->routes);
	sb_model_free(c->model);
	sb_decl_free(c->decl);
	free(c->deps);
	sb_live_clear(&c->live);
	free(c->live_json);
	for (size_t i = 0; i < c->nprocs; i++) {
		for (size_t k = 0; k < c->procs[i].nenv; k++)
			free(c->procs[i].env[k]);
		free(c->procs[i].env);
	}
	free(c->procs);
	for (size_t i = 0; i < c->nfiles; i++) {
		free(c->files[i].path);
		free(c->files[i].data);
	}
	free(c->files);
	free(c);
}

/* The port of a deployment's process, stable for the server's life (so a
 * restarted process and the upstream registry agree). */
static size_t proc_port(sb_edge *e, const char *name, uint16_t *port);

void sb_snapshot_ref(sb_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void sb_snapshot_unref(sb_snapshot *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	config_unref(s->cfg);
	sb_tenants_free(s->tenants);
	sb_dns_free(s->dns);
	free(s);
}

/* Wake every serving thread whose loop still runs. A thread that has
 * exited (after a stop) has closed its loop, and libuv aborts on a send to
 * it; exited is set under snap_lock before the loop closes. */
static void wake_workers(sb_edge *e)
{
	uv_mutex_lock(&e->snap_lock);
	for (int i = 0; e->workers && i < e->nworkers; i++)
		if (!e->workers[i].exited)
			uv_async_send(&e->workers[i].wake);
	uv_mutex_unlock(&e->snap_lock);
}

/* Make s current and tell every serving thread. The upstreams the new
 * configuration uses are health-checked from now on (marked here, not when
 * it is built: a build that is never published changes nothing). */
/* The zones' serials as published, kept in <data_dir>/dns-serials with their
 * content hash: a restart continues from them instead of from the clock
 * (several changes in one second run a serial ahead of the clock, and a
 * secondary would take a lower serial after a restart as older). */
static void serials_path(const sb_edge *e, char *buf, size_t size)
{
	snprintf(buf, size, "%s/dns-serials", e->data_dir);
}

static void serials_record(sb_edge *e, const sb_dns_zones *dns)
{
	bool changed = false;
	for (size_t i = 0; i < sb_dns_zone_count(dns); i++) {
		const char *name = sb_dns_zone_name(dns, i);
		uint64_t h = sb_dns_content_hash(dns, i);
		uint32_t serial = sb_dns_zone_serial(dns, i);
		struct dns_serial *st = NULL;
		for (size_t k = 0; k < e->nserials; k++)
			if (strcmp(e->serials[k].zone, name) == 0)
				st = &e->serials[k];
		if (!st) {
			e->serials =
			    sb_xrealloc(e->serials, (e->nserials + 1) * sizeof(*e->serials));
			st = &e->serials[e->nserials++];
			st->zone = sb_xstrdup(name);
			st->hash = h + 1; /* differs: recorded below */
		}
		if (st->hash != h || st->serial != serial) {
			st->hash = h;
			st->serial = serial;
			changed = true;
		}
	}
	if (!changed)
		return;
	char path[4200], tmp[4300];
	serials_path(e, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "# switchboard: DNS serials as last published (zone serial hash)\n");
	for (size_t k = 0; k < e->nserials; k++)
		sb_buf_addf(&b, "%s %u %016llx\n", e->serials[k].zone, e->serials[k].serial,
			    (unsigned long long)e->serials[k].hash);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok || rename(tmp, path) < 0)
		sb_edge_log("warning", "cannot save the DNS serials to %s: %s", path,
			    strerror(errno));
	sb_buf_free(&b);
}

/* Each "zone serial hash" line of a dns-serials file at path, to fn (no
 * file, or an unreadable one: none). */
static void serials_each(const char *path, void (*fn)(void *, const char *, uint32_t, uint64_t),
			 void *ctx)
{
	char *text = NULL;
	size_t len = 0;
	sb_diag d;
	if (sb_file_read(path, &text, &len, &d) < 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char zone[256];
		unsigned serial;
		unsigned long long h;
		if (line[0] == '#' || sscanf(line, "%255s %u %llx", zone, &serial, &h) != 3)
			continue;
		fn(ctx, zone, (uint32_t)serial, (uint64_t)h);
	}
	free(text);
}

static void serial_keep(void *ctx, const char *zone, uint32_t serial, uint64_t h)
{
	sb_edge *e = ctx;
	e->serials = sb_xrealloc(e->serials, (e->nserials + 1) * sizeof(*e->serials));
	e->serials[e->nserials++] = (struct dns_serial){sb_xstrdup(zone), h, serial};
}

/* Read what serials_record saved (missing or unreadable: start from the
 * clock, as before there was a file). */
static void serials_load(sb_edge *e)
{
	char path[4200];
	serials_path(e, path, sizeof(path));
	serials_each(path, serial_keep, e);
}

struct serial_find {
	const char *zone;
	uint32_t serial;
	uint64_t hash;
	bool found;
};

static void serial_match(void *ctx, const char *zone, uint32_t serial, uint64_t h)
{
	struct serial_find *f = ctx;
	if (strcmp(zone, f->zone) == 0)
		*f = (struct serial_find){f->zone, serial, h, true};
}

int sb_edge_published_serial(const char *data_dir, const char *zone, uint32_t *serial,
			     uint64_t *hash)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/dns-serials", data_dir);
	struct serial_find f = {.zone = zone};
	serials_each(path, serial_match, &f);
	if (!f.found)
		return SB_ENOENT;
	*serial = f.serial;
	*hash = f.hash;
	return 0;
}

static void upstreams_sweep(sb_edge *e);

static void publish(sb_edge *e, sb_config *cfg, sb_tenants *tenants, sb_dns_zones *dns)
{
	if (dns)
		serials_record(e, dns);
	for (size_t i = 0; i < e->nups; i++)
		e->ups[i]->in_use = false;
	for (size_t i = 0; i < cfg->model->ndeployments; i++)
		if (cfg->deps[i].upstream)
			cfg->deps[i].upstream->in_use = true;
	sb_snapshot *s = sb_xcalloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	atomic_fetch_add(&cfg->refs, 1);
	s->cfg = cfg;
	s->tenants = tenants;
	s->dns = dns;
	uv_mutex_lock(&e->snap_lock);
	sb_snapshot *old = e->current;
	e->current = s;
	uv_mutex_unlock(&e->snap_lock);
	atomic_fetch_add(&e->seq, 1);
	wake_workers(e);
	sb_snapshot_unref(old);
	upstreams_sweep(e);
}

/* ---- upstream registry ------------------------------------------------- */

/* The registered upstream for url, made if there is none (*made then
 * true), with a reference taken for the configuration being built. */
static sb_upstream *upstream_get(sb_edge *e, const char *url, bool *made, sb_diag *d,
				 const char *file, int line, int col)
{
	if (made)
		*made = false;
	for (size_t i = 0; i < e->nups; i++)
		if (strcmp(e->ups[i]->url, url) == 0) {
			atomic_fetch_add(&e->ups[i]->refs, 1);
			return e->ups[i];
		}
	sb_url u;
	const char *why;
	struct sockaddr_storage addr;
	size_t addrlen;
	if (sb_url_resolve(url, &addr, &addrlen, &why) < 0 || sb_url_split(url, &u) < 0) {
		sb_diag_set(d, file, line, col, "upstream \"%s\": %s", url, why);
		return NULL;
	}
	sb_upstream *up = sb_xcalloc(1, sizeof(*up));
	up->url = sb_xstrdup(url);
	snprintf(up->hostport, sizeof(up->hostport), "%.*s%s%.*s", (int)u.host_len, u.host,
		 u.port_len ? ":" : "", (int)u.port_len, u.port);
	memcpy(&up->addr, &addr, addrlen);
	up->addrlen = (socklen_t)addrlen;
	atomic_init(&up->up, 1); /* optimistic until the first check says otherwise */
	atomic_init(&up->refs, 1);
	if (e->nups == e->capups) {
		e->capups = e->capups ? e->capups * 2 : 16;
		e->ups = sb_xrealloc(e->ups, e->capups * sizeof(*e->ups));
	}
	/* an index no live upstream has: no connection to a freed one is left
	 * in any thread's pool (each held a reference) */
	up->id = e->nfree_ids ? e->free_ids[--e->nfree_ids] : e->next_id++;
	e->ups[e->nups++] = up;
	if (made)
		*made = true;
	return up;
}

/*
 * Free the upstreams nothing refers to any more: no configuration (a
 * snapshot in flight holds its configuration), no connection, no health
 * check under way. Control thread only; a reference is only ever taken from
 * 0 here, by upstream_get, so 0 stays 0 while this runs.
 */
static void upstreams_sweep(sb_edge *e)
{
	for (size_t i = 0; i < e->nups;) {
		sb_upstream *up = e->ups[i];
		if (atomic_load(&up->refs) > 0 || up->checking) {
			i++;
			continue;
		}
		e->free_ids = sb_xrealloc(e->free_ids, (e->nfree_ids + 1) * sizeof(*e->free_ids));
		e->free_ids[e->nfree_ids++] = up->id;
		e->ups[i] = e->ups[--e->nups];
		free(up->url);
		free(up);
	}
}

/* ---- secrets ----------------------------------------------------------- */

/* Read (or create, 0600) a 32-byte key stored as 64 hex characters. */
static int key_file(const char *path, bool create, uint8_t key[32], sb_diag *d)
{
	char *text = NULL;
	size_t len = 0;
	sb_diag rd;
	int r = sb_file_read(path, &text, &len, &rd);
	if (r == SB_ENOENT && create) {
		uint8_t k[32];
		char hex[65];
		if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
			return sb_diag_setc(d, SB_EIO, path, 0, 0, "getrandom failed");
		sb_sign_hex(k, sizeof(k), hex, sizeof(hex));
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return sb_diag_setc(d, SB_EIO, path, 0, 0, "cannot create: %s",
					    strerror(errno));
		hex[64] = '\n';
		bool ok = write(fd, hex, 65) == 65;
		close(fd);
		if (!ok)
			return sb_diag_setc(d, SB_EIO, path, 0, 0, "cannot write the key");
		memcpy(key, k, 32);
		return 0;
	}
	if (r < 0) {
		if (d)
			*d = rd;
		return r;
	}
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		len--;
	r = sb_sign_unhex(text, len, key, 32) == 32 ? 0 : SB_EINVAL;
	free(text);
	if (r < 0)
		return sb_diag_set(d, path, 1, 1, "a key file holds 64 hexadecimal characters");
	return 0;
}

int sb_edge_load_master(const char *data_dir, uint8_t key[32], uint8_t prev[32], bool *has_prev,
			sb_diag *d)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/secret.key", data_dir);
	int r = key_file(path, true, key, d);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/secret.key.previous", data_dir);
	*has_prev = key_file(path, false, prev, NULL) == 0;
	return 0;
}

int sb_edge_deployment_secrets(const char *data_dir, const char *deployment, char *out, size_t size,
			       sb_diag *d)
{
	uint8_t key[32], prev[32], sec[SB_SIGN_MAC_LEN];
	bool has_prev;
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
		return sb_diag_setc(d, SB_EIO, data_dir, 0, 0, "cannot create: %s",
				    strerror(errno));
	int r = sb_edge_load_master(data_dir, key, prev, &has_prev, d);
	if (r < 0)
		return r;
	if (size < 2 * (2 * SB_SIGN_MAC_LEN + 1))
		return SB_ETOOLONG;
	sb_sign_derive_secret(key, 32, deployment, sec);
	sb_sign_hex(sec, SB_SIGN_MAC_LEN, out, size);
	if (has_prev) {
		size_t n = strlen(out);
		out[n++] = ',';
		sb_sign_derive_secret(prev, 32, deployment, sec);
		sb_sign_hex(sec, SB_SIGN_MAC_LEN, out + n, size - n);
	}
	return 0;
}

/* ---- configuration ----------------------------------------------------- */

struct decl_reader {
	sb_config *c;	       /* records every file read */
	const sb_config *from; /* reads from its files instead of the disk */
};

static int read_file(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	struct decl_reader *rd = ctx; /* NULL: just read */
	int r = SB_ENOENT;
	if (!rd || !rd->from) {
		r = sb_file_read(path, data, len, d);
	} else {
		for (size_t i = 0; i < rd->from->nfiles; i++)
			if (strcmp(rd->from->files[i].path, path) == 0) {
				const struct sb_cfg_file *f = &rd->from->files[i];
				*data = sb_xmalloc(f->len + 1);
				memcpy(*data, f->data, f->len);
				(*data)[f->len] = '\0';
				*len = f->len;
				r = 0;
				break;
			}
		if (r < 0) /* the same text names the same files: not expected */
			return sb_diag_setc(d, SB_ENOENT, path, 0, 0,
					    "not read when the declaration was loaded");
	}
	if (r < 0 || !rd)
		return r;
	sb_config *c = rd->c;
	c->files = sb_xrealloc(c->files, (c->nfiles + 1) * sizeof(*c->files));
	c->files[c->nfiles].path = sb_xstrdup(path);
	c->files[c->nfiles].data = sb_xmalloc(*len + 1);
	memcpy(c->files[c->nfiles].data, *data, *len);
	c->files[c->nfiles].data[*len] = '\0';
	c->files[c->nfiles++].len = *len;
	return 0;
}

/*
 * The configuration for the declaration plus a live state (copied: the
 * model points into it). The declaration and the master keys are read from
 * disk when from is NULL (a start or a reload), else taken from the
 * configuration from (a live change: it applies to what is served, not to
 * an edit that was never reloaded). Previews are served only when live:
 * the naming rule does not route a PR nobody created.
 */
static int config_build(sb_edge *e, const sb_config *from, const sb_live *live, int64_t version,
			sb_config **out, sb_diag *d)
{
	int r;
	sb_config *c = sb_xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	sb_live_copy(&c->live, live);
	c->live_json = sb_live_to_json(&c->live);
	c->version = version;
	struct decl_reader rd = {c, from};
	if ((r = sb_decl_load(e->config_path, read_file, &rd, &c->decl, d)) < 0 ||
	    (r = sb_dns_xfr_config_check(&c->decl->dns, c->decl->file, d)) < 0 ||
	    (r = sb_model_build_live(c->decl, &c->live, &c->model, d)) < 0)
		goto out;
	sb_route_options ro = {.preview_rule = false};
	if ((r = sb_route_compile(c->model, &ro, &c->routes, d)) < 0)
		goto out;
	if (from) {
		memcpy(c->master, from->master, sizeof(c->master));
		memcpy(c->prev_master, from->prev_master, sizeof(c->prev_master));
		c->has_prev = from->has_prev;
	} else if ((r = sb_edge_load_master(e->data_dir, c->master, c->prev_master, &c->has_prev,
					    d)) < 0) {
		goto out;
	}
	const sb_model *m = c->model;
	c->deps = sb_xcalloc(m->ndeployments + 1, sizeof(*c->deps));
	for (size_t i = 0; i < m->ndeployments; i++) {
		const sb_deployment *dp = &m->deployments[i];
		sb_dep_rt *rt = &c->deps[i];
		const sb_service_decl *sd = m->services[dp->service].decl;
		rt->max_body =
		    sd->max_body_bytes ? sd->max_body_bytes : c->decl->http.max_body_bytes;
		sb_sign_derive_secret(c->master, 32, dp->name, rt->secret);
		if (c->has_prev)
			sb_sign_derive_secret(c->prev_master, 32, dp->name, rt->prev_secret);
		if (dp->upstream && dp->upstream->url) {
			/* a deploy's upstream has no place in a file: name the deploy */
			char where[300];
			snprintf(where, sizeof(where), "deploy %s", dp->name);
			rt->upstream = upstream_get(e, dp->upstream->url, NULL, d,
						    dp->upstream->line ? c->decl->file : where,
						    dp->upstream->line, dp->upstream->col);
			if (!rt->upstream) {
				r = SB_EINVAL;
				goto out;
			}
		}
	}
	/* upstreams started by command: the process listens on PORT; it is
	 * routed to once its /health answers (marked down until then) */
	c->procs = sb_xcalloc(m->ndeployments + 1, sizeof(*c->procs));
	for (size_t i = 0; i < m->ndeployments; i++) {
		const sb_deployment *dp = &m->deployments[i];
		if (!dp->upstream || !dp->upstream->argv || !dp->nroutes || c->deps[i].upstream)
			continue;
		struct sb_cfg_proc *pc = &c->procs[c->nprocs++];
		pc->name = dp->name;
		pc->argv = (const char *const *)dp->upstream->argv;
		pc->argc = dp->upstream->argc;
		pc->pport = proc_port(e, dp->name, &pc->port);
		pc->env = sb_xcalloc(dp->nvars + 4, sizeof(char *));
		sb_buf kv;
		sb_buf_init(&kv);
		for (size_t k = 0; k < dp->nvars; k++) {
			if (!sb_var_key_ok(dp->vars[k].key))
				continue; /* checked where declared; never refuse every process */
			sb_buf_reset(&kv);
			sb_buf_addf(&kv, "%s=%s", dp->vars[k].key, dp->vars[k].value);
			pc->env[pc->nenv++] = sb_xstrdup(kv.data);
		}
		sb_buf_reset(&kv);
		sb_buf_addf(&kv, "SWITCHBOARD_DEPLOYMENT=%s", dp->name);
		pc->env[pc->nenv++] = sb_xstrdup(kv.data);
		/* the process verifies the edge's signature with its secret(s) */
		sb_buf_reset(&kv);
		sb_buf_adds(&kv, "SWITCHBOARD_SECRETS=");
		for (int k = 0; k < (c->has_prev ? 2 : 1); k++) {
			const uint8_t *sec = k ? c->deps[i].prev_secret : c->deps[i].secret;
			if (k)
				sb_buf_addc(&kv, ',');
			for (size_t b = 0; b < SB_SIGN_MAC_LEN; b++)
				sb_buf_addf(&kv, "%02x", sec[b]);
		}
		pc->env[pc->nenv++] = sb_xstrdup(kv.data);
		sb_buf_free(&kv);
		char url[64];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)pc->port);
		bool made;
		c->deps[i].upstream = upstream_get(e, url, &made, d, c->decl->file,
						   dp->upstream->line, dp->upstream->col);
		if (!c->deps[i].upstream) {
			r = SB_EINVAL;
			goto out;
		}
		pc->up = c->deps[i].upstream;
		if (made) {
			atomic_store(&pc->up->up, 0);
			pc->up->starting = true;
		}
	}
	c->generation = ++e->generation;
	r = 0;
out:
	if (r < 0) {
		config_unref(c);
		c = NULL;
	}
	*out = c;
	return r;
}

/* The tenant set: the registry's, or the static tenants alone when there is
 * no store. A registry that cannot be read is an error, so that the caller
 * keeps serving the tenants it has (or does not start) instead of dropping
 * every stored tenant. */
static int tenants_build(sb_edge *e, const sb_decl *decl, sb_tenants **out, sb_diag *d)
{
	*out = NULL;
	if (e->store) {
		int r = sb_store_tenants_load(e->store, decl, out, d);
		if (r < 0) {
			char buf[2048];
			sb_diag_format(d, buf, sizeof(buf));
			sb_diag_set(d, NULL, 0, 0, "tenant registry: %s", buf);
		}
		return r;
	}
	sb_tenants *t = sb_tenants_new(decl->nstatic_tenants);
	for (size_t i = 0; i < decl->nstatic_tenants; i++)
		sb_tenants_put(t, decl->static_tenants[i], strlen(decl->static_tenants[i]),
			       SB_TENANT_ACTIVE);
	*out = t;
	return 0;
}

static int collect_slug(void *ctx, const char *slug, size_t n)
{
	sb_buf *b = ctx;
	sb_buf_add(b, &slug, sizeof(slug));
	return 0;
}

/* Zone transfers and NOTIFY (src/dns/xfr.h), owned by the control loop. */
static sb_dns_xfr *edge_xfr(const sb_edge *e);

/*
 * The zones for a configuration and tenant set. A zone's serial advances
 * (RFC 1982, never below the current time) only when its content changed
 * since the last build.
 */
static int dns_build(sb_edge *e, const sb_config *cfg, const sb_tenants *t, sb_dns_zones **out,
		     sb_diag *d)
{
	int r;
	sb_buf slugs;
	*out = NULL;
	if (!e->dns_on)
		return 0;
	sb_buf_init(&slugs);
	sb_tenants_each(t, SB_TENANT_ACTIVE, collect_slug, &slugs);
	r = sb_dns_build_decl(cfg->decl, cfg->model, cfg->routes,
			      (const char *const *)(void *)slugs.data, slugs.len / sizeof(char *),
			      0, out, d);
	if (r < 0)
		goto out;
	/* serials follow what was published (publish() records it): a build
	 * that is abandoned leaves them as they were */
	uint32_t now = (uint32_t)(sb_edge_now_ms() / 1000);
	for (size_t i = 0; i < sb_dns_zone_count(*out); i++) {
		const char *name = sb_dns_zone_name(*out, i);
		uint64_t h = sb_dns_content_hash(*out, i);
		const struct dns_serial *st = NULL;
		for (size_t k = 0; k < e->nserials; k++)
			if (strcmp(e->serials[k].zone, name) == 0)
				st = &e->serials[k];
		uint32_t serial =
		    st && st->hash == h ? st->serial : sb_dns_serial_next(st ? st->serial : 0, now);
		sb_dns_zone_set_serial(*out, i, serial);
	}
	/* ---- zone transfers (src/dns/xfr.h): IXFR history from the published
	 * zones, [dns] keys and allow list for the serving threads, NOTIFY on a
	 * new serial */
	if ((r = sb_dns_xfr_attach(edge_xfr(e), &cfg->decl->dns, cfg->decl->file,
				   e->current ? e->current->dns : NULL, *out, d)) < 0) {
		sb_dns_free(*out);
		*out = NULL;
	}
out:
	sb_buf_free(&slugs);
	return r;
}

/* ---- control loop: signals, reload, polling, health checks ------------- */

typedef struct control {
	sb_edge *e;
	uv_loop_t loop;
	uv_signal_t sighup, sigterm, sigint, sigquit, sigusr1;
	uv_timer_t poll, health, drain;
	uv_async_t worker_done;
	atomic_int workers_done;
	bool draining;
	sb_dns_xfr *xfr;	/* zone transfers and NOTIFY (src/dns/xfr.h) */
	sb_admin *admin;	/* the admin API (src/admin/api.h) */
	sb_procs *procs;	/* upstreams started by command (src/http/procs.h) */
	uv_timer_t fast_health; /* checks starting processes every 100 ms */
	struct hcheck *checks;	/* health checks in flight (cancelled at a stop) */
	struct proc_port {
		char *name;
		uint16_t port;
		uint64_t sig; /* of the spec last applied (0: none yet) */
	} * pports;
	size_t npports;
	int64_t next_expiry_check;
	int64_t fd_checked_at; /* uv_now of the last open-file check */
	int64_t fd_warned_at;  /* of the last warning that the limit is reached */
	bool fd_full;	       /* the open-file limit was reached at the last check */
	uint64_t hc_skipped;   /* checks not made for want of a descriptor */
	int64_t hc_warned_at;  /* uv_now of the last warning about them */
} control;

static sb_dns_xfr *edge_xfr(const sb_edge *e)
{
	return ((const control *)e->ctl)->xfr;
}

/* Ports of processes started by command are taken from here up to the
 * kernel's ephemeral range (see proc_port). */
#define PROC_PORT_MIN 10000

/* The index of name's entry in ct->pports (created on first use), and
 * its port. */
static size_t proc_port(sb_edge *e, const char *name, uint16_t *out)
{
	control *ct = e->ctl;
	for (size_t i = 0; i < ct->npports; i++)
		if (strcmp(ct->pports[i].name, name) == 0) {
			*out = ct->pports[i].port;
			return i;
		}
	/* A port nobody holds now that none of our processes has, from below
	 * the kernel's ephemeral range: a port from that range (what a bind to
	 * 0 gives) is free for outgoing connections to take as their source
	 * while the process is down, and its restart then fails to bind (seen
	 * under load, with the edge's own upstream connections). A range the
	 * system set too low for that leaves the kernel's choice. */
	unsigned lo = 32768, hi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	uint16_t port = 0;
	for (int attempt = 0; attempt < 256 && !port; attempt++) {
		uint32_t rnd = 0;
		if (lo > PROC_PORT_MIN + 1000 && getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)attempt * 2654435761u;
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(0x7f000001)};
		if (lo > PROC_PORT_MIN + 1000 && attempt < 192)
			sa.sin_port = htons((uint16_t)(PROC_PORT_MIN + rnd % (lo - PROC_PORT_MIN)));
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
			port = ntohs(sa.sin_port);
		if (fd >= 0)
			close(fd);
		for (size_t i = 0; port && i < ct->npports; i++)
			if (ct->pports[i].port == port)
				port = 0;
	}
	ct->pports = sb_xrealloc(ct->pports, (ct->npports + 1) * sizeof(*ct->pports));
	ct->pports[ct->npports++] = (struct proc_port){sb_xstrdup(name), port, 0};
	*out = port;
	return ct->npports - 1;
}

static uint64_t spec_sig(const struct sb_cfg_proc *pc, const char *cwd)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over every string and a separator */
	for (size_t k = 0; k < pc->argc + pc->nenv + 1; k++) {
		const char *s = k < pc->argc		  ? pc->argv[k]
				: k < pc->argc + pc->nenv ? pc->env[k - pc->argc]
							  : cwd;
		for (; s && *s; s++)
			h = (h ^ (uint8_t)*s) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h | 1;
}

/* Make the running processes those of the published configuration. A
 * process restarted for a new command or environment is not routed to
 * until its /health answers again, like a new one. */
static void procs_apply(control *ct)
{
	const sb_config *c = ct->e->current->cfg;
	if (!ct->procs || ct->draining)
		return;
	for (size_t i = 0; i < c->nprocs; i++) {
		const struct sb_cfg_proc *pc = &c->procs[i];
		uint64_t sig = spec_sig(pc, c->decl->dir);
		struct proc_port *pp = &ct->pports[pc->pport];
		if (pp->sig && pp->sig != sig) {
			atomic_store(&pc->up->up, 0);
			pc->up->starting = true;
			pc->up->awaiting_spawn = true;
			pc->up->restarts++;
		}
		pp->sig = sig;
	}
	sb_proc_spec *specs = sb_xcalloc(c->nprocs + 1, sizeof(*specs));
	for (size_t i = 0; i < c->nprocs; i++)
		specs[i] = (sb_proc_spec){.name = c->procs[i].name,
					  .argv = c->procs[i].argv,
					  .argc = c->procs[i].argc,
					  .env = (const char *const *)c->procs[i].env,
					  .nenv = c->procs[i].nenv,
					  .cwd = c->decl->dir,
					  .port = c->procs[i].port};
	sb_diag d = {0};
	if (sb_procs_set(ct->procs, specs, c->nprocs, NULL, &d) < 0) {
		char buf[1024];
		sb_edge_log("error", "processes not updated: %s",
			    sb_diag_format(&d, buf, sizeof(buf)));
	}
	free(specs);
}

/* Reopen the access log file (after logrotate moved it): the new file takes
 * the same descriptor number with dup3(), which replaces it atomically, so
 * serving threads go on writing to e->access_fd unaware. On failure the old
 * file is kept. */
static void reopen_access_log(sb_edge *e)
{
	if (e->access_fd < 0 || strcmp(e->access_path, "-") == 0)
		return;
	/* a pipe or tty stays written without waiting (log_writer) */
	int flags =
	    e->access_mode == SB_LOG_NONBLOCK || e->access_mode == SB_LOG_PIPE ? O_NONBLOCK : 0;
	int fd = open(e->access_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags, 0644);
	int r = fd < 0 || dup3(fd, e->access_fd, O_CLOEXEC) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		sb_edge_log("error",
			    "cannot reopen access log %s: %s; still writing to the old file",
			    e->access_path, strerror(-r));
	else
		sb_edge_log("info", "reopened access log %s", e->access_path);
}

static void on_health(uv_timer_t *t);

static void hc_cancel_all(control *ct);

/* A warning of a reload: logged, and kept for the admin API's answer. */
static void reload_warn(json_t *warnings, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reload_warn(json_t *warnings, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_edge_log("warning", "%s", msg);
	if (warnings) {
		sb_utf8_clean(msg);
		json_array_append_new(warnings, json_string(msg));
	}
}

/*
 * Re-read the declaration and publish it. Returns 0, or a negative code
 * with d filled (logged too) when it does not load: the old snapshot keeps
 * serving. warnings (NULL: none kept) receives what takes effect only at
 * the next start.
 */
static int reload(control *ct, sb_diag *d, json_t *warnings)
{
	sb_edge *e = ct->e;
	reopen_access_log(e);
	sb_config *c = NULL;
	char buf[2048];
	sb_tenants *t = NULL;
	sb_dns_zones *dns = NULL;
	const sb_config *cur = e->current->cfg;
	uint32_t old_hi = cur->decl->http.health_interval_ms;
	int r;
	if ((r = config_build(e, NULL, &cur->live, cur->version, &c, d)) < 0 ||
	    (r = tenants_build(e, c->decl, &t, d)) < 0 || (r = dns_build(e, c, t, &dns, d)) < 0) {
		sb_edge_log("error", "reload failed, still serving the previous declaration: %s",
			    sb_diag_format(d, buf, sizeof(buf)));
		sb_tenants_free(t);
		config_unref(c);
		return r;
	}
	/* what the process was started with is kept: said, not silently, when
	 * the declaration now asks for something else than what is in effect
	 * (not when it asks again for what is, nor for what an option of
	 * serve set, which no declaration changes) */
	const sb_decl *nd = c->decl;
	const sb_edge_opts *o = &e->opts;
	struct {
		const char *what;
		bool changed;
	} fixed[] = {
	    {"data_dir", !o->data_dir && strcmp(e->data_dir, nd->data_dir) != 0},
	    {"[listen] http",
	     !o->listen &&
		 strcmp(e->listen_text, nd->listen_http ? nd->listen_http : "127.0.0.1:8080") != 0},
	    {"[listen] dns",
	     !o->listen_dns && strcmp(e->dns_text, nd->listen_dns ? nd->listen_dns : "") != 0},
	    {"[listen] admin",
	     strcmp(e->admin_text, nd->listen_admin ? nd->listen_admin : "") != 0}};
	publish(e, c, t, dns);
	procs_apply(ct);
	if (strcmp(c->decl->http.access_log, e->access_path) != 0)
		reload_warn(warnings,
			    "access_log changed to \"%s\": it takes effect at the next start",
			    c->decl->http.access_log);
	for (size_t i = 0; i < SB_ARRAY_LEN(fixed); i++)
		if (fixed[i].changed)
			reload_warn(warnings, "%s changed: it takes effect at the next start",
				    fixed[i].what);
	uint32_t hi = c->decl->http.health_interval_ms;
	if (hi != old_hi && !ct->draining) { /* applied now */
		uv_timer_stop(&ct->health);
		if (hi)
			uv_timer_start(&ct->health, on_health, hi, hi);
	}
	if (!hi && old_hi) {
		/* With checks off nothing would ever mark an upstream up again: one
		 * marked down would answer 503 for good. A process still starting
		 * keeps its fast checks (they only mark it up). */
		hc_cancel_all(ct);
		for (size_t i = 0; i < e->nups; i++) {
			sb_upstream *up = e->ups[i];
			if (up->starting)
				continue;
			/* checks turned on again count their runs afresh: one
			 * failure must not take out an upstream failed before */
			up->fails = up->passes = 0;
			if (!atomic_exchange(&up->up, 1))
				sb_edge_log("info", "upstream %s is up: health checks are off",
					    up->url);
		}
	}
	config_unref(c); /* the snapshot holds it now */
	sb_edge_log("info", "reloaded %s: %zu routes (generation %llu)", e->config_path,
		    sb_route_count(c->routes), (unsigned long long)c->generation);
	return 0;
}

static void on_drain_deadline(uv_timer_t *t);

/* A process that died is restarted: until its /health answers again it is
 * "starting" (503, checked every 100 ms), not a 502 for every request that
 * finds its port closed. */
/* The upstream of the process named name in the published configuration,
 * or NULL. */
static sb_upstream *proc_upstream(control *ct, const char *name)
{
	const sb_config *c = ct->e->current->cfg;
	for (size_t i = 0; i < c->nprocs; i++)
		if (strcmp(c->procs[i].name, name) == 0)
			return c->procs[i].up;
	return NULL;
}

static void proc_exited(void *arg, const char *name)
{
	sb_upstream *up = proc_upstream(arg, name);
	if (up) {
		atomic_store(&up->up, 0);
		up->starting = true;
	}
}

/* The new process of a name restarted for a change runs: its /health,
 * unlike the old one's, may mark it up. */
static void proc_spawned(void *arg, const char *name)
{
	sb_upstream *up = proc_upstream(arg, name);
	if (up)
		up->awaiting_spawn = false;
}

static void procs_stopped(void *arg)
{
	sb_edge_log("info", "every process started by command has exited");
}

/* End the drain now: every connection still open is closed. */
static void drain_end(control *ct, const char *why)
{
	sb_edge *e = ct->e;
	if (atomic_load(&e->force_close))
		return;
	uv_timer_stop(&ct->drain);
	sb_edge_log("warning", "%s: closing %ld connections", why, atomic_load(&e->nconns));
	atomic_store(&e->force_close, true);
	wake_workers(e);
}

static void begin_stop(control *ct, int signum)
{
	sb_edge *e = ct->e;
	if (ct->draining) {
		/* a second SIGTERM or SIGINT (an impatient operator, Ctrl-C twice)
		 * does not wait for the drain */
		drain_end(ct, signum == SIGINT	  ? "second SIGINT"
			      : signum == SIGQUIT ? "second SIGQUIT"
						  : "second SIGTERM");
		return;
	}
	ct->draining = true;
	atomic_store(&e->stopping, true);
	sb_admin_stop(ct->admin);
	ct->admin = NULL;
	uv_timer_stop(&ct->fast_health);
	/* a check of an upstream that accepts and never answers would hold the
	 * exit for up to health_timeout_ms */
	hc_cancel_all(ct);
	/* processes started by command are stopped once the serving threads
	 * are done (on_worker_done): requests in flight to them may finish */
	sb_edge_log("info",
		    "stopping: no new connections, %ld open, draining for up to %u ms (a second "
		    "signal ends the drain at once)",
		    atomic_load(&e->nconns), e->current->cfg->decl->http.drain_timeout_ms);
	uv_timer_stop(&ct->poll);
	uv_timer_stop(&ct->health);
	uv_timer_start(&ct->drain, on_drain_deadline, e->current->cfg->decl->http.drain_timeout_ms,
		       0);
	wake_workers(e);
}

static void on_drain_deadline(uv_timer_t *t)
{
	drain_end(t->data, "drain deadline");
}

static void on_signal(uv_signal_t *s, int signum)
{
	control *ct = s->data;
	if (signum == SIGHUP) {
		sb_diag d = {0};
		reload(ct, &d, NULL);
	} else if (signum == SIGUSR1) {
		reopen_access_log(ct->e);
	} else {
		begin_stop(ct, signum);
	}
}

static void close_cb_noop(uv_handle_t *h)
{
}

static void on_worker_done(uv_async_t *a)
{
	control *ct = a->data;
	if (atomic_load(&ct->workers_done) < ct->e->nworkers)
		return;
	if (ct->procs)
		sb_procs_stop(ct->procs, procs_stopped, ct);
	uv_close((uv_handle_t *)&ct->sighup, close_cb_noop);
	uv_close((uv_handle_t *)&ct->sigterm, close_cb_noop);
	uv_close((uv_handle_t *)&ct->sigint, close_cb_noop);
	uv_close((uv_handle_t *)&ct->sigquit, close_cb_noop);
	uv_close((uv_handle_t *)&ct->sigusr1, close_cb_noop);
	uv_close((uv_handle_t *)&ct->poll, close_cb_noop);
	uv_close((uv_handle_t *)&ct->health, close_cb_noop);
	uv_close((uv_handle_t *)&ct->fast_health, close_cb_noop);
	uv_close((uv_handle_t *)&ct->drain, close_cb_noop);
	uv_close((uv_handle_t *)&ct->worker_done, close_cb_noop);
	sb_dns_xfr_stop(ct->xfr);
}

/*
 * Bring the snapshot up to the store: the live state (deploys, previews,
 * rollbacks made by a CLI that found no server, or by another edge node
 * sharing the store) and the tenants. Returns 0, or a negative code with d
 * filled when the store's state could not be read or built (the old
 * snapshot keeps serving).
 */
static int sync_store(control *ct, sb_diag *d)
{
	sb_edge *e = ct->e;
	sb_live live = {0};
	int64_t version = 0;
	sb_config *c = e->current->cfg, *nc = NULL;
	int r = sb_ops_current(e->store, &live, &version, d);
	if (r < 0)
		goto out;
	char *json = sb_live_to_json(&live);
	bool state_changed = strcmp(json, c->live_json) != 0;
	free(json);
	if (state_changed) {
		if ((r = config_build(e, c, &live, version, &nc, d)) < 0)
			goto out;
		c = nc;
	}
	sb_tenants *tn = NULL;
	sb_dns_zones *dns = NULL;
	if ((r = tenants_build(e, c->decl, &tn, d)) < 0 || (r = dns_build(e, c, tn, &dns, d)) < 0) {
		sb_tenants_free(tn);
		goto out;
	}
	c->version = version;
	publish(e, c, tn, dns);
	procs_apply(ct);
	if (state_changed)
		sb_edge_log("info", "serving version %lld from the store: %zu routes",
			    (long long)version, sb_route_count(c->routes));
out:
	config_unref(nc);
	sb_live_clear(&live);
	return r;
}

static void run_op(control *ct, json_t *op, int *status, sb_buf *out);

/* The descriptors open in this process (/proc/self/fd), or -1 when they
 * cannot be counted: EMFILE or ENFILE in *err when that is for want of a
 * descriptor to read them with. */
static long count_fds(int *err)
{
	DIR *dir = opendir("/proc/self/fd");
	*err = dir ? 0 : errno;
	if (!dir)
		return -1;
	long n = 0;
	for (struct dirent *de; (de = readdir(dir));)
		n += de->d_name[0] != '.';
	closedir(dir);
	return n - 1; /* the directory's own */
}

/*
 * Once a second: are descriptors running out? At the open-file limit,
 * libuv's accept loop, while it holds a descriptor in reserve, accepts what
 * waits and closes it at once without a word to us (accept_failed hears
 * only of the failures it passes on), so the condition is watched here:
 * said when it begins, every 10 s while it lasts, and when it ends. "Out"
 * is fewer free than two per serving thread (libuv's reserve and a
 * paused listener's each come and go).
 */
static void fd_limit_check(control *ct)
{
	int64_t now = (int64_t)uv_now(&ct->loop);
	unsigned long long limit = nofile_limit();
	if (!limit || (ct->fd_checked_at && now - ct->fd_checked_at < 1000))
		return;
	ct->fd_checked_at = now;
	int err;
	long open = count_fds(&err);
	bool full = open < 0 ? err == EMFILE || err == ENFILE
			     : (unsigned long long)open + 2 * (unsigned)ct->e->nworkers + 2 > limit;
	if (full && (!ct->fd_full || now - ct->fd_warned_at >= 10000)) {
		char what[128];
		if (err == ENFILE)
			snprintf(what, sizeof(what),
				 "the system's open-file table is full (fs.file-max)");
		else
			snprintf(what, sizeof(what),
				 "open files: the limit (ulimit -n %llu) is reached", limit);
		sb_edge_log("warning",
			    "%s: new connections are closed or wait, requests that need a new "
			    "upstream connection fail; raise the limit (ulimit -n, systemd "
			    "LimitNOFILE=) or lower [http] max_connections (%ld connections open)",
			    what, atomic_load(&ct->e->nconns));
		ct->fd_warned_at = now;
	} else if (!full && ct->fd_full) {
		sb_edge_log("info",
			    "open files: below the limit (ulimit -n %llu) again (%ld connections "
			    "open)",
			    limit, atomic_load(&ct->e->nconns));
	}
	ct->fd_full = full;
}

/* Said at the start, as nginx says "worker_connections exceed open file
 * resource limit": a limit that max_connections idle clients alone would
 * reach, before max_connections is. */
static void fd_budget_check(sb_edge *e)
{
	unsigned long long limit = nofile_limit();
	uint32_t maxc = e->current->cfg->decl->http.max_connections;
	int err;
	long open = count_fds(&err);
	if (!limit || open < 0 || (unsigned long long)open + maxc <= limit)
		return;
	sb_edge_log("warning",
		    "max_connections (%u) is more than the open-file limit allows (ulimit -n "
		    "%llu, %ld open now): descriptors run out first, and then new connections "
		    "are refused and requests fail; raise the limit to %llu (a descriptor for "
		    "each client and one for its upstream: systemd LimitNOFILE=, ulimit -n) or "
		    "lower max_connections",
		    maxc, limit, open, (unsigned long long)open + 2ULL * maxc);
}

static void on_poll(uv_timer_t *t)
{
	control *ct = t->data;
	sb_edge *e = ct->e;
	bool changed = false;
	fd_limit_check(ct);
	/* upstreams of configurations the serving threads let go since */
	upstreams_sweep(e);
	if (!e->store)
		return;
	/* expired previews go once a second: paced on the loop's monotonic
	 * clock (a step of the wall clock an hour back paused the checks for an
	 * hour), compared with expiry times on the wall clock they are kept in */
	int64_t now = sb_edge_now_ms();
	int64_t mono = (int64_t)uv_now(&ct->loop);
	if (mono >= ct->next_expiry_check) {
		ct->next_expiry_check = mono + 1000;
		const sb_live *l = &e->current->cfg->live;
		bool due = false;
		for (size_t i = 0; i < l->npreviews; i++)
			due |= l->previews[i].expires_at && l->previews[i].expires_at * 1000 <= now;
		if (due) {
			int st;
			sb_buf out;
			sb_buf_init(&out);
			json_t *op = json_pack("{s:s,s:s}", "op", "expire", "cmdline",
					       "switchboard serve (preview ttl)");
			run_op(ct, op, &st, &out);
			if (st != 200) {
				/* e.g. a declaration on disk that does not load: say so
				 * once a minute, not every second */
				sb_edge_log("error",
					    "preview expiry failed, retrying in 60 s: %.*s",
					    (int)out.len, out.data);
				ct->next_expiry_check = mono + 60000;
			}
			json_decref(op);
			sb_buf_free(&out);
		}
	}
	if (sb_store_changed(e->store, &changed) < 0 || !changed)
		return;
	sb_diag d = {0};
	if (sync_store(ct, &d) < 0) {
		char buf[2048];
		sb_edge_log("error", "store change not applied, still serving the previous one: %s",
			    sb_diag_format(&d, buf, sizeof(buf)));
	}
}

/* ---- the admin API (src/admin/api.h, docs/admin.md) ----------------------- */

typedef struct prepared {
	control *ct;
	sb_config *cfg;
	sb_tenants *tenants;
	sb_dns_zones *dns;
} prepared;

/* Inside the op's transaction: build everything that will be published, so
 * that a change that cannot be served is never committed. */
static int op_prepare(void *ctx, const sb_live *next, sb_diag *d)
{
	prepared *p = ctx;
	sb_edge *e = p->ct->e;
	int r = config_build(e, e->current->cfg, next, 0, &p->cfg, d);
	if (r < 0)
		return r;
	/* inside the op's transaction the registry must read: a store error
	 * fails the op instead of publishing the static tenants alone */
	if ((r = sb_store_tenants_load(e->store, p->cfg->decl, &p->tenants, d)) < 0)
		return r;
	return dns_build(e, p->cfg, p->tenants, &p->dns, d);
}

static int http_status(int code)
{
	switch (code) {
	case SB_ENOENT: return 404;
	case SB_EEXIST: return 409;
	case SB_EIO: return 500;
	default: return 422;
	}
}

/* A JSON body into out; a document jansson cannot write (it cannot be
 * made from our own values, but an answer must still leave) becomes a
 * fixed error. */
static void json_out(sb_buf *out, int *status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!s) {
		*status = 500;
		sb_buf_adds(out, "{\"error\":\"the answer could not be written as JSON\"}\n");
		return;
	}
	sb_buf_adds(out, s);
	sb_buf_addc(out, '\n');
	free(s);
}

static void error_out(sb_buf *out, int *status, int code, const sb_diag *d)
{
	char buf[2048];
	/* a message cut at a byte count, or quoting a client's bytes, may not
	 * be UTF-8, which JSON strings must be */
	sb_diag_format(d, buf, sizeof(buf));
	sb_utf8_clean(buf);
	json_t *j = json_pack("{s:s,s:s}", "error", buf, "code", sb_strerror(code));
	*status = http_status(code);
	json_out(out, status, j);
	json_decref(j);
}

static void run_op(control *ct, json_t *op, int *status, sb_buf *out)
{
	sb_edge *e = ct->e;
	sb_diag d = {0};
	json_t *res = NULL;
	prepared p = {.ct = ct};
	/* checked against the declaration served, which op_prepare builds on
	 * too: an edit on disk is taken in by a reload only, and one that does
	 * not load stops no change (nor a preview's expiry) */
	sb_config *cur = e->current->cfg;
	atomic_fetch_add(&cur->refs, 1);
	const sb_decl *decl = cur->decl;
	int r = 0;
	/* the build inside the op touches the transfer state (history, NOTIFY):
	 * an op that fails after it must leave no trace there */
	sb_dns_xfr_mark *mark = r == 0 && e->dns_on ? sb_dns_xfr_mark_take(edge_xfr(e)) : NULL;
	if (r == 0)
		r = sb_ops_run(e->store, decl, op, op_prepare, &p, &res, &d);
	/* a dry run was built like the change, and committed nothing */
	bool committed = r == 0 && json_integer_value(json_object_get(res, "version")) > 0;
	if (!committed && p.dns)
		sb_dns_xfr_rewind(edge_xfr(e), mark);
	else
		sb_dns_xfr_mark_free(mark);
	if (r < 0) {
		error_out(out, status, r, &d);
		goto out;
	}
	if (p.cfg && committed) {
		/* committed: a test kills the server here to prove that a restart
		 * serves what was committed */
		const char *kill_hook = getenv("SWITCHBOARD_TEST_KILL_AFTER_COMMIT");
		if (kill_hook && *kill_hook == '1')
			raise(SIGKILL);
		p.cfg->version = json_integer_value(json_object_get(res, "version"));
		free(p.cfg->live_json);
		p.cfg->live_json = sb_live_to_json(&p.cfg->live);
		publish(e, p.cfg, p.tenants, p.dns);
		procs_apply(ct);
		p.tenants = NULL;
		p.dns = NULL;
		sb_edge_log("info", "version %lld: %s", (long long)p.cfg->version,
			    json_string_value(json_object_get(res, "summary")));
	}
	/* the store was written by this handle: the poll must not rebuild it
	 * (other processes' changes still show) */
	sb_store_forget_own_writes(e->store);
	*status = 200;
	json_out(out, status, res);
out:
	config_unref(cur);
	config_unref(p.cfg);
	sb_tenants_free(p.tenants);
	sb_dns_free(p.dns);
	json_decref(res);
}

static void admin_handler(void *ctx, const char *method, const char *target, const char *body,
			  size_t body_len, int *status, sb_buf *out)
{
	control *ct = ctx;
	sb_edge *e = ct->e;
	sb_diag d = {0};
	if (strcmp(target, "/v1/status") == 0 && strcmp(method, "GET") == 0) {
		const sb_snapshot *s = e->current;
		json_t *j = json_pack(
		    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "version", (json_int_t)s->cfg->version,
		    "generation", (json_int_t)s->cfg->generation, "routes",
		    (json_int_t)sb_route_count(s->cfg->routes), "tenants",
		    (json_int_t)sb_tenants_count(s->tenants), "pid", (json_int_t)getpid(),
		    "connections", (json_int_t)atomic_load(&e->nconns), "upstreams",
		    (json_int_t)e->nups);
		*status = 200;
		json_out(out, status, j);
		json_decref(j);
	} else if (strcmp(target, "/v1/ops") == 0 && strcmp(method, "POST") == 0) {
		json_error_t err;
		json_t *op = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &err);
		if (!json_is_object(op)) {
			sb_diag_setc(&d, SB_EINVAL, "request body", err.line, err.column,
				     "expected a JSON op object%s%s", op ? "" : ": ",
				     op ? "" : err.text);
			error_out(out, status, SB_EINVAL, &d);
		} else {
			run_op(ct, op, status, out);
		}
		json_decref(op);
	} else if (strcmp(target, "/v1/reload") == 0 && strcmp(method, "POST") == 0) {
		/* what SIGHUP does, with its outcome: `switchboard reload` says
		 * whether the server took the declaration (a signal cannot) */
		json_t *warnings = json_array();
		int r = reload(ct, &d, warnings);
		if (r < 0) {
			error_out(out, status, r, &d);
			*status = 422; /* whatever the cause, the declaration was refused */
		} else {
			const sb_config *c = e->current->cfg;
			json_t *j =
			    json_pack("{s:s,s:I,s:I,s:O}", "declaration", e->config_path, "routes",
				      (json_int_t)sb_route_count(c->routes), "generation",
				      (json_int_t)c->generation, "warnings", warnings);
			*status = 200;
			json_out(out, status, j);
			json_decref(j);
		}
		json_decref(warnings);
	} else if (strcmp(target, "/v1/sync") == 0 && strcmp(method, "POST") == 0) {
		/* a CLI wrote the store itself (tenants): serve it before answering;
		 * the change is taken as seen first, so a later one is not missed */
		bool changed;
		sb_store_changed(e->store, &changed);
		int r = sync_store(ct, &d);
		if (r < 0) {
			error_out(out, status, r, &d);
		} else {
			json_t *j =
			    json_pack("{s:I}", "version", (json_int_t)e->current->cfg->version);
			*status = 200;
			json_out(out, status, j);
			json_decref(j);
		}
	} else if ((strcmp(target, "/v1/versions") == 0 ||
		    strncmp(target, "/v1/versions?limit=", 19) == 0) &&
		   strcmp(method, "GET") == 0) {
		/* for the CLI reaching a server it cannot read the store of
		 * (SWITCHBOARD_ADMIN_URL): what `versions --json` shows */
		uint64_t limit = 0;
		json_t *arr = NULL;
		if (target[12] == '?' &&
		    sb_parse_u64(target + 19, strlen(target + 19), INT32_MAX, &limit) < 0) {
			sb_diag_setc(&d, SB_EINVAL, "", 0, 0, "limit \"%s\" is not a number",
				     target + 19);
			error_out(out, status, SB_EINVAL, &d);
		} else if (!(arr = sb_ops_versions_json(e->store, (int64_t)limit, &d))) {
			error_out(out, status, SB_EIO, &d);
		} else {
			*status = 200;
			json_out(out, status, arr);
		}
		json_decref(arr);
	} else if (strcmp(target, "/v1/previews") == 0 && strcmp(method, "GET") == 0) {
		const sb_config *c = e->current->cfg;
		json_t *arr = sb_ops_previews_json(&c->live, c->model);
		*status = 200;
		json_out(out, status, arr);
		json_decref(arr);
	} else {
		sb_diag_setc(&d, SB_ENOENT, "", 0, 0, "no endpoint %s %s", method, target);
		error_out(out, status, SB_ENOENT, &d);
	}
}

/* One active health check: connect, GET /health, read the status line. */
typedef struct hcheck {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_timer_t timer;
	control *ct;
	struct hcheck *prev, *next; /* ct->checks */
	sb_upstream *up;
	char req[512];
	char resp[64];
	size_t resp_len;
	unsigned restarts; /* up->restarts when the check began */
	bool done;
	int pending_closes;
} hcheck;

static void hc_free(uv_handle_t *h)
{
	hcheck *hc = h->data;
	if (--hc->pending_closes == 0)
		free(hc);
}

/* End a check: its verdict changes the upstream's state unless it was
 * cancelled (a stop, checks turned off), which leaves the state as it was. */
static void hc_end(hcheck *hc, bool cancelled, bool ok, const char *why)
{
	if (hc->done)
		return;
	hc->done = true;
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		hc->ct->checks = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	sb_upstream *up = hc->up;
	up->checking = false;
	/* [http] health_fails and health_passes: checks in a row that change
	 * the state, so that one slow answer does not take an upstream out (or
	 * one lucky answer bring a failing one back). A process just started
	 * was never up: its first answer marks it up. */
	const sb_http_decl *h = &hc->ct->e->current->cfg->decl->http;
	if (cancelled || hc->restarts != up->restarts) {
		/* nothing to change; or the answer of a process that a restart
		 * is replacing: it says nothing of the new one, and a 200 from
		 * the old one, while it drains, would route requests to a port
		 * about to close (502s) */
	} else if (ok) {
		up->fails = 0;
		up->passes++;
		if ((up->starting || up->passes >= (int)h->health_passes) &&
		    !atomic_exchange(&up->up, 1))
			sb_edge_log("info", "upstream %s is up", up->url);
		up->starting = false;
	} else {
		up->passes = 0;
		up->fails++;
		if (up->fails >= (int)h->health_fails && atomic_exchange(&up->up, 0)) {
			if (h->health_fails > 1)
				sb_edge_log("warning",
					    "upstream %s is down: %s (%d checks in a row)", up->url,
					    why, up->fails);
			else
				sb_edge_log("warning", "upstream %s is down: %s", up->url, why);
		}
	}
	uv_close((uv_handle_t *)&hc->tcp, hc_free);
	uv_close((uv_handle_t *)&hc->timer, hc_free);
}

static void hc_finish(hcheck *hc, bool ok, const char *why)
{
	hc_end(hc, false, ok, why);
}

/* Cancel every check in flight: a check waits up to health_timeout_ms for
 * an upstream that accepts and never answers, and a stop must not wait for
 * it (nor a check started before checks were turned off change a state). */
static void hc_cancel_all(control *ct)
{
	while (ct->checks)
		hc_end(ct->checks, true, false, NULL);
}

static void hc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	hcheck *hc = h->data;
	buf->base = hc->resp + hc->resp_len;
	buf->len = sizeof(hc->resp) - 1 - hc->resp_len;
}

static void hc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	hcheck *hc = s->data;
	if (n < 0) {
		hc_finish(hc, false,
			  n == UV_EOF ? "closed without a status line" : uv_strerror((int)n));
		return;
	}
	hc->resp_len += (size_t)n;
	hc->resp[hc->resp_len] = '\0';
	if (hc->resp_len < 12 && !memchr(hc->resp, '\n', hc->resp_len))
		return;
	int status = 0;
	const char *sc = hc->resp + 9;
	if (strncmp(hc->resp, "HTTP/1.", 7) == 0 && hc->resp_len >= 12 && sc[-1] == ' ' &&
	    sc[0] >= '1' && sc[0] <= '5' && sc[1] >= '0' && sc[1] <= '9' && sc[2] >= '0' &&
	    sc[2] <= '9')
		status = (sc[0] - '0') * 100 + (sc[1] - '0') * 10 + (sc[2] - '0');
	char why[96];
	if (status)
		snprintf(why, sizeof(why), "/health answered %d", status);
	else
		snprintf(why, sizeof(why), "/health did not answer with an HTTP/1.x status line");
	/* 2xx and 3xx, as HAProxy's httpchk, nginx's health_check and
	 * Kubernetes' probes have it: a redirect (to a login page, to
	 * "/health/") comes from a server that runs */
	hc_finish(hc, status >= 200 && status < 400, why);
}

static void hc_written(uv_write_t *w, int status)
{
	hcheck *hc = w->data;
	if (status < 0)
		hc_finish(hc, false, uv_strerror(status));
}

static void hc_connected(uv_connect_t *c, int status)
{
	hcheck *hc = c->data;
	if (status < 0) {
		hc_finish(hc, false, uv_strerror(status));
		return;
	}
	if (hc->done)
		return;
	uv_buf_t b = uv_buf_init(hc->req, (unsigned)strlen(hc->req));
	hc->wreq.data = hc;
	uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &b, 1, hc_written);
	uv_read_start((uv_stream_t *)&hc->tcp, hc_alloc, hc_read);
}

static void hc_timeout(uv_timer_t *t)
{
	hc_finish(t->data, false, "timed out");
}

static void health_round(control *ct, bool starting_only);

static void on_health(uv_timer_t *t)
{
	health_round(t->data, false);
}

/* Processes just started are checked every 100 ms, so that a preview with
 * a command upstream is routed as soon as it answers. */
static void on_fast_health(uv_timer_t *t)
{
	health_round(t->data, true);
}

/* A check that could not be made for want of a socket: the upstream keeps
 * its state, and stderr says so at most once a second. */
static void hc_not_made(control *ct, int err)
{
	int64_t now = (int64_t)uv_now(&ct->loop);
	ct->hc_skipped++;
	if (ct->hc_warned_at && now - ct->hc_warned_at < 1000)
		return;
	sb_edge_log("warning",
		    "health checks not made: %s (no socket to check with); %llu check(s) skipped "
		    "since the last such warning, upstreams keep their state",
		    uv_strerror(err), (unsigned long long)ct->hc_skipped);
	ct->hc_skipped = 0;
	ct->hc_warned_at = now ? now : 1;
}

static void health_round(control *ct, bool starting_only)
{
	sb_edge *e = ct->e;
	const sb_http_decl *h = &e->current->cfg->decl->http;
	for (size_t i = 0; i < e->nups; i++) {
		sb_upstream *up = e->ups[i];
		if (!up->in_use || up->checking || up->awaiting_spawn ||
		    (starting_only && !up->starting))
			continue;
		hcheck *hc = sb_xcalloc(1, sizeof(*hc));
		hc->up = up;
		hc->restarts = up->restarts;
		hc->ct = ct;
		hc->next = ct->checks;
		if (hc->next)
			hc->next->prev = hc;
		ct->checks = hc;
		up->checking = true;
		snprintf(hc->req, sizeof(hc->req),
			 "GET /health HTTP/1.1\r\nHost: %s\r\nUser-Agent: switchboard-health/%s\r\n"
			 "Connection: close\r\n\r\n",
			 up->hostport, SB_VERSION);
		uv_tcp_init(&ct->loop, &hc->tcp);
		uv_timer_init(&ct->loop, &hc->timer);
		hc->tcp.data = hc->timer.data = hc->creq.data = hc;
		hc->pending_closes = 2;
		uv_timer_start(&hc->timer, hc_timeout, h->health_timeout_ms, 0);
		int r =
		    uv_tcp_connect(&hc->creq, &hc->tcp, (struct sockaddr *)&up->addr, hc_connected);
		if (r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOBUFS || r == UV_ENOMEM) {
			/* the edge's own lack (no socket to check with) says
			 * nothing of the upstream: marked down, it would get 503s
			 * when the descriptors are back, until its next check */
			hc_end(hc, true, false, NULL);
			hc_not_made(ct, r);
		} else if (r < 0) {
			hc_finish(hc, false, uv_strerror(r));
		}
	}
}

/* ---- serving threads ---------------------------------------------------- */

static void dns_refresh(void *arg)
{
	sb_proxy_worker_refresh(arg);
}

/*
 * Accepting when a descriptor is lacking (EMFILE, ENFILE, ENOBUFS...):
 * libuv would try again at once for as long as it lasts, and the serving
 * thread would spin there, serving neither its connections (whose closes
 * would free descriptors) nor a stop. The listener is an sb_accept_guard
 * (src/common/accept.h): it pauses 100 ms at a time, the socket and its
 * listen queue kept.
 */
static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		sb_accept_guard_failed(&((sb_worker *)server->data)->listener, status);
	else
		sb_proxy_on_connection(server, status);
}

static void worker_wake_cb(uv_async_t *a)
{
	sb_proxy_worker_wake(a->data);
}

static void worker_main(void *arg)
{
	sb_worker *w = arg;
	control *ct = w->edge->ctl;
	uv_run(&w->loop, UV_RUN_DEFAULT);
	sb_proxy_worker_free(w);
	uv_mutex_lock(&w->edge->snap_lock);
	w->exited = true;
	uv_mutex_unlock(&w->edge->snap_lock);
	uv_loop_close(&w->loop);
	sb_snapshot_unref(w->snap);
	w->snap = NULL;
	atomic_fetch_add(&ct->workers_done, 1);
	uv_async_send(&ct->worker_done);
}

/* Parse "host:port" ("[::1]:8080", "127.0.0.1:0") into addr. */
static int parse_addr(sb_edge *e, const char *text, struct sockaddr_storage *addr, socklen_t *alen,
		      sb_diag *d)
{
	const char *colon = strrchr(text, ':');
	if (!colon)
		return sb_diag_set(d, e->config_path, 0, 0,
				   "listen address \"%s\" must be host:port", text);
	char host[128];
	size_t hl = (size_t)(colon - text);
	const char *h = text;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	uint64_t port;
	if (hl >= sizeof(host) || sb_parse_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0)
		return sb_diag_set(d, e->config_path, 0, 0,
				   "listen address \"%s\": bad host or port", text);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(addr, 0, sizeof(*addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
	if (uv_ip4_addr(host, (int)port, a4) == 0) {
		*alen = sizeof(*a4);
	} else if (uv_ip6_addr(host, (int)port, a6) == 0) {
		*alen = sizeof(*a6);
	} else {
		return sb_diag_set(d, e->config_path, 0, 0,
				   "listen address \"%s\": not an IPv4 or IPv6 address", text);
	}
	return 0;
}

/* One SO_REUSEPORT socket per serving thread: the kernel spreads
 * connections and datagrams, and no thread hands sockets to another. With
 * port 0, the first socket learns the port and every later one binds it. */
static int port_of(const struct sockaddr_storage *a)
{
	return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
					     : ((const struct sockaddr_in6 *)a)->sin6_port);
}

static void set_port(struct sockaddr_storage *a, int port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

/* A port nobody holds, chosen by the kernel for a socket without
 * SO_REUSEPORT; addr gets it. Returns 0, or SB_EIO with errno set. */
static int pick_port(struct sockaddr_storage *addr, socklen_t alen, int type)
{
	int fd = socket(addr->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return SB_EIO;
	socklen_t len = sizeof(*addr);
	int r = bind(fd, (struct sockaddr *)addr, alen) == 0 &&
			getsockname(fd, (struct sockaddr *)addr, &len) == 0
		    ? 0
		    : SB_EIO;
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* Why a bind failed, with what to do about it. */
static void bind_error(sb_diag *d, const char *where, const char *text, int type,
		       const struct sockaddr_storage *addr, int err)
{
	char hint[256] = "";
	int port = port_of(addr);
	if (err == EADDRINUSE)
		snprintf(hint, sizeof(hint),
			 "; another process holds it (ss -lnp%s 'sport = :%d' names it)",
			 type == SOCK_DGRAM ? "u" : "t", port);
	else if (err == EACCES)
		snprintf(hint, sizeof(hint),
			 "; a port below net.ipv4.ip_unprivileged_port_start (1024 by default) "
			 "takes root or CAP_NET_BIND_SERVICE (systemd: "
			 "AmbientCapabilities=CAP_NET_BIND_SERVICE)");
	else if (err == EADDRNOTAVAIL)
		snprintf(hint, sizeof(hint), "; no interface of this host has that address");
	sb_diag_setc(d, SB_EIO, where, 0, 0, "cannot listen on %s (%s): %s%s", text,
		     type == SOCK_DGRAM ? "udp" : "tcp", strerror(err), hint);
}

/*
 * Is a port that was given (not 0) free? A socket without SO_REUSEPORT
 * cannot bind a port another socket holds, while ours, which have it,
 * would join the group of a socket of the same user that has it too
 * (another switchboard, on another data directory) and take part of its
 * connections or queries, without a word on either side. SO_REUSEADDR on
 * a TCP probe: connections of a previous run in TIME_WAIT do not count.
 * Returns 0, or SB_EIO with d filled.
 */
static int port_free(sb_edge *e, int type, const struct sockaddr_storage *addr, socklen_t alen,
		     const char *where, const char *text, sb_diag *d)
{
	int fd = socket(addr->ss_family, type | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "socket: %s", strerror(errno));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int r = bind(fd, (const struct sockaddr *)addr, alen) == 0 ? 0 : errno;
	close(fd);
	if (r) {
		bind_error(d, where, text, type, addr, r);
		errno = r;
		return SB_EIO;
	}
	return 0;
}

static int bound_socket(sb_edge *e, int type, struct sockaddr_storage *addr, socklen_t alen,
			const char *where, const char *text, sb_diag *d)
{
	int fd = socket(addr->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)addr, alen) < 0) {
		int err = errno;
		close(fd);
		bind_error(d, where, text, type, addr, err);
		errno = err;
		return SB_EIO;
	}
	socklen_t len = sizeof(*addr);
	getsockname(fd, (struct sockaddr *)addr, &len);
	return fd;
}

/*
 * Connections and datagrams go to our own sockets of a SO_REUSEPORT group
 * only. A process of the same user that binds the port later with
 * SO_REUSEPORT joins the group (the kernel lets it) and would take its share
 * of the connections or queries without a word on either side: an nginx
 * whose configuration names our port, say. Our n sockets are the group's
 * first n (port_free and pick_port saw nobody else there), so a classic BPF
 * program that picks one of the first n at random never picks a later one.
 * Best effort: where it cannot be attached, the kernel's hash as before,
 * and a warning.
 */
static void steer_to_own(int fd, int n, const char *text, const char *proto)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM)),
	    BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)n),
	    BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = {.len = SB_ARRAY_LEN(code), .filter = code};
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
		sb_edge_log("warning",
			    "%s (%s): cannot keep another process that joins the port with "
			    "SO_REUSEPORT from taking part of its traffic: %s",
			    text, proto, strerror(errno));
}

static void format_addr(const struct sockaddr_storage *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
		uv_ip4_name(a4, ip, sizeof(ip));
		port = ntohs(a4->sin_port);
		snprintf(buf, size, "%s:%d", ip, port);
	} else {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
		uv_ip6_name(a6, ip, sizeof(ip));
		port = ntohs(a6->sin6_port);
		snprintf(buf, size, "[%s]:%d", ip, port);
	}
}

static int write_pidfile(sb_edge *e)
{
	char path[4200], pid[32];
	sb_edge_pidfile(e->data_dir, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return SB_EIO;
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	bool ok = write(fd, pid, (size_t)n) == n;
	close(fd);
	return ok ? 0 : SB_EIO;
}

int sb_edge_run(const sb_edge_opts *opts, sb_diag *d)
{
	int r = 0;
	sb_edge *e = sb_xcalloc(1, sizeof(*e));
	control *ct = sb_xcalloc(1, sizeof(*ct));
	sb_config *cfg = NULL;
	int *fds = NULL, lock_fd = -1;
	e->opts = *opts;
	e->ctl = ct;
	e->access_fd = -1;
	e->started_ms = sb_edge_mono_ms();
	ct->e = e;
	ct->xfr = sb_dns_xfr_new(sb_edge_log);
	snprintf(e->config_path, sizeof(e->config_path), "%s", opts->config);
	uv_mutex_init(&e->snap_lock);
	{
		/* a flush that may cut a line must not wait for ever behind
		 * the others' shared ones */
		pthread_rwlockattr_t a;
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&e->access_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	e->access_owner = -1;
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit (ulimit -f) reached by the access log fails its
	 * write (EFBIG, counted and reported) instead of killing the edge */
	signal(SIGXFSZ, SIG_IGN);
	diag_open();

	/* the data directory comes from the declaration unless overridden */
	{
		sb_decl *decl = NULL;
		if ((r = sb_decl_load(e->config_path, read_file, NULL, &decl, d)) < 0)
			goto out;
		snprintf(e->data_dir, sizeof(e->data_dir), "%s",
			 opts->data_dir ? opts->data_dir : decl->data_dir);
		sb_decl_free(decl);
	}
	if (mkdir(e->data_dir, 0700) < 0 && errno != EEXIST) {
		r = sb_diag_setc(d, SB_EIO, e->data_dir, 0, 0, "cannot create data directory: %s",
				 strerror(errno));
		goto out;
	}
	/* one server per data directory, decided before anything is bound or
	 * written: a second one started by mistake would share the first's
	 * SO_REUSEPORT sockets (and take some of its queries and connections)
	 * and write its serials while it found out */
	if ((r = sb_admin_lock(e->data_dir, &lock_fd, d)) < 0)
		goto out;
	{
		sb_store *st = NULL;
		if ((r = sb_store_open(e->data_dir, &st, d)) < 0)
			goto out;
		e->store = st;
		bool changed;
		sb_store_changed(st, &changed); /* set the baseline */
	}
	{
		/* what the store last committed is what we serve, even when the
		 * previous server died right after the commit */
		sb_live live = {0};
		int64_t version = 0;
		if ((r = sb_ops_current(e->store, &live, &version, d)) == 0)
			r = config_build(e, NULL, &live, version, &cfg, d);
		sb_live_clear(&live);
		if (r < 0)
			goto out;
	}
	const sb_decl *decl = cfg->decl;
	const char *listen_text = opts->listen	      ? opts->listen
				  : decl->listen_http ? decl->listen_http
						      : "127.0.0.1:8080";
	snprintf(e->listen_text, sizeof(e->listen_text), "%s", listen_text);
	if ((r = parse_addr(e, listen_text, &e->listen_addr, &e->listen_len, d)) < 0)
		goto out;
	if (decl->listen_dns || opts->listen_dns) {
		const char *dt = opts->listen_dns ? opts->listen_dns : decl->listen_dns;
		snprintf(e->dns_text, sizeof(e->dns_text), "%s", dt);
		if ((r = parse_addr(e, dt, &e->dns_addr, &e->dns_len, d)) < 0)
			goto out;
		e->dns_on = true;
		serials_load(e);
	}
	if ((size_t)snprintf(e->access_path, sizeof(e->access_path), "%s", decl->http.access_log) >=
	    sizeof(e->access_path)) {
		r = sb_diag_setc(d, SB_EINVAL, e->config_path, 0, 0,
				 "http.access_log: the path is longer than %zu bytes",
				 sizeof(e->access_path) - 1);
		goto out;
	}
	bool access_stdout = strcmp(decl->http.access_log, "-") == 0;
	if (strcmp(decl->http.access_log, "off") == 0)
		e->access_fd = -1;
	else if (access_stdout)
		e->access_fd = 1;
	else if ((e->access_fd = open(decl->http.access_log,
				      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
		r = sb_diag_setc(d, SB_EIO, decl->http.access_log, 0, 0,
				 "cannot open access log: %s", strerror(errno));
		goto out;
	}
	if (e->access_fd >= 0) {
		/* a pipe, a tty, a socket: written without waiting for its
		 * reader, so that one that stalls cannot stall serving */
		int err;
		e->access_mode = log_writer(e->access_fd, !access_stdout, &e->access_fd, &err);
		if (e->access_mode == SB_LOG_BLOCKING)
			sb_edge_log("warning",
				    "access log %s cannot be written without waiting (%s): a "
				    "reader that stops reading stops the serving threads",
				    access_stdout ? "(stdout)" : decl->http.access_log,
				    strerror(err));
	}

	e->nworkers = opts->threads > 0	   ? opts->threads
		      : decl->http.threads ? (int)decl->http.threads
					   : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (e->nworkers < 1)
		e->nworkers = 1;
	/* per thread: HTTP, DNS over UDP, DNS over TCP */
	fds = sb_xcalloc((size_t)e->nworkers * 3, sizeof(int));
	for (int i = 0; i < e->nworkers * 3; i++)
		fds[i] = -1;
	/* Port 0 asks for a free port. Sockets with SO_REUSEPORT may be given
	 * a port another socket of the same user holds (and would then share
	 * its traffic), so the port is first chosen by a socket without it;
	 * another process can still take it before our binds, or the DNS TCP
	 * port may be taken: then every socket is closed and the choice made
	 * again, a few times. */
	bool http_any = port_of(&e->listen_addr) == 0,
	     dns_any = e->dns_on && port_of(&e->dns_addr) == 0;
	/* an address that an option gave is blamed on the option */
	const char *http_where = opts->listen ? "--listen" : e->config_path,
		   *dns_where = opts->listen_dns ? "--dns" : e->config_path;
	if ((!http_any && (r = port_free(e, SOCK_STREAM, &e->listen_addr, e->listen_len, http_where,
					 e->listen_text, d)) < 0) ||
	    (e->dns_on && !dns_any &&
	     ((r = port_free(e, SOCK_DGRAM, &e->dns_addr, e->dns_len, dns_where, e->dns_text, d)) <
		  0 ||
	      (r = port_free(e, SOCK_STREAM, &e->dns_addr, e->dns_len, dns_where, e->dns_text, d)) <
		  0)))
		goto out;
	for (int attempt = 0;; attempt++) {
		errno = 0;
		r = 0;
		/* a failure is said (an address no interface has: it was an
		 * empty "switchboard: ") */
		if (http_any && (r = pick_port(&e->listen_addr, e->listen_len, SOCK_STREAM)) < 0) {
			int err = errno;
			bind_error(d, http_where, e->listen_text, SOCK_STREAM, &e->listen_addr,
				   err);
			errno = err;
		}
		if (r == 0 && dns_any &&
		    (r = pick_port(&e->dns_addr, e->dns_len, SOCK_DGRAM)) < 0) {
			int err = errno;
			bind_error(d, dns_where, e->dns_text, SOCK_DGRAM, &e->dns_addr, err);
			errno = err;
		}
		if (r == 0 && dns_any) /* the UDP port chosen, free for TCP too? */
			r = port_free(e, SOCK_STREAM, &e->dns_addr, e->dns_len, dns_where,
				      e->dns_text, d);
		for (int i = 0; r == 0 && i < e->nworkers; i++) {
			if ((fds[3 * i] =
				 bound_socket(e, SOCK_STREAM, &e->listen_addr, e->listen_len,
					      http_where, e->listen_text, d)) < 0) {
				r = fds[3 * i];
				fds[3 * i] = -1;
				break;
			}
			if (!e->dns_on)
				continue;
			if ((fds[3 * i + 1] = bound_socket(e, SOCK_DGRAM, &e->dns_addr, e->dns_len,
							   dns_where, e->dns_text, d)) < 0 ||
			    (fds[3 * i + 2] = bound_socket(e, SOCK_STREAM, &e->dns_addr, e->dns_len,
							   dns_where, e->dns_text, d)) < 0) {
				r = SB_EIO;
				break;
			}
		}
		if (r == 0)
			break;
		bool again = errno == EADDRINUSE && (http_any || dns_any) && attempt < 20;
		for (int i = 0; i < e->nworkers * 3; i++)
			if (fds[i] >= 0) {
				close(fds[i]);
				fds[i] = -1;
			}
		if (!again)
			goto out;
		if (http_any)
			set_port(&e->listen_addr, 0);
		if (dns_any)
			set_port(&e->dns_addr, 0);
	}
	format_addr(&e->listen_addr, e->listen_text, sizeof(e->listen_text));
	if (e->dns_on)
		format_addr(&e->dns_addr, e->dns_text, sizeof(e->dns_text));
	for (int k = 0; k < (e->dns_on ? 3 : 1); k++)
		steer_to_own(fds[k], e->nworkers, k == 0 ? e->listen_text : e->dns_text,
			     k == 1 ? "udp" : "tcp");

	{
		sb_tenants *t = NULL;
		sb_dns_zones *dns = NULL;
		if ((r = tenants_build(e, decl, &t, d)) < 0 ||
		    (r = dns_build(e, cfg, t, &dns, d)) < 0) {
			sb_tenants_free(t);
			goto out;
		}
		publish(e, cfg, t, dns);
	}
	config_unref(cfg);
	cfg = NULL;

	uv_loop_init(&ct->loop);
	snprintf(e->admin_text, sizeof(e->admin_text), "%s",
		 e->current->cfg->decl->listen_admin ? e->current->cfg->decl->listen_admin : "");
	r = sb_admin_start(&ct->loop, e->data_dir, e->current->cfg->decl->listen_admin, true,
			   admin_handler, ct, &ct->admin, d);
	if (r == SB_ETOOLONG) {
		/* the CLI cannot reach us either: it writes the store, and the
		 * store poll serves the change within STORE_POLL_MS */
		char buf[1024];
		sb_edge_log("warning", "no admin API: %s", sb_diag_format(d, buf, sizeof(buf)));
		ct->admin = NULL;
		r = 0;
	}
	if (r == 0)
		sb_admin_set_log(ct->admin, sb_edge_log);
	char admin_at[128];
	if (r == 0 && sb_admin_tcp_address(ct->admin, admin_at, sizeof(admin_at)) == 0)
		sb_edge_log("info", "admin API on http://%s", admin_at);
	if (r < 0) {
		uv_run(&ct->loop, UV_RUN_DEFAULT); /* the failed listeners' closes */
		uv_loop_close(&ct->loop);
		goto out;
	}
	uv_signal_init(&ct->loop, &ct->sighup);
	uv_signal_init(&ct->loop, &ct->sigterm);
	uv_signal_init(&ct->loop, &ct->sigint);
	uv_signal_init(&ct->loop, &ct->sigquit);
	uv_signal_init(&ct->loop, &ct->sigusr1);
	uv_timer_init(&ct->loop, &ct->poll);
	uv_timer_init(&ct->loop, &ct->health);
	uv_timer_init(&ct->loop, &ct->fast_health);
	ct->fast_health.data = ct;
	uv_timer_start(&ct->fast_health, on_fast_health, 100, 100);
	uv_timer_init(&ct->loop, &ct->drain);
	uv_async_init(&ct->loop, &ct->worker_done, on_worker_done);
	sb_dns_xfr_start(ct->xfr, &ct->loop); /* NOTIFY queued by the first build go now */

	ct->sighup.data = ct->sigterm.data = ct->sigint.data = ct->sigquit.data = ct;
	ct->sigusr1.data = ct;
	ct->poll.data = ct->health.data = ct->drain.data = ct->worker_done.data = ct;
	uv_signal_start(&ct->sighup, on_signal, SIGHUP);
	uv_signal_start(&ct->sigterm, on_signal, SIGTERM);
	uv_signal_start(&ct->sigint, on_signal, SIGINT);
	/* nginx's graceful stop: not a core dump that cuts every request */
	uv_signal_start(&ct->sigquit, on_signal, SIGQUIT);
	uv_signal_start(&ct->sigusr1, on_signal, SIGUSR1);
	sb_edge_signals(false); /* one that came while starting is handled now */
	uv_timer_start(&ct->poll, on_poll, STORE_POLL_MS, STORE_POLL_MS);
	uint32_t hi = e->current->cfg->decl->http.health_interval_ms;
	if (hi)
		uv_timer_start(&ct->health, on_health, 0, hi);
	/* the drain timer's callback is set when a stop begins */
	ct->drain.data = ct;

	e->workers = sb_xcalloc((size_t)e->nworkers, sizeof(sb_worker));
	for (int i = 0; i < e->nworkers; i++)
		e->workers[i].listener.spare = -1; /* closed at out when taken */
	for (int i = 0; i < e->nworkers; i++) {
		sb_worker *w = &e->workers[i];
		w->edge = e;
		w->id = i;
		uv_loop_init(&w->loop);
		uv_async_init(&w->loop, &w->wake, worker_wake_cb);
		w->wake.data = w;
		uv_tcp_init(&w->loop, &w->listener.l.tcp);
		w->listener.l.tcp.data = w;
		uv_tcp_open(&w->listener.l.tcp, fds[3 * i]);
		fds[3 * i] = -1;
		sb_accept_guard_init(&w->listener, &w->loop);
		char what[64];
		snprintf(what, sizeof(what), "connections on thread %d", i);
		sb_accept_guard_set_log(&w->listener, sb_edge_log, what);
		if (e->dns_on) {
			if ((r = sb_dns_io_start(&w->loop, fds[3 * i + 1], fds[3 * i + 2], &w->dns,
						 &w->dnsio)) < 0) {
				r = sb_diag_setc(d, SB_EIO, e->config_path, 0, 0, "dns: %s",
						 uv_strerror(r));
				goto out;
			}
			fds[3 * i + 1] = fds[3 * i + 2] = -1;
			sb_dns_io_set_refresh(w->dnsio, dns_refresh, w);
			sb_dns_io_set_log(w->dnsio, sb_edge_log, i);
		}
		if ((r = sb_accept_guard_listen(&w->listener, 4096, on_connection)) < 0) {
			r = sb_diag_setc(d, SB_EIO, e->config_path, 0, 0, "listen: %s",
					 uv_strerror(r));
			goto out; /* before any thread runs: nothing to join */
		}
		uint64_t seed[2];
		if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
			seed[0] = (uint64_t)sb_edge_now_ms() ^ (uint64_t)i,
			seed[1] = 0x9e3779b97f4a7c15ULL;
		w->rng[0] = seed[0] | 1;
		w->rng[1] = seed[1] | 2;
		sb_proxy_worker_start(w);
		sb_buf_init(&w->scratch);
	}
	write_pidfile(e);
	for (int i = 0; i < e->nworkers; i++) {
		sb_proxy_worker_wake(&e->workers[i]); /* take the first snapshot */
		uv_thread_create(&e->workers[i].thread, worker_main, &e->workers[i]);
	}
	if (e->dns_on)
		sb_edge_log("info", "dns on udp+tcp %s, %zu zones", e->dns_text,
			    sb_dns_zone_count(e->current->dns));
	fd_budget_check(e);
	sb_edge_log("info", "listening on http://%s with %d threads, %zu routes (declaration %s)",
		    e->listen_text, e->nworkers, sb_route_count(e->current->cfg->routes),
		    e->config_path);

	/* the processes of command upstreams, once nothing can fail anymore */
	ct->procs = sb_procs_new(&ct->loop, &(sb_procs_opts){.log = sb_edge_log,
							     .on_exit = proc_exited,
							     .on_spawn = proc_spawned,
							     .ctx = ct});
	procs_apply(ct);
	uv_run(&ct->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < e->nworkers; i++)
		uv_thread_join(&e->workers[i].thread);
	uv_loop_close(&ct->loop);
	{
		char path[4200];
		sb_edge_pidfile(e->data_dir, path, sizeof(path));
		unlink(path);
	}
	sb_edge_log("info", "stopped");
	r = 0;
out:
	diag_close();
	for (int i = 0; fds && i < e->nworkers * 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	/* a failed start: no thread ran, so no stop closed the spares */
	for (int i = 0; e->workers && i < e->nworkers; i++)
		if (e->workers[i].listener.spare >= 0)
			close(e->workers[i].listener.spare);
	if (lock_fd >= 0)
		close(lock_fd); /* the lock goes with it */
	config_unref(cfg);
	sb_snapshot_unref(e->current);
	if (e->store)
		sb_store_close(e->store);
	for (size_t i = 0; i < e->nups; i++) {
		free(e->ups[i]->url);
		free(e->ups[i]);
	}
	free(e->ups);
	free(e->free_ids);
	for (size_t i = 0; i < e->nserials; i++)
		free(e->serials[i].zone);
	free(e->serials);
	if (e->workers)
		for (int i = 0; i < e->nworkers; i++)
			sb_buf_free(&e->workers[i].logq), sb_buf_free(&e->workers[i].scratch);
	free(e->workers);
	if (e->access_fd > 2)
		close(e->access_fd);
	uv_mutex_destroy(&e->snap_lock);
	pthread_rwlock_destroy(&e->access_lock);
	sb_dns_xfr_free(ct->xfr);
	sb_procs_free(ct->procs);
	for (size_t i = 0; i < ct->npports; i++)
		free(ct->pports[i].name);
	free(ct->pports);
	free(ct);
	free(e);
	return r;
}
