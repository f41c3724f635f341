/* Actor for tests/kernel/test_mmap_exec.py: executable mappings and fileless
 * execution. Each operation prints the errno it got (0 on success); an exec
 * that succeeds prints nothing (the new image runs instead). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* Copy SRC's content into FD. */
static int copy_into(int fd, const char *src)
{
	struct stat st;
	int in = open(src, O_RDONLY);

	if (in < 0 || fstat(in, &st) < 0)
		return -1;
	if (sendfile(fd, in, NULL, st.st_size) != st.st_size)
		return -1;
	close(in);
	return 0;
}

/* A read-only reopen of FD (exec refuses a file open for writing: ETXTBSY). */
static int reopen_ro(int fd)
{
	char proc[64];
	int ro;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ro = open(proc, O_RDONLY | O_CLOEXEC);
	close(fd);
	return ro;
}

static int map_exec(int fd)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);

	return p == MAP_FAILED ? errno : 0;
}

/* execveat(FD, "", AT_EMPTY_PATH) (what fexecve does), or via /proc/self/fd/N. */
static int exec_fd(int fd, int by_proc)
{
	char *argv[] = { "fileless-true", NULL };
	char proc[64];

	fflush(stdout);
	if (by_proc) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		execve(proc, argv, environ);
	} else {
		syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	}
	return errno;
}

static int memfd_of(const char *src)
{
	int fd = memfd_create("sn-fileless", MFD_CLOEXEC);

	if (fd < 0 || copy_into(fd, src) < 0)
		return -1;
	return reopen_ro(fd);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 3 && strcmp(argv[1], "mmap") == 0) {
		/* mmap PATH: map it PROT_READ|PROT_EXEC */
		fd = open(argv[2], O_RDONLY);
		if (fd < 0)
			return 3;
		printf("%d\n", map_exec(fd));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "mprotect") == 0) {
		/* mprotect PATH: map it read-only, then ask for PROT_EXEC */
		void *p;

		fd = open(argv[2], O_RDONLY);
		if (fd < 0)
			return 3;
		p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			printf("map %d\n", errno);
			return 0;
		}
		printf("%d\n", mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0 ? errno : 0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "memfd-exec") == 0) {
		/* memfd-exec SRC: SRC's content in a memfd, run by execveat(AT_EMPTY_PATH) */
		fd = memfd_of(argv[2]);
		if (fd < 0)
			return 3;
		printf("%d\n", exec_fd(fd, 0));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "memfd-proc-exec") == 0) {
		fd = memfd_of(argv[2]);
		if (fd < 0)
			return 3;
		printf("%d\n", exec_fd(fd, 1));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "memfd-mmap") == 0) {
		fd = memfd_of(argv[2]);
		if (fd < 0)
			return 3;
		printf("%d\n", map_exec(fd));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "deleted-exec") == 0) {
		/* deleted-exec PATH: open PATH, unlink it, run it by /proc/self/fd/N */
		fd = open(argv[2], O_RDONLY);
		if (fd < 0 || unlink(argv[2]) < 0)
			return 3;
		printf("%d\n", exec_fd(fd, 1));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "tmpfile-exec") == 0) {
		/* tmpfile-exec DIR SRC: SRC's content in an O_TMPFILE file in DIR, run by fd */
		fd = open(argv[2], O_TMPFILE | O_RDWR, 0755);
		if (fd < 0 || copy_into(fd, argv[3]) < 0)
			return 3;
		fd = reopen_ro(fd);
		if (fd < 0)
			return 3;
		printf("%d\n", exec_fd(fd, 0));
		return 0;
	}
	fprintf(stderr, "usage: sn-mmap mmap|mprotect PATH | memfd-exec|memfd-proc-exec|memfd-mmap SRC"
		" | deleted-exec PATH | tmpfile-exec DIR SRC\n");
	return 2;
}
