/* A tiny actor for kernel scenarios: performs one operation and prints the
 * errno it got (0 on success). Compiled by the test into the paths a policy's
 * `binaries:` selector names, so the acting executable is a real file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "open") == 0) {
		int fd = open(argv[2], argv[3][0] == 'w' ? O_WRONLY : O_RDONLY);
		printf("%d\n", fd < 0 ? errno : 0);
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
	fprintf(stderr, "usage: sn-op open PATH r|w | open-loop PATH N\n");
	return 2;
}
