/*
 * The part of `berth init` that must run before the Go runtime starts threads.
 *
 * A process joins a cgroup most cheaply by writing "0" to a v1 hierarchy's "tasks" file
 * itself: that moves one thread and does not wait for an RCU grace period as a whole-process
 * move through cgroup.procs does (~0.1 ms against ~5-8 ms here). It is only a whole-process
 * move while the process has one thread, which is true only here, before Go's runtime starts.
 *
 * The parent opens the files and passes their descriptors in _BERTH_CGROUP_FDS ("5,6,7").
 *
 * It also joins the namespaces the kernel lets only a single-threaded process enter (user,
 * mnt, time), listed in _BERTH_NS_JOIN ("user:7,mnt:8", in order: the user namespace first
 * but for namespaces it does not own, see namespaces.Handles.orderInit), and then creates the
 * namespaces listed in _BERTH_NS_UNSHARE, which must belong to a joined user namespace.
 * Rootless, the new user namespace is unshared here too, first, and its maps are written by
 * `berth create` while this process waits (waitForMaps).
 * See namespaces.Plan for who does which namespace.
 *
 * Errors are handed to the Go side in berthNsError (nsenter.Error), which reports them over
 * the init pipe like any other failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "errtext.h"

/*
 * berthNsError holds the first failure, for the Go side (nsenter.Error), which refuses to go
 * on. Not an environment variable: Go reads its environment from the process's initial one,
 * so a setenv made here would never be seen, and the init would carry on in the wrong
 * namespaces.
 */
char berthNsError[256];

/*
 * berthStartedAt is CLOCK_MONOTONIC (ns) when the constructor of any berth process began, so
 * that `--explain`'s step times show the Go runtime's start (nsenter.StartedAt). In an init it
 * is 0 once a time namespace was joined or unshared here: it was read on the clock it left.
 */
long long berthStartedAt;

/*
 * The Go runtime sizes GOMAXPROCS from the process's CPU affinity before any Go code runs, and
 * with more than one P it starts two threads more while it starts (a spinning M for its first
 * goroutine, another when the locked main goroutine waits in gcenable): about 0.3 ms of CPU and
 * 40 page faults of each berth process, most of a short-lived `berth run` or `create`.
 * pinForRuntimeStart pins the process to the CPU it is on, so the runtime starts with one P;
 * berthAffinity keeps the affinity it had, and nsenter.go's package initialiser gives it back
 * to every thread, before main and before any package that imports nsenter (libcontainer and
 * up, where processes are started) is initialised, so nothing berth starts (a container, a
 * hook) inherits the pin.
 */
cpu_set_t berthAffinity;
int berthPinned;

static void pinForRuntimeStart(void)
{
	if (getenv("GOMAXPROCS"))
		return; /* set by the caller: the runtime takes it, whatever the affinity */
	if (getenv("_BERTH_INITPIPE"))
		return; /* an init or an exec'd process: its threads' ids may not be its pid namespace's */
	/*
	 * Unpinning lists the threads in /proc/self/task: only where that /proc is this pid
	 * namespace's, so that the ids listed are those sched_setaffinity takes.
	 */
	char self[24];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = 0;
	if (atoi(self) != getpid())
		return;
	if (sched_getaffinity(0, sizeof(berthAffinity), &berthAffinity) < 0 || CPU_COUNT(&berthAffinity) < 2)
		return;
	int cpu = sched_getcpu();
	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &berthAffinity))
		for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &berthAffinity); cpu++)
			;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0)
		berthPinned = 1;
}

static void fail(const char *what, int fd, int err)
{
	if (berthNsError[0])
		return; /* the first error is the one worth reporting */
	if (fd < 0)
		snprintf(berthNsError, sizeof(berthNsError), "nsenter: %s: %s", what, berthErrText(err));
	else
		snprintf(berthNsError, sizeof(berthNsError), "nsenter: %s (fd %d): %s", what, fd, berthErrText(err));
}

/*
 * reportAndExit hands berthNsError to `berth create` or `berth exec` on the init pipe itself,
 * as the Go side would ({"type":"error"}), and exits. For a process that was to fork
 * (namespaces.Plan.Forks): once it has joined or unshared a pid namespace, the kernel refuses
 * it a thread (its children's pid namespace is not its own), so the Go runtime cannot start to
 * say what went wrong; the parent, in forkedInitPid, reads this instead of a pid.
 */
static void reportAndExit(void)
{
	const char *pipeEnv = getenv("_BERTH_INITPIPE");
	int pipeFd = pipeEnv ? atoi(pipeEnv) : -1;
	char msg[sizeof(berthNsError) * 2 + 32];
	size_t n = (size_t)snprintf(msg, sizeof(msg), "{\"type\":\"error\",\"msg\":\"");
	for (const char *c = berthNsError; *c && n < sizeof(msg) - 4; c++) {
		if (*c == '"' || *c == '\\')
			msg[n++] = '\\';
		msg[n++] = (unsigned char)*c < 0x20 ? ' ' : *c;
	}
	msg[n++] = '"';
	msg[n++] = '}';
	msg[n++] = '\n';
	_exit(write(pipeFd, msg, n) == (ssize_t)n ? 1 : 2);
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

/*
 * quietRuntimeStart points stderr at /dev/null until InitMain puts it back (from the
 * descriptor in berthSavedStderr; Go's os.Getenv does not see a setenv made here): a Go runtime that cannot start its threads in a
 * cgroup whose pids.max is reached (ours or a parent's) dies before main with a dump of
 * registers and goroutines on the container's stderr. berth reports the failure on its own
 * stderr, on one line, naming the pids.max.
 */
int berthSavedStderr = -1;

static void quietRuntimeStart(void)
{
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (saved < 0)
		return;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 2) < 0) {
		if (null >= 0)
			close(null);
		close(saved);
		return;
	}
	close(null);
	berthSavedStderr = saved;
}

/*
 * joinNamespaces enters each "type:fd" of the list in order. After the user namespace it
 * becomes root there, as runc does, so that what follows acts with the namespace's
 * privilege and creates files owned by a mapped id.
 */
static int joinNamespaces(const char *list)
{
	char name[16];
	while (*list) {
		const char *colon = strchr(list, ':');
		if (!colon || colon - list >= (long)sizeof(name))
			return -1;
		memcpy(name, list, colon - list);
		name[colon - list] = 0;
		char *end;
		long fd = strtol(colon + 1, &end, 10);
		if (setns((int)fd, 0) < 0) {
			char what[48];
			snprintf(what, sizeof(what), "joining %s namespace", name);
			fail(what, (int)fd, errno);
			return -1;
		}
		close((int)fd);
		if (strcmp(name, "user") == 0) {
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
				fail("becoming root in the joined user namespace (is 0 mapped?)", (int)fd, errno);
				return -1;
			}
		}
		list = (*end == ',') ? end + 1 : end;
	}
	return 0;
}

/*
 * waitForMaps (rootless, namespaces.Plan.WaitForMaps): an ordinary user's process may not
 * write more than its own id into its uid_map, but the setuid helpers newuidmap/newgidmap
 * may, for a process of the same user. So this process makes its user namespace, asks
 * `berth create` on the init pipe ({"type":"maps"}) to run them (namespaces.WriteIDMaps) and
 * waits for {"type":"mapped"}; read a byte at a time, so that nothing after the newline (the
 * init's config, for the Go side) is taken. Then it becomes root in the namespace, with no
 * supplementary groups when setgroups is allowed (with "deny", which the kernel requires of a
 * map written without the helper, the caller's groups stay, as under runc).
 */
static int waitForMaps(int pipeFd)
{
	if (unshare(CLONE_NEWUSER) < 0) {
		fail("unsharing the user namespace", -1, errno);
		return -1;
	}
	static const char ask[] = "{\"type\":\"maps\"}\n";
	if (write(pipeFd, ask, sizeof(ask) - 1) != (ssize_t)(sizeof(ask) - 1)) {
		fail("asking for the user namespace's maps", pipeFd, errno);
		return -1;
	}
	char reply[64];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(pipeFd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1) {
			fail("waiting for the user namespace's maps", pipeFd, r < 0 ? errno : EPIPE);
			return -1;
		}
		if (c == '\n')
			break;
		if (n < sizeof(reply) - 1)
			reply[n++] = c;
	}
	reply[n] = 0;
	if (!strstr(reply, "\"mapped\"")) {
		fail("waiting for the user namespace's maps: unexpected reply", pipeFd, EPROTO);
		return -1;
	}
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		fail("becoming root in the new user namespace (is 0 mapped?)", -1, errno);
		return -1;
	}
	char sg[8] = "";
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, sg, sizeof(sg) - 1);
		sg[r > 0 ? r : 0] = 0;
		close(fd);
	}
	if (strncmp(sg, "allow", 5) == 0 && setgroups(0, NULL) < 0) {
		fail("dropping supplementary groups in the new user namespace", -1, errno);
		return -1;
	}
	return 0;
}

/*
 * timensOffsetsFd is /proc/self/timens_offsets, opened before the process turns
 * non-dumpable (then its /proc files belong to root of the host, which a joined user
 * namespace may not map); the kernel checks the writer's privilege against the opener's.
 */
static int timensOffsetsFd = -1;

/*
 * unshareAndFork creates the namespaces that must belong to a joined (or, rootless, a new)
 * user namespace. New pid and time namespaces, and a joined pid namespace (forkPid), only
 * receive the caller's children, so then it forks: the child, made with CLONE_PARENT, is a
 * child of `berth create` like the caller, and goes on to be the init; the caller reports the
 * child's pid on the init pipe and exits.
 */
static void unshareAndFork(int flags, int forkPid)
{
	const char *pipeEnv = getenv("_BERTH_INITPIPE");
	int pipeFd = pipeEnv ? atoi(pipeEnv) : -1;
	if ((flags & CLONE_NEWUSER) && waitForMaps(pipeFd) < 0)
		return;
	flags &= ~CLONE_NEWUSER;
	if (flags && unshare(flags) < 0) {
		fail("unsharing namespaces (cgroup, or those after a joined user namespace)", -1, errno);
		return;
	}
	if (!forkPid && !(flags & (CLONE_NEWPID | CLONE_NEWTIME)))
		return;
	const char *offs = getenv("_BERTH_NS_OFFSETS");
	if (offs) {
		int fd = timensOffsetsFd;
		if (fd < 0)
			fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, offs, strlen(offs)) != (ssize_t)strlen(offs)) {
			fail("linux.timeOffsets: writing /proc/self/timens_offsets", fd, errno);
			return;
		}
		close(fd);
		timensOffsetsFd = -1;
	}
	pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (child < 0) {
		fail("forking the init into its pid namespace", -1, errno);
		return;
	}
	if (child == 0) {
		/* Pdeathsig is not inherited: die with `berth create` until handed over. */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		return;
	}
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "{\"type\":\"pid\",\"pid\":%d}\n", child);
	_exit(write(pipeFd, msg, n) == n ? 0 : 1);
}

void berthWaitExec(int argc, char **argv, char **envp);
void berthRunPlan(int argc, char **argv);

static void nsenterStages(int argc, char **argv, char **envp);

#ifndef __GLIBC__
extern char **environ;

/*
 * initialArgs finds argc and argv where the C library passes constructors nothing (musl):
 * the process's initial stack holds argc, argv[0..argc-1], NULL, then the environment, and
 * environ still points at that environment when constructors run. Walking back from it, the
 * first word equal to the number of pointers passed over is argc (no pointer is that small).
 */
static void initialArgs(int *argc, char ***argv)
{
	char **end = environ - 1; /* argv's terminating NULL */
	long n = 0;
	while ((long)end[-1 - n] != n)
		n++;
	*argc = (int)n;
	*argv = end - n;
}
#endif

/*
 * glibc passes argc, argv and envp to constructors (musl does not: initialArgs). An init
 * whose container berth planned (_BERTH_PLAN, libcontainer/plan.go) is built by the C stage
 * (plan.c) right after the namespaces, and never returns to start a Go runtime.
 */
__attribute__((constructor)) static void nsenter(int argc, char **argv, char **envp)
{
#ifndef __GLIBC__
	initialArgs(&argc, &argv);
	envp = environ;
#endif
	nsenterStages(argc, argv, envp);
	if (getenv("_BERTH_PLAN") && getenv("_BERTH_INITPIPE"))
		berthRunPlan(argc, argv);
	pinForRuntimeStart(); /* a Go runtime starts next */
}

static void nsenterStages(int argc, char **argv, char **envp)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		berthStartedAt = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	/* A user namespace holder for idmapped mounts (libcontainer/idmap.go): it only waits. */
	if (argc > 0 && strcmp(argv[0], "berth-userns") == 0)
		for (;;)
			pause();
	if (argc > 0 && strcmp(argv[0], "berth-wait") == 0)
		berthWaitExec(argc, argv, envp); /* does not return */
	if (!getenv("_BERTH_INITPIPE"))
		return; /* not an init: the CLI, or a program run by a test */
	/*
	 * Die with `berth create` until it hands us over. Should it already be gone, the init
	 * pipe is at EOF and the init fails before it does anything.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	const char *join = getenv("_BERTH_NS_JOIN");
	if (join && *join) {
		if (getenv("_BERTH_NS_OFFSETS"))
			timensOffsetsFd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		/*
		 * Joining a container's namespaces (exec, or a create that joins some): a create
		 * that joins a pid namespace is visible there from its clone (its parent thread
		 * joined it; an exec joins it here and forks after the mount namespace, see
		 * namespaces.Plan.PidByInit) and, after a joined user namespace, no more privileged there than
		 * the container's processes. Not dumpable, they can neither ptrace it nor reach its
		 * /proc/PID/root, cwd or fds (the host's, until the mount namespace is joined)
		 * before it execs the user's program (which makes it dumpable again). InitMain
		 * repeats this for the Go side.
		 */
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
			fail("making the process non-dumpable before joining namespaces", -1, errno);
			return;
		}
	}
	const char *fds = getenv("_BERTH_CGROUP_FDS");
	if (fds) {
		joinCgroups(fds);
		quietRuntimeStart();
	}
	const char *flags = getenv("_BERTH_NS_UNSHARE");
	const char *forkPid = getenv("_BERTH_NS_FORKPID");
	int f = flags ? (int)strtol(flags, NULL, 10) : 0;
	int forks = forkPid || (f & (CLONE_NEWPID | CLONE_NEWTIME));
	if (join && *join && joinNamespaces(join) < 0) {
		if (forks)
			reportAndExit();
		return;
	}
	if (join && strstr(join, "time:"))
		berthStartedAt = 0; /* read on the clock of the time namespace it left */
	if (flags || forkPid) {
		if (f & CLONE_NEWTIME)
			berthStartedAt = 0;
		unshareAndFork(f, forkPid != NULL);
		if (berthNsError[0] && forks)
			reportAndExit();
	}
}
