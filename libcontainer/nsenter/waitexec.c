/*
 * The waiting stage of a created container, in C so that the process that sits between
 * `berth create` and `berth start` costs about one megabyte instead of a Go runtime's eight.
 *
 * The Go init builds the whole container, drops to the user's credentials, then re-executes
 * the berth binary as
 *     berth-wait <procfd-dir> <fifo-fd> <preserved-fds> <program> <argv0> <argv1> ...
 * with the user's environment. Before any Go code runs, this constructor blocks opening the
 * exec fifo (until `berth start` opens the other end), writes one byte so `start` knows
 * (and keeps the fifo open until its execve closes it, which `start` waits for),
 * marks every fd past stdio and the preserved ones close-on-exec, and executes the program.
 * Executing twice changes nothing about credentials: the kernel's capability rules applied to
 * the same sets give the same sets again, and no_new_privs is inherited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "errtext.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void die(const char *what)
{
	fprintf(stderr, "berth: waiting init: %s: %s\n", what, berthErrText(errno));
	_exit(127);
}

void berthWaitExec(int argc, char **argv, char **envp)
{
	/* execve made us dumpable again: nothing in the container may ptrace us yet. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (argc < 6)
		_exit(127);
	int dirfd = atoi(argv[1]);
	int fifo = openat(dirfd, argv[2], O_WRONLY | O_CLOEXEC);
	if (fifo < 0)
		die("opening exec fifo");
	if (write(fifo, "0", 1) != 1)
		die("writing exec fifo");
	/* fifo stays open, close-on-exec: `berth start` reads end-of-file once execve succeeded. */
	close(dirfd);
	close(atoi(argv[2]));
	unsigned int first = 3 + (unsigned int)atoi(argv[3]);
	/*
	 * The Go init marked everything close-on-exec before installing seccomp; this repeats it
	 * for what came since, and a profile that denies close_range (ENOSYS/EPERM) is fine.
	 */
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS && errno != EPERM)
		die("close_range");
	execve(argv[4], &argv[5], envp);
	die(argv[4]);
}
