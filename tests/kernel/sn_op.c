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

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "open") == 0) {
		int flags = strcmp(argv[3], "rw") == 0 ? O_RDWR : argv[3][0] == 'w' ? O_WRONLY : O_RDONLY;
		int fd = open(argv[2], flags);

		printf("%d\n", fd < 0 ? errno : 0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "exec") == 0) {
		char *args[] = { argv[2], NULL };

		fflush(stdout);
		execv(argv[2], args);
		printf("%d\n", errno);  /* only reached when exec failed */
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "connect") == 0) {
		struct sockaddr_storage ss = {};
		socklen_t len;
		int udp = strcmp(argv[4], "udp") == 0, fd, rc;
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, argv[2], &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons(atoi(argv[3]));
			len = sizeof(*in4);
		} else if (inet_pton(AF_INET6, argv[2], &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(atoi(argv[3]));
			len = sizeof(*in6);
		} else {
			return 2;
		}
		fd = socket(ss.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
		rc = connect(fd, (struct sockaddr *)&ss, len);
		printf("%d\n", rc < 0 ? errno : 0);
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
	fprintf(stderr, "usage: sn-op open PATH r|w|rw | exec PATH | connect ADDR PORT tcp|udp | open-loop PATH N"
		" | uring-open PATH r|w async|inline | truncate PATH | ftruncate-later PATH\n");
	return 2;
}
