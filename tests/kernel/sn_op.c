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
#include <sys/socket.h>
#include <unistd.h>

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
	fprintf(stderr, "usage: sn-op open PATH r|w|rw | exec PATH | connect ADDR PORT tcp|udp | open-loop PATH N\n");
	return 2;
}
