/* Upstreams started by command: real children on a real libuv loop. Every
 * wait runs the loop until a condition holds or a deadline passes; nothing
 * sleeps blindly. Each test ends by stopping the manager and checking that
 * the loop has no handle left. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "http/procs.h"
#include "memfs.h"

/* The manager starts each command as `/proc/self/exe __exec ...` (see
 * sb_procs_exec_child): here /proc/self/exe is this test program, so it
 * plays switchboard's part before Criterion's main runs. glibc passes
 * argc and argv to constructors. */
__attribute__((constructor)) static void exec_helper(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "__exec") == 0)
		_exit(sb_procs_exec_child(argc, argv));
}

static char tmpdir[256];
static uv_loop_t loop;
static uv_timer_t tick; /* wakes the loop so that conditions are looked at */
static sb_buf logs;
static int kids[64]; /* every pid the manager started, for the teardown */
static size_t nkids;

static void on_tick(uv_timer_t *t)
{
}

static void test_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void test_log(const char *level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_buf_addf(&logs, "%s: ", level);
	size_t from = logs.len;
	sb_buf_vaddf(&logs, fmt, ap);
	sb_buf_addc(&logs, '\n');
	va_end(ap);
	const char *st = strstr(logs.data + from, "started pid ");
	if (st && nkids < SB_ARRAY_LEN(kids))
		kids[nkids++] = (int)strtol(st + 12, NULL, 10);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s", "/tmp/sb-procs-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp");
	/* the child's $(pwd) is the resolved path */
	char real[PATH_MAX];
	cr_assert_not_null(realpath(tmpdir, real));
	cr_assert_lt(strlen(real), sizeof(tmpdir));
	memcpy(tmpdir, real, strlen(real) + 1);
	sb_buf_init(&logs);
	sb_buf_adds(&logs, ""); /* never NULL for strstr */
	cr_assert_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, on_tick, 5, 5);
}

static int rm_entry(const char *path, const struct stat *sbuf, int type, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	/* a failed assertion leaves the test early: leave no children behind */
	for (size_t i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(-kids[i], SIGKILL);
	nkids = 0;
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
	sb_buf_free(&logs);
	leak_check();
}

TestSuite(procs, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* Run the loop until cond(ctx) or ms milliseconds. Returns cond's last value. */
static bool run_until(bool (*cond)(void *), void *ctx, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;
	bool ok;
	while (!(ok = cond(ctx)) && now_ms() < deadline)
		uv_run(&loop, UV_RUN_ONCE);
	return ok;
}

/* A process that exists and is not a zombie waiting for a foreign parent. */
static bool alive(int pid)
{
	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	char path[64], stat[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *rp = strrchr(stat, ')');
	return !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

static bool dead(void *pidp)
{
	return !alive(*(int *)pidp);
}

static char *path_in(const char *name)
{
	static char bufs[4][512];
	static int i;
	char *b = bufs[i++ % 4];
	snprintf(b, 512, "%s/%s", tmpdir, name);
	return b;
}

/* Whole file, or NULL when it does not exist (yet). */
static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	sb_diag d;
	if (sb_file_read(path, &data, &len, &d) < 0)
		return NULL;
	return data;
}

static bool logged(void *text)
{
	return strstr(logs.data, text) != NULL;
}

static bool file_exists(void *path)
{
	return access(path, F_OK) == 0;
}

struct file_is {
	const char *path, *text;
};

static bool file_has(void *ctx)
{
	struct file_is *fi = ctx;
	char *s = slurp(fi->path);
	bool ok = s && strcmp(s, fi->text) == 0;
	free(s);
	return ok;
}

static int read_pid(const char *path)
{
	char *s = slurp(path);
	cr_assert_not_null(s, "%s", path);
	int pid = (int)strtol(s, NULL, 10);
	free(s);
	return pid;
}

static sb_proc_info info(sb_procs *p, const char *name)
{
	sb_proc_info in;
	int r = sb_procs_info(p, name, &in);
	cr_assert_eq(r, 0, "no info for %s", name);
	return in;
}

struct count_of {
	sb_procs *p;
	const char *name;
	unsigned n;
};

static bool started_n(void *ctx)
{
	struct count_of *c = ctx;
	sb_proc_info in;
	return sb_procs_info(c->p, c->name, &in) == 0 && in.starts >= c->n && in.pid > 0;
}

static bool failed_n(void *ctx)
{
	struct count_of *c = ctx;
	sb_proc_info in;
	return sb_procs_info(c->p, c->name, &in) == 0 && in.failures >= c->n;
}

static bool int_is_1(void *ctx)
{
	return *(int *)ctx == 1;
}

static void count_done(void *arg)
{
	(*(int *)arg)++;
}

/* Stop, wait for done, and prove that nothing is left on the loop. */
static void finish(sb_procs *p)
{
	int calls = 0;
	sb_procs_stop(p, count_done, &calls);
	cr_assert(run_until(int_is_1, &calls, 10000), "stop's done was not called");
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(calls, 1, "done called %d times", calls);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left on the loop");
	sb_procs_free(p);
}

static sb_procs *procs_new(uint32_t backoff_min, uint32_t stable, uint32_t grace)
{
	sb_procs_opts o = {.log = test_log,
			   .backoff_min_ms = backoff_min,
			   .backoff_max_ms = 10000,
			   .stable_ms = stable,
			   .grace_ms = grace};
	return sb_procs_new(&loop, &o);
}

static void set_ok(sb_procs *p, const sb_proc_spec *specs, size_t n, uint16_t *ports)
{
	sb_diag d = {0};
	int r = sb_procs_set(p, specs, n, ports, &d);
	cr_assert_eq(r, 0, "set: %d %s", r, d.msg);
}

#define SPEC(nm, av, ev)                                                                           \
	(sb_proc_spec)                                                                             \
	{                                                                                          \
		.name = nm, .argv = av, .argc = SB_ARRAY_LEN(av), .env = ev,                       \
		.nenv = SB_ARRAY_LEN(ev), .cwd = tmpdir                                            \
	}

Test(procs, environment_has_port_vars_and_cwd)
{
	setenv("SB_PROCS_INHERITED", "inherited", 1);
	setenv("SB_PROCS_OVERRIDE", "old", 1);
	sb_procs *p = procs_new(0, 0, 0);
	const char *argv[] = {"sh", "-c",
			      "printf '%s|%s|%s|%s|%s\\n' \"$PORT\" \"$GREETING\" "
			      "\"$SB_PROCS_INHERITED\" \"$SB_PROCS_OVERRIDE\" \"$(pwd)\" > out.tmp "
			      "&& mv out.tmp out; exec sleep 60"};
	/* PORT in the vars is ignored: the manager's PORT wins */
	const char *env[] = {"GREETING=hello world", "SB_PROCS_OVERRIDE=new", "PORT=1"};
	sb_proc_spec s = SPEC("web", argv, env);
	uint16_t port = 0;
	set_ok(p, &s, 1, &port);
	cr_assert_neq(port, 0);
	cr_assert_neq(port, 1);
	cr_assert_eq(sb_procs_port(p, "web"), port);
	cr_assert_eq(sb_procs_port(p, "other"), 0);

	cr_assert(run_until(file_exists, path_in("out"), 5000), "the command did not run");
	char want[800];
	snprintf(want, sizeof(want), "%u|hello world|inherited|new|%s\n", (unsigned)port, tmpdir);
	char *got = slurp(path_in("out"));
	cr_assert_str_eq(got, want);
	free(got);
	sb_proc_info in = info(p, "web");
	cr_assert_gt(in.pid, 0);
	cr_assert(alive(in.pid));
	cr_assert_eq(in.starts, 1);
	cr_assert_eq(in.failures, 0);
	cr_assert_not_null(strstr(logs.data, "web: started pid"), "%s", logs.data);
	int pid = in.pid;
	finish(p);
	cr_assert_not(alive(pid), "the child outlived stop");
}

Test(procs, exiting_command_restarts_with_growing_delays)
{
	sb_procs *p = procs_new(50, 60000, 0);
	const char *argv[] = {"sh", "-c", "exit 3"};
	const char *const *env = NULL;
	sb_proc_spec s = {.name = "crash", .argv = argv, .argc = 3, .env = env, .nenv = 0};
	set_ok(p, &s, 1, NULL);
	/* the time of each start, as the loop sees the counter move */
	uint64_t at[6];
	unsigned seen = 0;
	uint64_t deadline = now_ms() + 5000;
	while (seen < SB_ARRAY_LEN(at) && now_ms() < deadline) {
		sb_proc_info in = info(p, "crash");
		while (seen < in.starts && seen < SB_ARRAY_LEN(at))
			at[seen++] = now_ms();
		if (seen < SB_ARRAY_LEN(at))
			uv_run(&loop, UV_RUN_ONCE);
	}
	cr_assert_eq(seen, SB_ARRAY_LEN(at), "only %u starts within 5 s\n%s", seen, logs.data);
	/* each restart waited at least its delay: 50, 100, 200, 400, 800 ms */
	for (unsigned i = 1; i < seen; i++) {
		uint64_t gap = at[i] - at[i - 1], delay = 50u << (i - 1);
		cr_assert_geq(gap + 5, delay, "restart %u after %llu ms, backoff is %llu ms", i,
			      (unsigned long long)gap, (unsigned long long)delay);
	}
	cr_assert_gt(at[5] - at[4], 2 * (at[1] - at[0]), "delays do not grow");
	cr_assert_geq(info(p, "crash").failures, 5);
	cr_assert_not_null(strstr(logs.data, "crash: pid "), "%s", logs.data);
	cr_assert_not_null(strstr(logs.data, "exited with status 3"), "%s", logs.data);
	cr_assert_not_null(strstr(logs.data, "crash: restarting in 400 ms"), "%s", logs.data);
	finish(p);
}

Test(procs, backoff_starts_over_after_a_stable_run)
{
	/* up 300 ms each time, stable after 100 ms: every restart is the shortest */
	sb_procs *p = procs_new(50, 100, 0);
	const char *argv[] = {"sh", "-c", "sleep 0.3; exit 1"};
	sb_proc_spec s = {.name = "flappy", .argv = argv, .argc = 3};
	set_ok(p, &s, 1, NULL);
	struct count_of c = {p, "flappy", 4};
	cr_assert(run_until(started_n, &c, 8000), "%s", logs.data);
	cr_assert_not_null(strstr(logs.data, "flappy: restarting in 50 ms"), "%s", logs.data);
	cr_assert_null(strstr(logs.data, "restarting in 100 ms"), "%s", logs.data);
	finish(p);
}

Test(procs, changed_spec_restarts_on_the_same_port)
{
	sb_procs *p = procs_new(0, 0, 0);
	const char *argv[] = {"sh", "-c",
			      "echo \"$VERSION\" > out.tmp && mv out.tmp out; exec sleep 60"};
	const char *env1[] = {"VERSION=1"};
	const char *env2[] = {"VERSION=2"};
	sb_proc_spec s = SPEC("svc", argv, env1);
	uint16_t port1 = 0, port2 = 0;
	set_ok(p, &s, 1, &port1);
	struct file_is v1 = {path_in("out"), "1\n"};
	cr_assert(run_until(file_has, &v1, 5000), "%s", logs.data);
	int pid1 = info(p, "svc").pid;

	/* the same spec again: nothing happens */
	set_ok(p, &s, 1, &port2);
	cr_assert_eq(port2, port1);
	cr_assert_eq(info(p, "svc").pid, pid1);
	cr_assert_eq(info(p, "svc").starts, 1);
	cr_assert_null(strstr(logs.data, "changed"), "%s", logs.data);

	s = SPEC("svc", argv, env2);
	set_ok(p, &s, 1, &port2);
	cr_assert_eq(port2, port1, "a name keeps its port");
	struct file_is v2 = {path_in("out"), "2\n"};
	cr_assert(run_until(file_has, &v2, 5000), "not restarted with the new vars\n%s", logs.data);
	cr_assert(run_until(dead, &pid1, 5000), "the old process still runs");
	sb_proc_info in = info(p, "svc");
	cr_assert_neq(in.pid, pid1);
	cr_assert(alive(in.pid));
	cr_assert_eq(in.starts, 2);
	cr_assert_eq(in.failures, 0, "a restart we asked for is not a failure");
	cr_assert_not_null(strstr(logs.data, "svc: command or environment changed"), "%s",
			   logs.data);
	finish(p);
}

Test(procs, removed_name_is_killed_with_its_process_group)
{
	/* a long grace period: only the SIGTERM and the group cleanup can act */
	sb_procs *p = procs_new(0, 0, 30000);
	/* the background child ignores SIGTERM: it dies only because the manager
	 * kills what the command left in its group */
	const char *argv_a[] = {
	    "sh", "-c",
	    "(trap '' TERM; exec sleep 60) & echo $! > kid.tmp && mv kid.tmp kid; "
	    "exec sleep 60"};
	const char *argv_b[] = {"sleep", "60"};
	const char *const *noenv = NULL;
	sb_proc_spec specs[2] = {
	    {.name = "a", .argv = argv_a, .argc = 3, .env = noenv, .cwd = tmpdir},
	    {.name = "b", .argv = argv_b, .argc = 2},
	};
	uint16_t ports[2];
	set_ok(p, specs, 2, ports);
	cr_assert_neq(ports[0], ports[1]);
	cr_assert(run_until(file_exists, path_in("kid"), 5000), "%s", logs.data);
	struct count_of cb = {p, "b", 1};
	cr_assert(run_until(started_n, &cb, 5000));
	int pid_a = info(p, "a").pid, pid_b = info(p, "b").pid;
	int kid = read_pid(path_in("kid"));
	cr_assert(alive(pid_a) && alive(kid) && alive(pid_b));

	set_ok(p, &specs[1], 1, NULL);
	cr_assert_eq(sb_procs_port(p, "a"), 0, "a removed name has no port");
	sb_proc_info in;
	cr_assert_eq(sb_procs_info(p, "a", &in), SB_ENOENT);
	cr_assert(run_until(dead, &pid_a, 5000), "the removed command still runs");
	cr_assert(run_until(dead, &kid, 5000), "the command's child was orphaned");
	cr_assert_eq(info(p, "b").pid, pid_b, "the other name was touched");
	cr_assert(alive(pid_b));
	cr_assert_not_null(strstr(logs.data, "a: stopping (no longer declared)"), "%s", logs.data);
	cr_assert_null(strstr(logs.data, "SIGKILL"), "%s", logs.data);
	finish(p);
	cr_assert_not(alive(pid_b));
}

Test(procs, sigterm_ignored_gets_sigkill_after_grace)
{
	sb_procs *p = procs_new(0, 0, 300);
	const char *argv[] = {"sh", "-c",
			      "trap '' TERM; echo $$ > pid.tmp && mv pid.tmp pid; "
			      "while :; do sleep 1; done"};
	sb_proc_spec s = {.name = "stubborn", .argv = argv, .argc = 3, .cwd = tmpdir};
	set_ok(p, &s, 1, NULL);
	cr_assert(run_until(file_exists, path_in("pid"), 5000), "%s", logs.data);
	int pid = info(p, "stubborn").pid;
	cr_assert_eq(read_pid(path_in("pid")), pid);
	uint64_t t0 = now_ms();
	set_ok(p, NULL, 0, NULL);
	cr_assert(run_until(dead, &pid, 5000), "still alive after SIGKILL");
	cr_assert_geq(now_ms() - t0 + 5, 300, "killed before the grace period");
	cr_assert_not_null(strstr(logs.data, "sending SIGKILL"), "%s", logs.data);
	/* the exit is reported once the loop has reaped it */
	cr_assert(run_until(logged, "killed by signal 9", 5000), "%s", logs.data);
	finish(p);
}

Test(procs, redeclared_while_stopping_keeps_its_port)
{
	sb_procs *p = procs_new(0, 0, 300);
	const char *argv[] = {"sh", "-c",
			      "trap '' TERM; echo $$ > pid.tmp && mv pid.tmp pid; exec sleep 60"};
	sb_proc_spec s = {.name = "back", .argv = argv, .argc = 3, .cwd = tmpdir};
	uint16_t port1 = 0, port2 = 0;
	set_ok(p, &s, 1, &port1);
	cr_assert(run_until(file_exists, path_in("pid"), 5000), "%s", logs.data);
	int pid1 = info(p, "back").pid;
	set_ok(p, NULL, 0, NULL);
	set_ok(p, &s, 1, &port2);
	cr_assert_eq(port2, port1);
	struct count_of c = {p, "back", 2};
	cr_assert(run_until(started_n, &c, 5000), "%s", logs.data);
	cr_assert_not(alive(pid1));
	cr_assert_eq(info(p, "back").port, port1);
	finish(p);
}

Test(procs, stop_kills_everything_and_calls_done_once)
{
	sb_procs *p = procs_new(20, 0, 300);
	const char *argv_a[] = {"sleep", "60"};
	const char *argv_b[] = {"sh", "-c", "trap '' TERM; echo x > up; while :; do sleep 1; done"};
	const char *argv_c[] = {"sb-procs-no-such-command"};
	sb_proc_spec specs[3] = {
	    {.name = "a", .argv = argv_a, .argc = 2},
	    {.name = "b", .argv = argv_b, .argc = 3, .cwd = tmpdir},
	    {.name = "c", .argv = argv_c, .argc = 1},
	};
	set_ok(p, specs, 3, NULL);
	struct count_of ca = {p, "a", 1};
	cr_assert(run_until(started_n, &ca, 5000));
	cr_assert(run_until(file_exists, path_in("up"), 5000));
	int pid_a = info(p, "a").pid, pid_b = info(p, "b").pid;

	int calls = 0;
	sb_procs_stop(p, count_done, &calls);
	cr_assert_eq(calls, 0, "done must come from the loop");
	sb_procs_stop(p, count_done, &calls); /* a second stop does nothing */
	cr_assert_eq(sb_procs_set(p, specs, 1, NULL, NULL), SB_EINVAL);
	cr_assert(run_until(int_is_1, &calls, 10000), "%s", logs.data);
	cr_assert_not(alive(pid_a));
	cr_assert_not(alive(pid_b));
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(calls, 1);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left on the loop");
	sb_procs_free(p);
}

Test(procs, stop_with_nothing_running)
{
	sb_procs *p = procs_new(0, 0, 0);
	finish(p);
}

Test(procs, missing_executable_is_retried_not_fatal)
{
	sb_procs *p = procs_new(20, 0, 0);
	const char *argv[] = {"sb-procs-no-such-command", "--flag"};
	sb_proc_spec s = {.name = "ghost", .argv = argv, .argc = 2};
	uint16_t port = 0;
	set_ok(p, &s, 1, &port);
	cr_assert_neq(port, 0);
	struct count_of c = {p, "ghost", 3};
	cr_assert(run_until(failed_n, &c, 5000), "%s", logs.data);
	cr_assert_eq(info(p, "ghost").starts, 0);
	cr_assert_not_null(strstr(logs.data, "ghost: cannot start sb-procs-no-such-command"), "%s",
			   logs.data);
	cr_assert_not_null(strstr(logs.data, "ghost: restarting in 40 ms"), "%s", logs.data);

	/* fixing the command brings it up, on the same port */
	const char *fixed[] = {"sleep", "60"};
	s.argv = fixed;
	set_ok(p, &s, 1, NULL);
	struct count_of up = {p, "ghost", 1};
	cr_assert(run_until(started_n, &up, 5000), "%s", logs.data);
	cr_assert_eq(sb_procs_port(p, "ghost"), port);
	finish(p);
}

Test(procs, invalid_specs_change_nothing)
{
	sb_procs *p = procs_new(0, 0, 0);
	const char *argv[] = {"sleep", "60"};
	const char *badenv[] = {"NOEQUALS"};
	sb_proc_spec dup[2] = {{.name = "x", .argv = argv, .argc = 2},
			       {.name = "x", .argv = argv, .argc = 2}};
	sb_proc_spec noname = {.name = "", .argv = argv, .argc = 2};
	sb_proc_spec noargv = {.name = "y", .argv = argv, .argc = 0};
	sb_proc_spec env = {.name = "z", .argv = argv, .argc = 2, .env = badenv, .nenv = 1};
	sb_diag d = {0};
	uint16_t ports[2] = {7, 7};
	cr_assert_eq(sb_procs_set(p, dup, 2, ports, &d), SB_EINVAL);
	cr_assert_not_null(strstr(d.msg, "twice"), "%s", d.msg);
	cr_assert_eq(sb_procs_set(p, &noname, 1, ports, &d), SB_EINVAL);
	cr_assert_eq(sb_procs_set(p, &noargv, 1, ports, &d), SB_EINVAL);
	cr_assert_eq(sb_procs_set(p, &env, 1, ports, &d), SB_EINVAL);
	cr_assert_not_null(strstr(d.msg, "KEY=VALUE"), "%s", d.msg);
	cr_assert_eq(ports[0], 7, "ports written on failure");
	cr_assert_eq(sb_procs_port(p, "x"), 0);
	cr_assert_eq(logs.len, 0, "something was started: %s", logs.data);
	finish(p);
}

/* A manager in a process of its own, killed with SIGKILL: its child gets
 * SIGTERM from the kernel (PR_SET_PDEATHSIG) instead of living on. */
Test(procs, child_ends_when_the_manager_is_killed)
{
	pid_t m = fork();
	cr_assert_geq(m, 0);
	if (m == 0) {
		uv_loop_t l;
		if (uv_loop_init(&l) < 0)
			_exit(1);
		sb_procs *p = sb_procs_new(&l, NULL);
		const char *argv[] = {"sh", "-c",
				      "echo $$ > pid.tmp && mv pid.tmp pid; exec sleep 60"};
		sb_proc_spec s = {.name = "orphan", .argv = argv, .argc = 3, .cwd = tmpdir};
		if (sb_procs_set(p, &s, 1, NULL, NULL) < 0)
			_exit(1);
		uv_run(&l, UV_RUN_DEFAULT);
		_exit(1);
	}
	cr_assert(run_until(file_exists, path_in("pid"), 5000), "the command did not run");
	int pid = read_pid(path_in("pid"));
	kids[nkids++] = pid; /* the teardown's, should this fail */
	cr_assert(alive(pid));
	cr_assert_eq(kill(m, SIGKILL), 0);
	cr_assert_eq(waitpid(m, NULL, 0), m);
	cr_assert(run_until(dead, &pid, 5000), "the child outlived its killed manager");
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* The executable is looked up as execvp would, in the child's PATH and
 * working directory, before the spawn: what is missing or not executable is
 * reported by name. */
Test(procs, executable_found_in_the_child_path_and_cwd)
{
	cr_assert_eq(mkdir(path_in("bin"), 0755), 0);
	FILE *f = fopen(path_in("bin/sb-tool"), "w");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\necho $$ > tool.tmp && mv tool.tmp tool.out\nexec sleep 60\n", f);
	fclose(f);
	cr_assert_eq(chmod(path_in("bin/sb-tool"), 0755), 0);
	f = fopen(path_in("local.sh"), "w");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\necho local > local.out\nexec sleep 60\n", f);
	fclose(f);
	cr_assert_eq(chmod(path_in("local.sh"), 0755), 0);
	f = fopen(path_in("plain.sh"), "w");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\n", f);
	fclose(f);

	sb_procs *p = procs_new(20, 0, 0);
	char pathvar[600];
	snprintf(pathvar, sizeof(pathvar), "PATH=/nonexistent:%s/bin:/usr/bin:/bin", tmpdir);
	const char *tool[] = {"sb-tool"};
	const char *tool_env[] = {pathvar};
	const char *local[] = {"./local.sh"};
	const char *plain[] = {"./plain.sh"};
	sb_proc_spec s[] = {SPEC("tool", tool, tool_env),
			    {.name = "local", .argv = local, .argc = 1, .cwd = tmpdir},
			    {.name = "plain", .argv = plain, .argc = 1, .cwd = tmpdir}};
	set_ok(p, s, 3, NULL);
	cr_assert(run_until(file_exists, path_in("tool.out"), 5000), "%s", logs.data);
	struct file_is l = {path_in("local.out"), "local\n"};
	cr_assert(run_until(file_has, &l, 5000), "%s", logs.data);
	struct count_of c = {p, "plain", 1};
	cr_assert(run_until(failed_n, &c, 5000), "%s", logs.data);
	cr_assert_eq(info(p, "plain").starts, 0);
	cr_assert_not_null(strstr(logs.data, "plain: cannot start ./plain.sh: permission denied"),
			   "%s", logs.data);
	/* the command runs as the pid the manager knows (and signals) */
	cr_assert_eq(read_pid(path_in("tool.out")), info(p, "tool").pid);
	finish(p);
}

/* A script without "#!" is run by /bin/sh, as execvp runs it: the command
 * used to be started by libuv's execvp, and such scripts worked. */
Test(procs, a_script_without_a_shebang_runs_under_sh)
{
	FILE *f = fopen(path_in("plain-script"), "w");
	cr_assert_not_null(f);
	fputs("echo \"$0 $1\" > out.tmp && mv out.tmp out\nexec sleep 60\n", f);
	fclose(f);
	cr_assert_eq(chmod(path_in("plain-script"), 0755), 0);
	sb_procs *p = procs_new(20, 0, 0);
	const char *argv[] = {"./plain-script", "arg1"};
	sb_proc_spec s = {.name = "plain", .argv = argv, .argc = 2, .cwd = tmpdir};
	set_ok(p, &s, 1, NULL);
	struct file_is want = {path_in("out"), "./plain-script arg1\n"};
	cr_assert(run_until(file_has, &want, 5000), "%s", logs.data);
	finish(p);
}

/* The edge may be PID 1 (a container's entrypoint): its children are told
 * parent pid 1, which is a parent like any other. */
Test(procs, exec_child_takes_parent_pid_1)
{
	pid_t k = fork();
	cr_assert_geq(k, 0);
	if (k == 0) {
		char *argv[] = {"switchboard", "__exec", "1", "/bin/true", "true", NULL};
		/* our parent is not 1: "already gone", 1; a refused argument is 2 */
		_exit(sb_procs_exec_child(5, argv));
	}
	int st;
	cr_assert_eq(waitpid(k, &st, 0), k);
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), 1);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}
