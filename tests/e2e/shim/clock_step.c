/*
 * LD_PRELOAD shim for end-to-end tests: CLOCK_REALTIME is shifted by the
 * number of seconds written in the file SB_CLOCK_STEP_FILE names (read at
 * every call; missing or empty: no shift), so that a test can step the wall
 * clock of a running process as NTP or an operator would
 * (tests/e2e/test_lifecycle_review.py). time() and gettimeofday() read the
 * same shifted clock, so that a process sees one wall clock whichever it
 * calls. Every other clock is left alone.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static long step_seconds(void)
{
	const char *path = getenv("SB_CLOCK_STEP_FILE");
	char buf[32];
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static clock_gettime_fn real;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
	int r = real(id, ts);
	if (r == 0 && id == CLOCK_REALTIME)
		ts->tv_sec += step_seconds();
	return r;
}

time_t time(time_t *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;
	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}
