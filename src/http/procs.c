/*
 * Upstreams started by command: one child process per name, restarted with
 * backoff, stopped with SIGTERM then SIGKILL. See procs.h.
 *
 * Life of a name (struct proc). Its uv_timer_t lives as long as the name;
 * its uv_process_t lives from one spawn to the close that follows the exit
 * (libuv requires closing a process handle even when uv_spawn failed, and a
 * handle cannot be reused before it is closed):
 *
 *   WAIT ──timer──▶ spawn ──ok──▶ RUN ──exit──▶ REAP ──close──▶ WAIT
 *                       └─fail──────────────────▶ REAP
 *   RUN ──stop/change──▶ TERM (SIGTERM, grace timer → SIGKILL) ──exit──▶ REAP
 *
 * After REAP: a removed name closes its timer and is freed in that close
 * callback; a changed name is spawned again at once; otherwise the name waits
 * for its backoff in WAIT.
 */
#include "http/procs.h"
#include "http/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEF_BACKOFF_MIN_MS 100
#define DEF_BACKOFF_MAX_MS 30000
#define DEF_STABLE_MS 10000
#define DEF_GRACE_MS 5000
#define PORT_TRIES 64

enum pstate { P_WAIT, P_RUN, P_TERM, P_REAP };

typedef struct proc {
	struct sb_procs *owner;
	struct proc *next;
	char *name;
	char **argv; /* NULL-terminated, for uv_spawn */
	size_t argc;
	char **env;
	size_t nenv;
	char *cwd;
	uint16_t port;
	enum pstate state;
	bool removed;	  /* stop and forget once the process is gone */
	bool restart_now; /* spec changed: spawn again right after the exit */
	bool closing;	  /* timer closing: the name is gone, only memory is left */
	uv_timer_t timer; /* WAIT: backoff; TERM: grace period */
	uv_process_t process;
	int pid;
	uint64_t started_ms;
	uint32_t delay_ms; /* next backoff */
	unsigned starts, failures;
} proc;

/*
 * The output of one spawn: the read end of the pipe that is the child's
 * stdout and stderr. Each line is written to the edge's stderr as
 * "NAME[PID]: LINE", with control bytes as \xNN, so that a child can
 * neither forge an edge line ("switchboard: LEVEL: ...") nor glue its text
 * to one. It lives until the end of the pipe (the last writer gone), apart
 * from its proc, whose next spawn gets a new one; a stop closes what is
 * left once every process has exited.
 */
typedef struct relay {
	struct sb_procs *owner;
	struct relay *next;
	uv_pipe_t pipe;
	char *prefix; /* "NAME[PID]: " */
	size_t plen;
	char line[4096]; /* the line so far, escaped; a longer one is cut */
	size_t len;
} relay;

struct sb_procs {
	uv_loop_t *loop;
	sb_procs_opts o;
	proc *procs;
	relay *relays;
	bool stopping;
	bool done_sent;
	uv_timer_t defer;  /* never started: closing it delivers stop's done from the loop */
	uv_timer_t reaper; /* as PID 1: reaps orphans (reap_orphans) */
	bool reaping;
	void (*done)(void *);
	void *done_arg;
};

/* Logging never reaches a NULL function pointer. */
#define LOG(p, level, ...)                                                                         \
	do {                                                                                       \
		if ((p)->o.log)                                                                    \
			(p)->o.log(level, __VA_ARGS__);                                            \
	} while (0)

static void spawn(proc *pr);

/* Monotonic milliseconds, not the loop's cached time: sb_procs_set() may
 * spawn long after the loop last woke up. */
static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* ---- spec copies ------------------------------------------------------- */

static char **strv_dup(const char *const *v, size_t n)
{
	char **out = sb_xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = sb_xstrdup(v[i]);
	return out;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static bool strv_eq(char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool spec_eq(const proc *pr, const sb_proc_spec *s)
{
	bool cwd_eq = (!pr->cwd && !s->cwd) || (pr->cwd && s->cwd && strcmp(pr->cwd, s->cwd) == 0);
	return cwd_eq && strv_eq(pr->argv, pr->argc, s->argv, s->argc) &&
	       strv_eq(pr->env, pr->nenv, s->env, s->nenv);
}

static void spec_take(proc *pr, const sb_proc_spec *s)
{
	strv_free(pr->argv);
	strv_free(pr->env);
	free(pr->cwd);
	pr->argv = strv_dup(s->argv, s->argc);
	pr->argc = s->argc;
	pr->env = strv_dup(s->env, s->nenv);
	pr->nenv = s->nenv;
	pr->cwd = s->cwd ? sb_xstrdup(s->cwd) : NULL;
}

/* Length of the KEY part of "KEY=VALUE" (the whole string when no '='). */
static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool key_is(const char *kv, const char *key, size_t klen)
{
	return key_len(kv) == klen && strncmp(kv, key, klen) == 0;
}

/*
 * The child's environment: the edge's, minus what the spec or PORT replaces,
 * then the spec's vars, then PORT. Built at each spawn so that the edge's
 * environment is read when it is used. The strings of environ are borrowed;
 * only the array and the PORT entry are ours (*port_kv).
 */
static char **env_build(const proc *pr, char **port_kv)
{
	size_t ninh = 0;
	while (environ && environ[ninh])
		ninh++;
	char **env = sb_xcalloc(ninh + pr->nenv + 2, sizeof(*env));
	size_t n = 0;
	for (size_t i = 0; i < ninh; i++) {
		const char *kv = environ[i];
		size_t kl = key_len(kv);
		bool replaced = key_is(kv, "PORT", 4);
		for (size_t j = 0; !replaced && j < pr->nenv; j++)
			replaced = key_is(pr->env[j], kv, kl);
		if (!replaced)
			env[n++] = environ[i];
	}
	for (size_t j = 0; j < pr->nenv; j++)
		if (!key_is(pr->env[j], "PORT", 4))
			env[n++] = pr->env[j];
	char buf[16];
	snprintf(buf, sizeof(buf), "PORT=%u", (unsigned)pr->port);
	*port_kv = sb_xstrdup(buf);
	env[n++] = *port_kv;
	env[n] = NULL;
	return env;
}

/* ---- the executable ---------------------------------------------------- */

/* Whether path names an executable regular file, looked at from dir (the
 * child's working directory; NULL: ours) when it is relative. Returns 0,
 * UV_EACCES or UV_ENOENT. */
static int exec_check(const char *dir, const char *path)
{
	struct stat st;
	int dfd = AT_FDCWD;
	if (dir && path[0] != '/') {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return UV_ENOENT;
	}
	int r = UV_ENOENT;
	if (fstatat(dfd, path, &st, 0) == 0)
		r = S_ISREG(st.st_mode) && faccessat(dfd, path, X_OK, 0) == 0 ? 0 : UV_EACCES;
	if (dfd != AT_FDCWD)
		close(dfd);
	return r;
}

/*
 * The file the child will run, as execvp would find it: argv[0] itself when
 * it has a '/', otherwise the first executable argv[0] in the directories
 * of the child's PATH (env). Found here, before the spawn, so that a missing
 * command is reported as one (the child runs `switchboard __exec`, which
 * would only see its exec fail). Returns 0 with out filled, UV_ENOENT or
 * UV_EACCES.
 */
static int exec_find(const proc *pr, char *const *env, char *out, size_t cap)
{
	const char *file = pr->argv[0];
	if (strchr(file, '/')) {
		if (snprintf(out, cap, "%s", file) >= (int)cap)
			return UV_ENAMETOOLONG;
		return exec_check(pr->cwd, out);
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin"; /* execvp's default */
	for (size_t i = 0; env[i]; i++)
		if (key_is(env[i], "PATH", 4))
			path = env[i] + 5;
	int r = UV_ENOENT;
	for (const char *d = path;; d++) {
		const char *e = strchr(d, ':');
		size_t dl = e ? (size_t)(e - d) : strlen(d);
		/* an empty entry is the working directory */
		int n = dl ? snprintf(out, cap, "%.*s/%s", (int)dl, d, file)
			   : snprintf(out, cap, "./%s", file);
		if (n > 0 && (size_t)n < cap) {
			int c = exec_check(pr->cwd, out);
			if (c == 0)
				return 0;
			if (c == UV_EACCES)
				r = c;
		}
		if (!e)
			break;
		d = e;
	}
	return r;
}

/*
 * The watchdog of one command, for an edge that ends without stopping it
 * (SIGKILL, a crash). It waits for the edge (edge_fd) or the command
 * (cmd_fd, pid cmd) to end. When the command ends first it leaves: the edge
 * is there to reap it and to kill what it left in its process group. When
 * the edge ends first it does what the edge's stop would have done: SIGTERM
 * to the command's whole process group, SIGKILL after the grace period if
 * anything is left. It lives in a process group of its own, so that the
 * signals the edge sends to the command's group are not for it, with its
 * stdio on /dev/null (the edge's log pipe sees its end when the command's
 * writers are gone) and / as its directory. Never returns.
 */
static void watchdog(int edge_fd, int cmd_fd, pid_t cmd)
{
	prctl(PR_SET_NAME, "sb-watchdog");
	setpgid(0, 0);
	if (chdir("/") < 0) {
		/* nothing to do about it: it only pins a directory */
	}
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; null >= 0 && fd <= 2; fd++)
		if (fd != null)
			dup2(null, fd);
	if (null > 2)
		close(null);
	struct pollfd pf[2] = {{.fd = edge_fd, .events = POLLIN}, {.fd = cmd_fd, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (pf[0].revents)
			break; /* the edge is gone (whatever the command did) */
		if (pf[1].revents)
			_exit(0);
	}
	kill(-cmd, SIGTERM);
	for (int waited = 0; waited < DEF_GRACE_MS; waited += 50) {
		if (kill(-cmd, 0) < 0 && errno == ESRCH)
			_exit(0);
		poll(NULL, 0, 50);
	}
	kill(-cmd, SIGKILL);
	_exit(0);
}

/* Start the watchdog of this process (the command, before its exec) and of
 * the edge ppid. It is forked twice, so that the command never has a child
 * it did not make (a command that waits for all its children, or counts
 * them, sees none): its parent exits at once and is reaped here. Returns 0,
 * or -1 when it could not be started. */
static int watchdog_start(pid_t ppid)
{
	/* pidfds taken before anything can end, so that a reused pid is never
	 * watched; the edge's is checked to be our parent's after it is open */
	int edge_fd = pidfd_open(ppid, 0);
	int cmd_fd = pidfd_open(getpid(), 0);
	int r = -1;
	if (edge_fd < 0 || cmd_fd < 0 || getppid() != ppid)
		goto out;
	pid_t self = getpid();
	pid_t mid = fork();
	if (mid < 0)
		goto out;
	if (mid == 0) {
		pid_t w = fork();
		if (w == 0)
			watchdog(edge_fd, cmd_fd, self);
		_exit(w < 0 ? 1 : 0);
	}
	int st;
	while (waitpid(mid, &st, 0) < 0)
		if (errno != EINTR)
			goto out;
	r = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
out:
	if (edge_fd >= 0)
		close(edge_fd);
	if (cmd_fd >= 0)
		close(cmd_fd);
	return r;
}

int sb_procs_exec_child(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "switchboard __exec: used by serve to start commands\n");
		return 2;
	}
	char *end;
	errno = 0;
	long ppid = strtol(argv[2], &end, 10);
	if (errno || *end || ppid < 1) { /* 1: the edge is a container's init */
		fprintf(stderr, "switchboard __exec: bad parent pid '%s'\n", argv[2]);
		return 2;
	}
	if (getppid() != (pid_t)ppid)
		return 1;
	/*
	 * An edge that is PID 1 takes every process of its namespace with it
	 * when it ends: nothing to watch (and a watchdog, reparented to the
	 * edge, would be a child it does not reap). Otherwise the watchdog
	 * stops the command's whole process group when the edge ends. Without
	 * one (no pidfd_open), the kernel sends SIGTERM to the command itself
	 * when the edge's control thread (the one that spawned us) ends, even by
	 * SIGKILL; checked after, in case it ended before.
	 */
	if (ppid != 1 && watchdog_start((pid_t)ppid) == 0) {
		/* watched */
	} else if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != (pid_t)ppid) {
		return 1;
	}
	execv(argv[3], argv + 4);
	if (errno == ENOEXEC) {
		/* a script without "#!": run by the shell, as execvp does */
		int n = 0;
		while (argv[4 + n])
			n++;
		char **sh = sb_xcalloc((size_t)n + 3, sizeof(*sh));
		sh[0] = "/bin/sh";
		sh[1] = argv[3];
		for (int i = 1; i < n; i++)
			sh[i + 1] = argv[4 + i];
		execv("/bin/sh", sh);
		free(sh);
	}
	fprintf(stderr, "switchboard: cannot start %s: %s\n", argv[3], strerror(errno));
	return 127;
}

/* ---- ports ------------------------------------------------------------- */

static bool port_taken(const sb_procs *p, uint16_t port, const uint16_t *extra, size_t nextra)
{
	for (const proc *pr = p->procs; pr; pr = pr->next)
		if (pr->port == port)
			return true;
	for (size_t i = 0; i < nextra; i++)
		if (extra[i] == port)
			return true;
	return false;
}

/*
 * A port that is free on 127.0.0.1 now: the kernel picks one for a socket
 * bound to port 0. Nothing holds it afterwards, so another program could
 * take it before the child binds; that child then fails and is restarted,
 * which is the same path as any crash. Ports already given to our names (and
 * those reserved earlier in the same sb_procs_set, in extra) are skipped,
 * because their processes may not have bound yet.
 */
static int port_pick(const sb_procs *p, const uint16_t *extra, size_t nextra, uint16_t *out)
{
	for (int t = 0; t < PORT_TRIES; t++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return SB_EIO;
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(sa);
		int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (r == 0)
			r = getsockname(fd, (struct sockaddr *)&sa, &len);
		close(fd);
		if (r < 0)
			return SB_EIO;
		uint16_t port = ntohs(sa.sin_port);
		if (!port_taken(p, port, extra, nextra)) {
			*out = port;
			return 0;
		}
	}
	return SB_EIO;
}

/* ---- life of a process ------------------------------------------------- */

/* A managed name (not being stopped). */
static proc *find(const sb_procs *p, const char *name)
{
	for (proc *pr = p->procs; pr; pr = pr->next)
		if (!pr->removed && !pr->closing && strcmp(pr->name, name) == 0)
			return pr;
	return NULL;
}

/* A name that still has a process, even one being stopped: declaring it
 * again revives it on the same port. */
static proc *find_alive(const sb_procs *p, const char *name)
{
	for (proc *pr = p->procs; pr; pr = pr->next)
		if (!pr->closing && strcmp(pr->name, name) == 0)
			return pr;
	return NULL;
}

static void on_defer_closed(uv_handle_t *h)
{
	sb_procs *p = h->data;
	if (p->done)
		p->done(p->done_arg);
}

static void relay_close(relay *rl);

static void maybe_done(sb_procs *p)
{
	if (!p->stopping || p->procs)
		return;
	/* every process has exited: what still holds a pipe escaped its group */
	for (relay *rl = p->relays; rl; rl = rl->next)
		relay_close(rl);
	if (!p->relays && !p->done_sent) {
		p->done_sent = true;
		uv_close((uv_handle_t *)&p->defer, on_defer_closed);
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	proc *pr = h->data;
	sb_procs *p = pr->owner;
	for (proc **pp = &p->procs; *pp; pp = &(*pp)->next)
		if (*pp == pr) {
			*pp = pr->next;
			break;
		}
	free(pr->name);
	strv_free(pr->argv);
	strv_free(pr->env);
	free(pr->cwd);
	free(pr);
	maybe_done(p);
}

/* The name is gone and no process runs: release its last handle. */
static void forget(proc *pr)
{
	pr->closing = true;
	uv_timer_stop(&pr->timer);
	uv_close((uv_handle_t *)&pr->timer, on_timer_closed);
}

static void on_backoff(uv_timer_t *t)
{
	spawn(t->data);
}

/* The process handle is closed: decide what comes next. */
/* What follows a process that is gone, or a spawn that did not happen. */
static void reaped(proc *pr)
{
	sb_procs *p = pr->owner;
	if (pr->removed) {
		forget(pr);
		return;
	}
	if (pr->restart_now) {
		pr->restart_now = false;
		pr->delay_ms = p->o.backoff_min_ms;
		spawn(pr);
		return;
	}
	/* this restart waits delay_ms; the next one (if this start fails too)
	 * twice as long, up to the maximum */
	uint32_t delay = pr->delay_ms;
	uint64_t next = (uint64_t)delay * 2;
	pr->delay_ms = next > p->o.backoff_max_ms ? p->o.backoff_max_ms : (uint32_t)next;
	pr->state = P_WAIT;
	LOG(p, "info", "%s: restarting in %u ms", pr->name, delay);
	uv_timer_start(&pr->timer, on_backoff, delay, 0);
}

static void on_process_closed(uv_handle_t *h)
{
	reaped(h->data);
}

/* A spawn refused before uv_spawn: no process handle to close, so the
 * timer brings the name to reaped() from the loop, as a close would. */
static void on_not_spawned(uv_timer_t *t)
{
	reaped(t->data);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
	proc *pr = h->data;
	sb_procs *p = pr->owner;
	uint64_t uptime = now_ms() - pr->started_ms;
	bool asked = pr->state == P_TERM;
	/*
	 * The command may have left children in its process group (a shell's
	 * background jobs, workers): they would keep the port or outlive a
	 * stop. The group is ours alone (the child called setsid), and its id
	 * cannot be reused while any member lives, so this reaches only them.
	 */
	if (kill(-pr->pid, SIGKILL) == 0)
		LOG(p, "info", "%s: killed what pid %d left in its process group", pr->name,
		    pr->pid);
	uv_timer_stop(&pr->timer);
	if (!asked && p->o.on_exit) /* before the log line that tells it */
		p->o.on_exit(p->o.ctx, pr->name);
	if (sig)
		LOG(p, asked ? "info" : "warning",
		    "%s: pid %d killed by signal %d (%s) after %llu ms", pr->name, pr->pid, sig,
		    strsignal(sig), (unsigned long long)uptime);
	else
		LOG(p, asked ? "info" : "warning",
		    "%s: pid %d exited with status %lld after %llu ms", pr->name, pr->pid,
		    (long long)status, (unsigned long long)uptime);
	if (!asked) {
		pr->failures++;
		/* a process that served for a while starts over at the shortest delay */
		if (uptime >= p->o.stable_ms)
			pr->delay_ms = p->o.backoff_min_ms;
	}
	pr->pid = 0;
	pr->state = P_REAP;
	uv_close((uv_handle_t *)&pr->process, on_process_closed);
}

static void log_start(const proc *pr)
{
	char cmd[512];
	size_t n = 0;
	cmd[0] = '\0';
	for (size_t i = 0; i < pr->argc && n + 1 < sizeof(cmd); i++) {
		int w = snprintf(cmd + n, sizeof(cmd) - n, "%s%s", i ? " " : "", pr->argv[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	if (n >= sizeof(cmd))
		memcpy(cmd + sizeof(cmd) - 4, "...", 4);
	LOG(pr->owner, "info", "%s: started pid %d on port %u: %s", pr->name, pr->pid,
	    (unsigned)pr->port, cmd);
}

/* ---- output ------------------------------------------------------------ */

static void relay_flush(relay *rl)
{
	if (!rl->len)
		return;
	char out[sizeof(rl->line) + 256];
	size_t n = rl->plen < 200 ? rl->plen : 200;
	if (n)
		memcpy(out, rl->prefix, n);
	memcpy(out + n, rl->line, rl->len);
	n += rl->len;
	out[n++] = '\n';
	/* one write per line, as the edge's own lines, and like them without
	 * waiting for stderr's reader: the control loop runs this */
	sb_edge_diag_write(out, n);
	rl->len = 0;
}

static void relay_byte(relay *rl, unsigned char c)
{
	if (c == '\n') {
		relay_flush(rl);
		return;
	}
	if (rl->len + 4 > sizeof(rl->line))
		relay_flush(rl); /* a line longer than this goes on a line of its own */
	if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
		rl->line[rl->len++] = (char)c;
	} else {
		static const char hex[] = "0123456789abcdef";
		rl->line[rl->len++] = '\\';
		rl->line[rl->len++] = 'x';
		rl->line[rl->len++] = hex[c >> 4];
		rl->line[rl->len++] = hex[c & 15];
	}
}

static void on_relay_closed(uv_handle_t *h)
{
	relay *rl = h->data;
	sb_procs *p = rl->owner;
	for (relay **pp = &p->relays; *pp; pp = &(*pp)->next)
		if (*pp == rl) {
			*pp = rl->next;
			break;
		}
	free(rl->prefix);
	free(rl);
	maybe_done(p);
}

static void relay_close(relay *rl)
{
	if (uv_is_closing((uv_handle_t *)&rl->pipe))
		return;
	/* what is already in the pipe (a stop closes it without waiting for
	 * the end), then a last line without its newline, are still output */
	uv_os_fd_t fd;
	char b[4096];
	ssize_t n;
	for (int k = 0; k < 16 && uv_fileno((uv_handle_t *)&rl->pipe, &fd) == 0 &&
			(n = read(fd, b, sizeof(b))) > 0;
	     k++)
		for (ssize_t i = 0; i < n; i++)
			relay_byte(rl, (unsigned char)b[i]);
	relay_flush(rl);
	uv_close((uv_handle_t *)&rl->pipe, on_relay_closed);
}

static void relay_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[16384]; /* one loop, one thread: used and done per read */
	buf->base = chunk;
	buf->len = sizeof(chunk);
}

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	relay *rl = s->data;
	for (ssize_t i = 0; i < n; i++)
		relay_byte(rl, (unsigned char)buf->base[i]);
	if (n < 0) /* UV_EOF: every writer is gone */
		relay_close(rl);
}

/* A pipe for a child's output: fills *child_fd with the end the child gets
 * (the caller closes it after the spawn) and returns the relay reading the
 * other end, or NULL (the child then writes to our stderr directly). */
static relay *relay_new(sb_procs *p, int *child_fd)
{
	int fds[2];
	if (uv_pipe(fds, UV_NONBLOCK_PIPE, 0) < 0)
		return NULL;
	relay *rl = sb_xcalloc(1, sizeof(*rl));
	rl->owner = p;
	if (uv_pipe_init(p->loop, &rl->pipe, 0) < 0) {
		free(rl);
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	rl->pipe.data = rl;
	rl->next = p->relays;
	p->relays = rl;
	if (uv_pipe_open(&rl->pipe, fds[0]) < 0 ||
	    uv_read_start((uv_stream_t *)&rl->pipe, relay_alloc, relay_read) < 0) {
		close(fds[1]);
		relay_close(rl);
		return NULL;
	}
	*child_fd = fds[1];
	return rl;
}

static void relay_name(relay *rl, const char *name, int pid)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "[%d]: ", pid);
	size_t nl = strlen(name);
	rl->prefix = sb_xcalloc(nl + strlen(buf) + 1, 1);
	memcpy(rl->prefix, name, nl);
	memcpy(rl->prefix + nl, buf, strlen(buf) + 1);
	rl->plen = strlen(rl->prefix);
}

static void spawn_failed(proc *pr, int r)
{
	pr->failures++;
	LOG(pr->owner, "error", "%s: cannot start %s: %s", pr->name, pr->argv[0], uv_strerror(r));
}

static void spawn(proc *pr)
{
	sb_procs *p = pr->owner;
	char *port_kv = NULL;
	char **env = env_build(pr, &port_kv);
	/* stdout goes to our stderr too (the edge's stdout may be the access
	 * log), through a relay that prefixes each line with the name */
	uv_stdio_container_t stdio[3] = {
	    {.flags = UV_IGNORE},
	    {.flags = UV_INHERIT_FD, .data.fd = 2},
	    {.flags = UV_INHERIT_FD, .data.fd = 2},
	};
	/* The child is `switchboard __exec PPID FILE ARGV...`, which starts the
	 * watchdog that stops the command's group should the edge end first
	 * (libuv runs nothing of ours between fork and exec), then execs the
	 * command with the same pid. */
	char file[PATH_MAX], ppid[24];
	int r = exec_find(pr, env, file, sizeof(file));
	if (r < 0) {
		free(env);
		free(port_kv);
		spawn_failed(pr, r);
		pr->state = P_REAP;
		uv_timer_start(&pr->timer, on_not_spawned, 0, 0);
		return;
	}
	int out_fd = -1;
	relay *rl = relay_new(p, &out_fd);
	if (rl)
		stdio[1].data.fd = stdio[2].data.fd = out_fd;
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	char **args = sb_xcalloc(pr->argc + 5, sizeof(*args));
	args[0] = "switchboard";
	args[1] = "__exec";
	args[2] = ppid;
	args[3] = file;
	memcpy(args + 4, pr->argv, pr->argc * sizeof(*args));
	uv_process_options_t o = {
	    .exit_cb = on_exit_cb,
	    .file = "/proc/self/exe",
	    .args = args,
	    .env = env,
	    .cwd = pr->cwd,
	    .flags = UV_PROCESS_DETACHED,
	    .stdio_count = 3,
	    .stdio = stdio,
	};
	pr->process.data = pr;
	r = uv_spawn(p->loop, &pr->process, &o);
	/* uv_spawn has forked and the child has exec'd (or failed) by now */
	free(args);
	free(env);
	free(port_kv);
	if (out_fd >= 0)
		close(out_fd); /* the child's now */
	if (rl && r < 0)
		relay_close(rl);
	else if (rl)
		relay_name(rl, pr->name, pr->process.pid);
	if (r < 0) {
		spawn_failed(pr, r);
		/* libuv wants the handle closed even though nothing started */
		pr->state = P_REAP;
		uv_close((uv_handle_t *)&pr->process, on_process_closed);
		return;
	}
	pr->pid = pr->process.pid;
	pr->state = P_RUN;
	pr->starts++;
	pr->started_ms = now_ms();
	log_start(pr);
	if (pr->owner->o.on_spawn)
		pr->owner->o.on_spawn(pr->owner->o.ctx, pr->name);
}

static void on_grace(uv_timer_t *t)
{
	proc *pr = t->data;
	LOG(pr->owner, "warning", "%s: pid %d still running %u ms after SIGTERM, sending SIGKILL",
	    pr->name, pr->pid, pr->owner->o.grace_ms);
	kill(-pr->pid, SIGKILL);
}

/* Stop what runs under pr now; what follows is decided once it is gone
 * (pr->removed, pr->restart_now). */
static void terminate(proc *pr)
{
	switch (pr->state) {
	case P_WAIT:
		uv_timer_stop(&pr->timer);
		if (pr->removed) {
			forget(pr);
		} else {
			pr->restart_now = false;
			pr->delay_ms = pr->owner->o.backoff_min_ms;
			spawn(pr);
		}
		break;
	case P_RUN:
		pr->state = P_TERM;
		/* the whole group: the command and whatever it started */
		if (kill(-pr->pid, SIGTERM) < 0)
			kill(pr->pid, SIGTERM);
		/* sb_procs_set() may run long after the loop last read the clock
		 * (a slow reload): the grace period counts from now */
		uv_update_time(pr->owner->loop);
		uv_timer_start(&pr->timer, on_grace, pr->owner->o.grace_ms, 0);
		break;
	case P_TERM:
	case P_REAP:
		/* already on its way out; on_process_closed looks at removed and
		 * restart_now once it is gone */
		break;
	}
}

/* ---- public ------------------------------------------------------------ */

/*
 * An edge that is PID 1 (a container's entry point, without an init) is
 * the parent of every orphan of its namespace: what a command ran in the
 * background and left when it ended, or when its group was stopped. libuv
 * reaps only the processes it spawned, so those stayed <defunct> for good,
 * one more at every change that stopped such a command. Every second, a
 * zombie child of ours that is not one of ours is reaped. Only zombies are
 * touched, and never a pid libuv still waits for (pr->pid is cleared when
 * libuv has reaped it), so no exit status is taken from libuv.
 */
static void reap_orphans(uv_timer_t *t)
{
	sb_procs *p = t->data;
	DIR *dir = opendir("/proc");
	if (!dir)
		return;
	pid_t self = getpid();
	struct dirent *de;
	while ((de = readdir(dir))) {
		uint64_t pid;
		if (sb_parse_u64(de->d_name, strlen(de->d_name), INT_MAX, &pid) < 0)
			continue;
		char path[64], stat[512];
		snprintf(path, sizeof(path), "/proc/%llu/stat", (unsigned long long)pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = '\0';
		/* "pid (comm) S ppid ...": comm may hold anything, even ") " */
		const char *e = strrchr(stat, ')');
		char state;
		long ppid;
		if (!e || sscanf(e + 1, " %c %ld", &state, &ppid) != 2)
			continue;
		if (state != 'Z' || ppid != (long)self)
			continue;
		bool ours = false;
		for (const proc *pr = p->procs; pr && !ours; pr = pr->next)
			ours = pr->pid == (int)pid;
		if (!ours)
			waitpid((pid_t)pid, NULL, WNOHANG);
	}
	closedir(dir);
}

sb_procs *sb_procs_new(uv_loop_t *loop, const sb_procs_opts *opts)
{
	sb_procs *p = sb_xcalloc(1, sizeof(*p));
	p->loop = loop;
	if (opts)
		p->o = *opts;
	if (!p->o.backoff_min_ms)
		p->o.backoff_min_ms = DEF_BACKOFF_MIN_MS;
	if (!p->o.backoff_max_ms)
		p->o.backoff_max_ms = DEF_BACKOFF_MAX_MS;
	if (p->o.backoff_max_ms < p->o.backoff_min_ms)
		p->o.backoff_max_ms = p->o.backoff_min_ms;
	if (!p->o.stable_ms)
		p->o.stable_ms = DEF_STABLE_MS;
	if (!p->o.grace_ms)
		p->o.grace_ms = DEF_GRACE_MS;
	if (getpid() == 1) {
		uv_timer_init(loop, &p->reaper);
		p->reaper.data = p;
		uv_timer_start(&p->reaper, reap_orphans, 1000, 1000);
		uv_unref((uv_handle_t *)&p->reaper); /* keeps no loop running */
		p->reaping = true;
	}
	return p;
}

static int validate(const sb_procs *p, const sb_proc_spec *specs, size_t n, sb_diag *d)
{
	if (p->stopping)
		return sb_diag_set(d, "procs", 0, 0, "the process manager is stopping");
	for (size_t i = 0; i < n; i++) {
		const sb_proc_spec *s = &specs[i];
		if (!s->name || !s->name[0])
			return sb_diag_set(d, "procs", 0, 0, "command %zu has no name", i);
		if (s->argc == 0 || !s->argv || !s->argv[0] || !s->argv[0][0])
			return sb_diag_set(d, s->name, 0, 0, "the command is empty");
		for (size_t j = 0; j < s->argc; j++)
			if (!s->argv[j])
				return sb_diag_set(d, s->name, 0, 0, "argv[%zu] is NULL", j);
		for (size_t j = 0; j < s->nenv; j++)
			if (!s->env[j] || !strchr(s->env[j], '=') || s->env[j][0] == '=')
				return sb_diag_set(d, s->name, 0, 0,
						   "environment entry %zu is not KEY=VALUE", j);
		for (size_t k = 0; k < i; k++)
			if (strcmp(specs[k].name, s->name) == 0)
				return sb_diag_setc(d, SB_EINVAL, s->name, 0, 0,
						    "the name is listed twice");
	}
	return 0;
}

int sb_procs_set(sb_procs *p, const sb_proc_spec *specs, size_t n, uint16_t *ports, sb_diag *d)
{
	int r = validate(p, specs, n, d);
	uint16_t *fresh = NULL; /* ports for names not managed yet */
	if (r < 0)
		goto out;
	/* reserve every new port first, so that a failure leaves nothing changed */
	fresh = sb_xcalloc(n ? n : 1, sizeof(*fresh));
	for (size_t i = 0; i < n; i++) {
		if (find_alive(p, specs[i].name))
			continue;
		if (specs[i].port) {
			fresh[i] = specs[i].port;
			continue;
		}
		r = port_pick(p, fresh, n, &fresh[i]);
		if (r < 0) {
			sb_diag_setc(d, r, specs[i].name, 0, 0,
				     "cannot reserve a port on 127.0.0.1");
			goto out;
		}
	}
	/* names no longer listed */
	for (proc *pr = p->procs, *next; pr; pr = next) {
		next = pr->next; /* terminate() may unlink only later, from a close callback */
		if (pr->removed || pr->closing)
			continue;
		bool listed = false;
		for (size_t i = 0; !listed && i < n; i++)
			listed = strcmp(pr->name, specs[i].name) == 0;
		if (!listed) {
			LOG(p, "info", "%s: stopping (no longer declared)", pr->name);
			pr->removed = true;
			terminate(pr);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const sb_proc_spec *s = &specs[i];
		proc *pr = find_alive(p, s->name);
		if (pr && pr->removed) {
			/* stopping but not gone yet: start it again once it is */
			LOG(p, "info", "%s: declared again, restarting", pr->name);
			pr->removed = false;
			spec_take(pr, s);
			pr->restart_now = true;
			terminate(pr);
		} else if (pr) {
			if (!spec_eq(pr, s)) {
				LOG(p, "info", "%s: command or environment changed, restarting",
				    pr->name);
				spec_take(pr, s);
				pr->restart_now = true;
				terminate(pr);
			}
		} else {
			pr = sb_xcalloc(1, sizeof(*pr));
			pr->owner = p;
			pr->name = sb_xstrdup(s->name);
			pr->port = fresh[i];
			pr->delay_ms = p->o.backoff_min_ms;
			spec_take(pr, s);
			uv_timer_init(p->loop, &pr->timer);
			pr->timer.data = pr;
			pr->next = p->procs;
			p->procs = pr;
			spawn(pr);
		}
		if (ports)
			ports[i] = pr->port;
	}
	r = 0;
out:
	free(fresh);
	return r;
}

uint16_t sb_procs_port(const sb_procs *p, const char *name)
{
	const proc *pr = find(p, name);
	return pr ? pr->port : 0;
}

int sb_procs_info(const sb_procs *p, const char *name, sb_proc_info *out)
{
	const proc *pr = find(p, name);
	if (!pr)
		return SB_ENOENT;
	out->pid = pr->pid;
	out->port = pr->port;
	out->starts = pr->starts;
	out->failures = pr->failures;
	out->next_delay_ms = pr->delay_ms;
	return 0;
}

void sb_procs_stop(sb_procs *p, void (*done)(void *arg), void *arg)
{
	if (p->stopping)
		return;
	p->stopping = true;
	p->done = done;
	p->done_arg = arg;
	/* closed before defer, so gone before done is called */
	if (p->reaping)
		uv_close((uv_handle_t *)&p->reaper, NULL);
	uv_timer_init(p->loop, &p->defer);
	p->defer.data = p;
	for (proc *pr = p->procs, *next; pr; pr = next) {
		next = pr->next;
		if (pr->removed || pr->closing)
			continue;
		pr->removed = true;
		terminate(pr);
	}
	maybe_done(p);
}

void sb_procs_free(sb_procs *p)
{
	if (!p)
		return;
	if (p->procs)
		abort(); /* live handles point into these */
	free(p);
}
