/* Latency of one operation, timed in C so that no interpreter is measured.
 *
 *   sn_lat open PATH N          open(PATH, O_RDONLY) + close
 *   sn_lat exec PATH N          fork + execve(PATH, {"true"}) + waitpid
 *   sn_lat connect4 N           TCP connect() to a listener on 127.0.0.1
 *   sn_lat connect6 N           TCP connect() to a listener on ::1
 *   sn_lat mkfiles DIR N PER    create DIR/dK/fI for I < N (PER files per dK)
 *
 * Each timed op is bracketed by clock_gettime(CLOCK_MONOTONIC); N/10 untimed
 * warm-up ops come first. Prints one JSON object: n, p50, p90, p99, mean, min
 * in nanoseconds. connect times connect() alone: the accept and the closes
 * happen outside the timed region.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "sn_lat: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *s, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);

	return s[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void report(uint64_t *s, long n)
{
	double sum = 0;
	long i;

	qsort(s, (size_t)n, sizeof(*s), cmp_u64);
	for (i = 0; i < n; i++)
		sum += (double)s[i];
	printf("{\"n\": %ld, \"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"mean\": %.0f, \"min\": %llu}\n", n,
	       (unsigned long long)pct(s, n, 0.50), (unsigned long long)pct(s, n, 0.90),
	       (unsigned long long)pct(s, n, 0.99), sum / (double)n, (unsigned long long)s[0]);
}

static uint64_t op_open(const char *path)
{
	uint64_t t0 = now_ns();
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path);
	close(fd);
	return now_ns() - t0;
}

static uint64_t op_exec(const char *path)
{
	char *argv[] = { "true", NULL };
	char *envp[] = { NULL };
	uint64_t t0 = now_ns();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(path, argv, envp);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sn_lat: %s exited with status %d\n", path, status);
		exit(1);
	}
	return now_ns() - t0;
}

struct listener {
	int fd;
	int family;
	struct sockaddr_storage addr;
	socklen_t len;
};

static void listen_on(struct listener *l, int family)
{
	int one = 1;

	memset(l, 0, sizeof(*l));
	l->family = family;
	l->fd = socket(family, SOCK_STREAM, 0);
	if (l->fd < 0)
		die("socket");
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&l->addr;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l->len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&l->addr;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		l->len = sizeof(*a);
	}
	if (bind(l->fd, (struct sockaddr *)&l->addr, l->len) < 0)
		die("bind");
	if (listen(l->fd, 128) < 0)
		die("listen");
	if (getsockname(l->fd, (struct sockaddr *)&l->addr, &l->len) < 0)
		die("getsockname");
}

static uint64_t op_connect(struct listener *l)
{
	struct linger lg = { 1, 0 };  /* close with RST: no TIME_WAIT pile-up */
	int c = socket(l->family, SOCK_STREAM, 0), a;
	uint64_t t0, dt;

	if (c < 0)
		die("socket");
	t0 = now_ns();
	if (connect(c, (struct sockaddr *)&l->addr, l->len) < 0)
		die("connect");
	dt = now_ns() - t0;
	a = accept(l->fd, NULL, NULL);
	if (a < 0)
		die("accept");
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);
	close(a);
	return dt;
}

static int mkfiles(const char *dir, long n, long per)
{
	char path[4096];
	long i;

	for (i = 0; i < n; i++) {
		int fd;

		if (i % per == 0) {
			snprintf(path, sizeof(path), "%s/d%ld", dir, i / per);
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				die(path);
		}
		snprintf(path, sizeof(path), "%s/d%ld/f%ld", dir, i / per, i);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			die(path);
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct listener l;
	const char *mode = argc > 1 ? argv[1] : "";
	const char *path = NULL;
	long n, i, warm;
	uint64_t *s;

	if (strcmp(mode, "mkfiles") == 0 && argc == 5)
		return mkfiles(argv[2], atol(argv[3]), atol(argv[4]));
	if ((strcmp(mode, "open") == 0 || strcmp(mode, "exec") == 0) && argc == 4) {
		path = argv[2];
		n = atol(argv[3]);
	} else if ((strcmp(mode, "connect4") == 0 || strcmp(mode, "connect6") == 0) && argc == 3) {
		n = atol(argv[2]);
		listen_on(&l, mode[7] == '4' ? AF_INET : AF_INET6);
	} else {
		fprintf(stderr, "usage: sn_lat open|exec PATH N | connect4|connect6 N | mkfiles DIR N PER\n");
		return 2;
	}
	if (n < 1)
		return 2;
	s = calloc((size_t)n, sizeof(*s));
	if (!s)
		die("calloc");
	warm = n / 10;
	for (i = -warm; i < n; i++) {
		uint64_t dt = mode[0] == 'o' ? op_open(path) : mode[0] == 'e' ? op_exec(path) : op_connect(&l);

		if (i >= 0)
			s[i] = dt;
	}
	report(s, n);
	return 0;
}
