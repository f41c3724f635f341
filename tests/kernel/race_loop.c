/* Retries two opens back to back until SIGTERM: DENIED must never open and
 * ALLOWED must never fail with EPERM, whatever reloads happen meanwhile.
 * Prints "attempts denied_opened allowed_eperm" at exit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	long attempts = 0, denied_opened = 0, allowed_eperm = 0;

	if (argc != 3)
		return 2;
	signal(SIGTERM, on_term);
	while (!stop) {
		int fd = open(argv[1], O_RDONLY);

		if (fd >= 0) {
			denied_opened++;
			close(fd);
		}
		fd = open(argv[2], O_RDONLY);
		if (fd >= 0)
			close(fd);
		else if (errno == EPERM)
			allowed_eperm++;
		attempts++;
	}
	printf("%ld %ld %ld\n", attempts, denied_opened, allowed_eperm);
	return 0;
}
