/*
 * The part of `berth init` that must run before the Go runtime starts threads.
 *
 * A process joins a cgroup most cheaply by writing "0" to a v1 hierarchy's "tasks" file
 * itself: that moves one thread and does not wait for an RCU grace period as a whole-process
 * move through cgroup.procs does (~0.1 ms against ~5-8 ms here). It is only a whole-process
 * move while the process has one thread, which is true only here, before Go's runtime starts.
 *
 * The parent opens the files and passes their descriptors in _BERTH_CGROUP_FDS ("5,6,7").
 * Errors are handed to the Go side in _BERTH_NSENTER_ERROR, which reports them over the init
 * pipe like any other failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fail(const char *what, int fd, int err)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "nsenter: %s (fd %d): %s", what, fd, strerror(err));
	setenv("_BERTH_NSENTER_ERROR", msg, 1);
}

/* joinCgroups writes "0" into each passed cgroup file, then closes it. */
static void joinCgroups(const char *list)
{
	char *end;
	while (*list) {
		long fd = strtol(list, &end, 10);
		if (end == list)
			return;
		if (write((int)fd, "0", 1) != 1)
			fail("joining cgroup", (int)fd, errno);
		close((int)fd);
		list = (*end == ',') ? end + 1 : end;
	}
}

void berthWaitExec(int argc, char **argv, char **envp);

/* glibc passes argc, argv and envp to constructors. */
__attribute__((constructor)) static void nsenter(int argc, char **argv, char **envp)
{
	if (argc > 0 && strcmp(argv[0], "berth-wait") == 0)
		berthWaitExec(argc, argv, envp); /* does not return */
	const char *fds = getenv("_BERTH_CGROUP_FDS");
	if (fds)
		joinCgroups(fds);
}
