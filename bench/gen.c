// SPDX-License-Identifier: Apache-2.0
/*
 * Rate-limited event generators for the Tapio benchmarks.
 *
 *   gen connect RATE COUNT SECONDS JOBS PORT    refused connects to 127.0.0.1:PORT
 *   gen accept  RATE COUNT SECONDS JOBS PORT    successful connects to a listener of
 *                                               its own on 127.0.0.1:PORT (+JOB), each
 *                                               accepted, then both ends closed
 *   gen fork    RATE COUNT SECONDS JOBS         fork + _exit(0) + waitpid
 *   gen io      RATE COUNT SECONDS JOBS DEVICE  O_DIRECT 4 KiB reads, random offsets
 *   gen hold    N PORT                          N established loopback connections to a
 *                                               listener on PORT, held until stdin closes
 *
 * RATE is events per second over all JOBS (0 = as fast as possible); the
 * run stops after COUNT events (0 = no limit) or SECONDS (0 = no limit),
 * whichever comes first. JOBS worker processes share the rate, so JOBS is
 * also the I/O queue depth. Prints one line on stdout:
 *   events=N seconds=S rate=R errors=E
 * where errors are events that did not behave as intended (a connect that
 * was not refused, a failed read).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleeps until event `i` is due at `rate` per second from `start`; sleeps
 * only when at least 200 us ahead, so high rates go in short bursts. */
static void pace(uint64_t start, uint64_t i, double rate)
{
	uint64_t due, now;
	struct timespec ts;

	if (rate <= 0)
		return;
	due = start + (uint64_t)((double)i * 1e9 / rate);
	now = now_ns();
	if (due <= now + 200000)
		return;
	ts.tv_sec = (time_t)(due / 1000000000ull);
	ts.tv_nsec = (long)(due % 1000000000ull);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

struct job {
	const char *mode;
	double rate;       /* this worker's share */
	uint64_t count;    /* this worker's share, 0 = no limit */
	uint64_t deadline; /* monotonic ns, 0 = none */
	const char *arg;
	unsigned seed;
};

static int one_connect(struct sockaddr_in *a)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int rc, err;

	if (s < 0)
		return -1;
	rc = connect(s, (struct sockaddr *)a, sizeof(*a));
	err = errno;
	close(s);
	return (rc < 0 && err == ECONNREFUSED) ? 0 : -1;
}

/* One connect to listener l, accepted, client closed first (the client
 * goes FIN_WAIT -> TIME_WAIT, the server side CLOSE_WAIT -> LAST_ACK). */
static int one_accept(int l, struct sockaddr_in *a)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int c, rc;

	if (s < 0)
		return -1;
	rc = connect(s, (struct sockaddr *)a, sizeof(*a));
	c = rc ? -1 : accept(l, NULL, NULL);
	close(s);
	if (c >= 0)
		close(c);
	return c >= 0 ? 0 : -1;
}

static int one_fork(void)
{
	int status;
	pid_t p = fork();

	if (p < 0)
		return -1;
	if (p == 0)
		_exit(0);
	return waitpid(p, &status, 0) == p ? 0 : -1;
}

/* Runs one worker; returns events done, errors in *errors. */
static uint64_t run(const struct job *j, uint64_t *errors)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	uint64_t i, start = now_ns(), blocks = 0;
	void *buf = NULL;
	int fd = -1, one = 1;

	*errors = 0;
	if (!strcmp(j->mode, "connect")) {
		a.sin_port = htons((uint16_t)atoi(j->arg));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (!strcmp(j->mode, "accept")) {
		a.sin_port = htons((uint16_t)(atoi(j->arg) + j->seed - 12345u));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128)) {
			perror("gen accept: listen");
			exit(2);
		}
	} else if (!strcmp(j->mode, "io")) {
		uint64_t bytes = 0;

		fd = open(j->arg, O_RDONLY | O_DIRECT);
		if (fd < 0 || ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			perror(j->arg);
			exit(2);
		}
		blocks = bytes / 4096;
		buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED || blocks == 0) {
			fprintf(stderr, "gen: no buffer or empty device\n");
			exit(2);
		}
	}
	for (i = 0; !j->count || i < j->count; i++) {
		int rc;

		if (j->deadline && (i & 15) == 0 && now_ns() >= j->deadline)
			break;
		pace(start, i, j->rate);
		if (!strcmp(j->mode, "connect")) {
			rc = one_connect(&a);
		} else if (!strcmp(j->mode, "accept")) {
			rc = one_accept(fd, &a);
		} else if (!strcmp(j->mode, "fork")) {
			rc = one_fork();
		} else {
			off_t off = (off_t)(rand_r((unsigned *)&j->seed) % blocks) * 4096;

			rc = pread(fd, buf, 4096, off) == 4096 ? 0 : -1;
		}
		if (rc)
			(*errors)++;
	}
	if (fd >= 0)
		close(fd);
	return i;
}

static int hold(int n, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int l, i, one = 1;
	char c;

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4096)) {
		perror("gen hold: listen");
		return 2;
	}
	for (i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) {
			perror("gen hold: connect");
			return 2;
		}
		if (accept(l, NULL, NULL) < 0) {
			perror("gen hold: accept");
			return 2;
		}
	}
	printf("held=%d\n", n);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t total = 0, errors = 0, start, count;
	double rate, secs;
	int jobs, k;
	int pipes[64][2];

	if (argc >= 4 && !strcmp(argv[1], "hold"))
		return hold(atoi(argv[2]), atoi(argv[3]));
	if (argc < 6 || (strcmp(argv[1], "fork") && argc < 7)) {
		fprintf(stderr, "usage: gen connect|accept|fork|io RATE COUNT SECONDS JOBS [PORT|DEVICE]\n"
				"       gen hold N PORT\n");
		return 2;
	}
	rate = atof(argv[2]);
	count = strtoull(argv[3], NULL, 10);
	secs = atof(argv[4]);
	jobs = atoi(argv[5]);
	if (jobs < 1 || jobs > 64) {
		fprintf(stderr, "gen: JOBS must be 1..64\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	start = now_ns();
	for (k = 0; k < jobs; k++) {
		struct job j = {
			.mode = argv[1],
			.rate = rate / jobs,
			.count = count ? count / jobs + (k < (int)(count % jobs)) : 0,
			.deadline = secs > 0 ? start + (uint64_t)(secs * 1e9) : 0,
			.arg = argc > 6 ? argv[6] : "",
			.seed = 12345u + (unsigned)k,
		};

		if (jobs > 1 && pipe(pipes[k])) {
			perror("gen: pipe");
			return 2;
		}
		if (jobs == 1) {
			uint64_t e;

			total = run(&j, &e);
			errors = e;
			break;
		}
		if (fork() == 0) {
			uint64_t r[2];

			r[0] = run(&j, &r[1]);
			if (write(pipes[k][1], r, sizeof(r)) != sizeof(r))
				_exit(1);
			_exit(0);
		}
	}
	if (jobs > 1) {
		for (k = 0; k < jobs; k++) {
			uint64_t r[2] = { 0, 0 };

			if (read(pipes[k][0], r, sizeof(r)) == sizeof(r)) {
				total += r[0];
				errors += r[1];
			}
		}
		while (wait(NULL) > 0)
			;
	}
	{
		double s = (double)(now_ns() - start) / 1e9;

		printf("events=%llu seconds=%.6f rate=%.0f errors=%llu\n", (unsigned long long)total, s,
		       (double)total / s, (unsigned long long)errors);
	}
	return 0;
}
