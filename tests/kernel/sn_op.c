/* A tiny actor for kernel scenarios: performs one operation and prints the
 * errno it got (0 on success). Compiled by the test into the paths a policy's
 * `binaries:` selector names, so the acting executable is a real file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

/* One IORING_OP_OPENAT through raw io_uring system calls (no liburing):
 * returns the fd or -errno from the completion, or -errno of the setup.
 * ASYNC sets IOSQE_ASYNC: the open runs in an io-wq worker thread. */
static int uring_openat(const char *path, int flags, int async)
{
	struct io_uring_params p;
	struct io_uring_sqe *sqes, *sqe;
	struct io_uring_cqe *cqes;
	unsigned *sq_tail, *sq_array, *cq_head, sq_mask, cq_mask;
	char *sq, *cq;
	int ring, res;

	memset(&p, 0, sizeof(p));
	ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return -errno;
	sq = mmap(0, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
	sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return -errno;
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

	sqe = &sqes[0];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_OPENAT;
	sqe->fd = AT_FDCWD;
	sqe->addr = (unsigned long)path;
	sqe->open_flags = flags;
	sqe->flags = async ? IOSQE_ASYNC : 0;
	sq_array[*sq_tail & sq_mask] = 0;
	__atomic_store_n(sq_tail, *sq_tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	res = cqes[__atomic_load_n(cq_head, __ATOMIC_ACQUIRE) & cq_mask].res;
	close(ring);
	return res;
}

/* connect(2) to ADDR PORT over tcp or udp: 0 or the errno, -1 for a bad address. */
static int do_connect(const char *addr, const char *port, const char *proto)
{
	struct sockaddr_storage ss = {};
	socklen_t len;
	int fd, rc;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(atoi(port));
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(atoi(port));
		len = sizeof(*in6);
	} else {
		return -1;
	}
	fd = socket(ss.ss_family, strcmp(proto, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&ss, len);
	rc = rc < 0 ? errno : 0;
	close(fd);
	return rc;
}

static char **thread_args;

static void *connect_thread(void *result)
{
	*(int *)result = do_connect(thread_args[0], thread_args[1], thread_args[2]);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "unlink-self") == 0) {
		/* Remove our own executable, then do the rest: /proc/PID/exe can
		 * only say "PATH (deleted)" from now on. */
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n < 0)
			return 3;
		self[n] = 0;
		if (unlink(self) < 0)
			return 3;
		argv++;
		argc--;
	}
	if (argc == 4 && strcmp(argv[1], "open") == 0) {
		int flags = strcmp(argv[3], "rw") == 0 ? O_RDWR : argv[3][0] == 'w' ? O_WRONLY : O_RDONLY;
		int fd = open(argv[2], flags);

		printf("%d\n", fd < 0 ? errno : 0);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
		/* exec PATH [ARGS...]: PATH runs with argv PATH ARGS... */
		fflush(stdout);
		execv(argv[2], argv + 2);
		printf("%d\n", errno);  /* only reached when exec failed */
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "exec-deleted") == 0) {
		/* exec-deleted PATH: open PATH, unlink it, run it by /proc/self/fd/N
		 * (a file with no name in any directory, identity unchanged) */
		char proc[64];
		char *args[] = { argv[2], NULL };
		int fd = open(argv[2], O_RDONLY);

		if (fd < 0 || unlink(argv[2]) < 0) {
			printf("%d\n", errno);
			return 0;
		}
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		fflush(stdout);
		execv(proc, args);
		printf("%d\n", errno);  /* only reached when exec failed */
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "connect") == 0) {
		int rc = do_connect(argv[2], argv[3], argv[4]);

		if (rc < 0)
			return 2;
		printf("%d\n", rc);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "fork-connect") == 0) {
		/* A forked child connects and exits at once: prints "CHILD_PID ERRNO". */
		int status, fds[2], rc = -1;
		pid_t child;

		if (pipe(fds) < 0)
			return 3;
		child = fork();
		if (child < 0)
			return 3;
		if (child == 0) {
			rc = do_connect(argv[2], argv[3], argv[4]);
			if (write(fds[1], &rc, sizeof(rc)) != sizeof(rc))
				_exit(3);
			_exit(0);
		}
		if (read(fds[0], &rc, sizeof(rc)) != sizeof(rc))
			return 3;
		waitpid(child, &status, 0);
		printf("%d %d\n", (int)child, rc);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "thread-connect") == 0) {
		/* A second thread connects: prints the errno. */
		pthread_t t;
		int rc = -1;

		thread_args = argv + 2;
		if (pthread_create(&t, NULL, connect_thread, &rc) != 0 || pthread_join(t, NULL) != 0)
			return 3;
		printf("%d\n", rc);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "wait-connect") == 0) {
		/* Print "ready", connect after a line on stdin, print the errno,
		 * then stay alive until stdin closes. */
		char line[16];
		int rc;

		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		rc = do_connect(argv[2], argv[3], argv[4]);
		printf("%d\n", rc);
		fflush(stdout);
		while (fgets(line, sizeof(line), stdin))
			;
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "open-loop") == 0) {
		/* Open PATH N times as fast as possible: an alert flood. */
		long n = atol(argv[3]), failed = 0;

		for (long i = 0; i < n; i++) {
			int fd = open(argv[2], O_RDONLY);

			if (fd < 0)
				failed++;
			else
				close(fd);
		}
		printf("%ld\n", failed);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "uring-open") == 0) {
		/* uring-open PATH r|w async|inline: prints the errno (0: opened) */
		int res = uring_openat(argv[2], argv[3][0] == 'w' ? O_WRONLY : O_RDONLY, strcmp(argv[4], "async") == 0);

		printf("%d\n", res < 0 ? -res : 0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "truncate") == 0) {
		printf("%d\n", truncate(argv[2], 0) < 0 ? errno : 0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "ftruncate-later") == 0) {
		/* Open PATH for writing now, print "ready", wait for a line on
		 * stdin, then ftruncate the fd opened before: prints the errno. */
		char line[16];
		int fd = open(argv[2], O_WRONLY);

		if (fd < 0) {
			printf("open %d\n", errno);
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		printf("%d\n", ftruncate(fd, 0) < 0 ? errno : 0);
		return 0;
	}
	fprintf(stderr, "usage: sn-op [unlink-self] open PATH r|w|rw | exec PATH [ARGS...] | exec-deleted PATH | connect ADDR PORT tcp|udp"
		" | fork-connect ADDR PORT tcp|udp | thread-connect ADDR PORT tcp|udp | wait-connect ADDR PORT tcp|udp"
		" | open-loop PATH N | uring-open PATH r|w async|inline | truncate PATH | ftruncate-later PATH\n");
	return 2;
}
