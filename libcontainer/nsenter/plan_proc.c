/*
 * The process ops of the init's C stage (plan.h): what the Go init's runInit and
 * dropAndHandOver do around the rootfs (rlimits, hostname, keyring, cwd, the user's
 * credentials and capabilities, no_new_privs, seccomp), then the wait for `berth start` on the
 * exec fifo (the Go init's berth-wait stage, here without an exec before it) and the execve of
 * the user's program.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mountapi.h"
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "plan.h"
#include "errtext.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static char **envp, **argv;
static size_t envc;
static char path[PATH_MAX];
static int cwdDeferred;
static int fdDir = -1;
static int ownArgs; /* argv and envp no longer point into the plan */

/* esc JSON-escapes s into out (for a name or path from the container in a message). */
static const char *esc(const char *s, char *out, size_t n)
{
	size_t j = 0;
	for (; *s && j + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[j++] = '\\';
			out[j++] = (char)c;
		} else if (c < 0x20) {
			j += (size_t)snprintf(out + j, n - j, "\\u%04x", c);
		} else {
			out[j++] = (char)c;
		}
	}
	out[j] = 0;
	return out;
}

static char **readList(struct planReader *r, size_t extra, size_t *count)
{
	size_t n = (size_t)planU64(r);
	if (n > 1 << 20)
		planFailMsg("init plan", "list too long");
	char **l = calloc(n + extra + 1, sizeof(char *));
	if (!l)
		planFailMsg("init plan", "out of memory");
	for (size_t i = 0; i < n; i++)
		l[i] = (char *)planStr(r, NULL);
	if (count)
		*count = n;
	return l;
}

static const char *getEnv(const char *name)
{
	size_t n = strlen(name);
	const char *v = NULL;
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			v = envp[i] + n + 1; /* the last one wins, as in Go's lookPath */
	return v;
}

/* withHome is libcontainer.withHome: HOME from the container's /etc/passwd when env has none. */
static void withHome(uid_t uid)
{
	if (getEnv("HOME"))
		return;
	static char home[PATH_MAX + 8] = "HOME=/";
	/* The image's file, opened by root before the device cgroup applies: only a regular
	 * file is opened (a device node would act on the host's device, a fifo block for ever). */
	struct stat st;
	FILE *f = stat("/etc/passwd", &st) == 0 && S_ISREG(st.st_mode) ? fopen("/etc/passwd", "re") : NULL;
	if (f) {
		enum { maxLine = 64 * 1024 }; /* Go's bufio.Scanner's: a longer line ends the search */
		char *line = malloc(maxLine + 2);
		char want[24];
		snprintf(want, sizeof(want), "%u", (unsigned)uid);
		while (line && fgets(line, maxLine + 2, f)) {
			size_t len = strcspn(line, "\n");
			if (!line[len] && !feof(f))
				break;
			line[len] = 0;
			char *field[7] = {0};
			int nf = 0;
			char *s = line;
			field[nf++] = s;
			while (nf < 7 && (s = strchr(s, ':'))) {
				*s++ = 0;
				field[nf++] = s;
			}
			if (nf >= 6 && strcmp(field[2], want) == 0 && field[5][0]) {
				snprintf(home, sizeof(home), "HOME=%s", field[5]);
				break;
			}
		}
		free(line);
		fclose(f);
	}
	envp[envc++] = home;
	envp[envc] = NULL;
}

/* checkExecutable is libcontainer.checkExecutable: 0, or the reason in why. */
static int checkExecutable(const char *p, char *why, size_t n)
{
	struct stat st;
	if (stat(p, &st) < 0) {
		char e[PATH_MAX + 16];
		snprintf(why, n, "stat %s: %s", esc(p, e, sizeof(e)), berthErrText(errno));
		char *colon = strrchr(why, ':');
		if (colon && colon[1] == ' ')
			colon[2] = (char)(colon[2] | 0x20);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, n, "is a directory");
		return -1;
	}
	if (!(st.st_mode & 0111)) {
		snprintf(why, n, "permission denied");
		return -1;
	}
	return 0;
}

/* lookPath is libcontainer.lookPath, in the container's root, with its PATH. */
static void lookPath(const char *name)
{
	char why[PATH_MAX + 64], e[PATH_MAX + 16], msg[2 * PATH_MAX + 128];
	if (strchr(name, '/')) {
		if (checkExecutable(name, why, sizeof(why)) < 0) {
			snprintf(msg, sizeof(msg), "process.args[0]: exec: \\\"%s\\\": %s", esc(name, e, sizeof(e)), why);
			planFailMsg(msg, "");
		}
		snprintf(path, sizeof(path), "%s", name);
		return;
	}
	const char *pv = getEnv("PATH");
	if (!pv)
		pv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	const char *s = pv;
	for (;;) {
		const char *c = strchr(s, ':');
		size_t len = c ? (size_t)(c - s) : strlen(s);
		char p[PATH_MAX];
		if (len == 0)
			snprintf(p, sizeof(p), "./%s", name);
		else
			snprintf(p, sizeof(p), "%.*s/%s", (int)len, s, name);
		if (checkExecutable(p, why, sizeof(why)) == 0) {
			/* as Go's filepath.Join: "./x" is "x" */
			snprintf(path, sizeof(path), "%s", len == 0 ? name : p);
			return;
		}
		if (!c)
			break;
		s = c + 1;
	}
	snprintf(msg, sizeof(msg), "process.args[0]: exec: \\\"%s\\\": executable file not found in $PATH", esc(name, e, sizeof(e)));
	planFailMsg(msg, "");
}

/* enterCwd is libcontainer.enterCwd. */
static void enterCwd(const char *cwd, int mayDefer)
{
	char e[PATH_MAX + 16], w[PATH_MAX + 128];
	if (chdir(cwd) < 0) {
		if (mayDefer && (errno == EACCES || errno == EPERM)) {
			cwdDeferred = 1;
			return;
		}
		snprintf(w, sizeof(w), "process.cwd: chdir %s", esc(cwd, e, sizeof(e)));
		planFail(w, errno);
	}
	cwdDeferred = 0;
	char got[PATH_MAX];
	if (!getcwd(got, sizeof(got)) || got[0] != '/') {
		snprintf(w, sizeof(w), "process.cwd: %s lies outside the container's root: possible container breakout detected", esc(cwd, e, sizeof(e)));
		planFailMsg(w, "");
	}
}

/* containerFdDir is libcontainer.containerFdDir (and pidFdDir when /proc is not a procfs). */
static void containerFdDir(void)
{
	int fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		struct statfs st;
		if (fstatfs(fd, &st) == 0 && st.f_type == PROC_SUPER_MAGIC) {
			fdDir = fd;
			return;
		}
		close(fd);
	}
	const char *what = "a private procfs for the exec fifo";
	int fs = fsopen("proc", FSOPEN_CLOEXEC);
	if (fs < 0)
		planFail(what, errno);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "subset", "pid", 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		planFail(what, errno);
	int mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0)
		planFail(what, errno);
	fdDir = openat(mnt, "self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fdDir < 0)
		planFail(what, errno);
	close(mnt);
	close(fs);
}

/* giveStdioTo is libcontainer.giveStdioTo. */
static void giveStdioTo(uid_t uid, int inherited)
{
	dev_t null = makedev(1, 3);
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		char w[64];
		if (fstat(fd, &st) < 0) {
			snprintf(w, sizeof(w), "stdio: fstat %d", fd);
			planFail(w, errno);
		}
		if (st.st_uid == uid || (S_ISCHR(st.st_mode) && st.st_rdev == null))
			continue;
		if (inherited) {
			struct statfs fs;
			if (fstatfs(fd, &fs) < 0 || (fs.f_type != PIPEFS_MAGIC && fs.f_type != SOCKFS_MAGIC))
				continue;
		}
		char step[64];
		snprintf(step, sizeof(step), "fchown %d to uid %u (group kept)", fd, (unsigned)uid);
		planStep("libcontainer.giveStdioTo", step);
		if (fchown(fd, uid, (gid_t)-1) < 0) {
			if (errno == EPERM || errno == EINVAL || errno == EROFS)
				continue;
			snprintf(w, sizeof(w), "stdio: fchown %d to uid %u", fd, (unsigned)uid);
			planFail(w, errno);
		}
	}
}

/* setUser is libcontainer.setUser, with raw system calls (this thread's credentials only). */
static void setUser(struct planReader *r)
{
	uid_t uid = (uid_t)planU64(r);
	gid_t gid = (gid_t)planU64(r);
	int allow = (int)planU64(r);
	size_t n = (size_t)planU64(r);
	if (n > 65536)
		planFailMsg("init plan", "too many groups");
	gid_t *groups = calloc(n ? n : 1, sizeof(gid_t));
	for (size_t i = 0; i < n; i++)
		groups[i] = (gid_t)planU64(r);
	if (allow) {
		/* A joined user namespace may deny setgroups: then only an empty request is honoured. */
		char sg[16] = "";
		int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		struct statfs fs;
		/* Only a procfs says so: the image's /proc (none mounted) must not make us keep
		 * berth's supplementary groups. */
		if (fd >= 0 && fstatfs(fd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC) {
			ssize_t k = read(fd, sg, sizeof(sg) - 1);
			sg[k > 0 ? k : 0] = 0;
		}
		if (fd >= 0)
			close(fd);
		if (strncmp(sg, "deny", 4) == 0) {
			if (n > 0)
				planFailMsg("process.user.additionalGids: the user namespace denies setgroups", "");
			allow = 0;
		}
	}
	if (allow) {
		if (planExplain) {
			char step[4096] = "setgroups [";
			size_t k = strlen(step);
			for (size_t i = 0; i < n && k < sizeof(step) - 16; i++)
				k += (size_t)snprintf(step + k, sizeof(step) - k, i ? " %u" : "%u", (unsigned)groups[i]);
			snprintf(step + k, sizeof(step) - k, "]");
			planStep("libcontainer.setUser", step);
		}
		if (syscall(SYS_setgroups, n, groups) < 0)
			planFail("process.user.additionalGids: setgroups", errno);
	}
	char step[96], w[64];
	snprintf(step, sizeof(step), "setresgid %u, setresuid %u", (unsigned)gid, (unsigned)uid);
	planStep("libcontainer.setUser", step);
	if (syscall(SYS_setresgid, gid, gid, gid) < 0) {
		snprintf(w, sizeof(w), "process.user.gid: setresgid %u", (unsigned)gid);
		planFail(w, errno);
	}
	if (syscall(SYS_setresuid, uid, uid, uid) < 0) {
		snprintf(w, sizeof(w), "process.user.uid: setresuid %u", (unsigned)uid);
		planFail(w, errno);
	}
	/*
	 * A change of uid or gid resets dumpability to fs.suid_dumpable, which a host may have
	 * set to 1: the init stays non-dumpable until its execve, through the wait for `start`
	 * too (the Go init's berth-wait says so again after its exec).
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		planFail("", errno);
	free(groups);
}

static void installSeccomp(struct planReader *r)
{
	size_t len;
	const char *prog = planStr(r, &len);
	unsigned int flags = (unsigned int)planU64(r);
	const char *step = planStr(r, NULL);
	if (len == 0 || len % sizeof(struct sock_filter) != 0)
		planFailMsg("linux.seccomp", "empty filter");
	struct sock_filter *f = malloc(len);
	memcpy(f, prog, len);
	struct sock_fprog fp = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = f};
	planStep("libcontainer.seccompStage.install", step);
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
	if (rc < 0) {
		int err = errno;
		char w[160];
		switch (err) {
		case EACCES:
			planFailMsg("linux.seccomp: installing the filter", "permission denied (the process needs no_new_privs or CAP_SYS_ADMIN)");
		case EINVAL:
			snprintf(w, sizeof(w), "linux.seccomp: installing the filter with flags %#x", flags);
			planFailMsg(w, "invalid argument (a flag this kernel does not support?)");
		case ESRCH:
			planFailMsg("linux.seccomp: installing the filter", "no such process (a thread could not be synchronized for SECCOMP_FILTER_FLAG_TSYNC)");
		}
		planFail("linux.seccomp: installing the filter", err);
	}
	if (rc != 0) {
		char w[160];
		snprintf(w, sizeof(w), "linux.seccomp: installing the filter: thread %ld could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)", rc);
		planFailMsg(w, "");
	}
	free(f);
}

/* markCloexecFrom is libcontainer.markCloexecFrom. */
static void markCloexecFrom(unsigned int first)
{
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		planFail("marking descriptors close-on-exec", errno);
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end == 0 && end != e->d_name && fd >= (long)first && fd != dfd)
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

/*
 * closeRange closes [first, last]. The container's seccomp filter is in place by now, and a
 * profile written before close_range existed refuses it (ENOSYS or EPERM): then the
 * descriptors are closed one by one, up to a bound far above any the C stage opens (it opens
 * few, numbered from the lowest free).
 */
static void closeRange(unsigned int first, unsigned int last)
{
	if (syscall(SYS_close_range, first, last, 0) == 0)
		return;
	for (unsigned int fd = first; fd <= last && fd < first + 4096; fd++)
		close((int)fd);
}

/* waitDie is the waiting stage's failure: berth no longer reads the pipe. */
static _Noreturn void waitDie(const char *what)
{
	fprintf(stderr, "berth: waiting init: %s: %s\n", what, berthErrText(errno));
	_exit(127);
}

/*
 * execUser ends the plan. For a created container it first waits for `berth start` (what
 * the Go init's berth-wait stage does): the init pipe is closed first, which tells `berth
 * create` that the container is created, then opening the exec fifo blocks until `start`
 * opens its end; one byte says so, and the fifo stays open until the execve closes it.
 */
/*
 * becomeWaitingStage names the process "berth-wait", as the Go init's waiting stage is named
 * (its command line, read by pause and by tools, and its comm): "berth init ID" is rewritten
 * in place, the arguments' memory being one block that always has room for it.
 */
static void becomeWaitingStage(void)
{
	static const char name[] = "berth-wait";
	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (planArgc < 1)
		return;
	char *start = planArgv[0];
	char *end = planArgv[planArgc - 1] + strlen(planArgv[planArgc - 1]);
	if ((size_t)(end - start) < sizeof(name) - 1)
		return;
	memset(start, 0, (size_t)(end - start));
	memcpy(start, name, sizeof(name) - 1);
}

/* ownCopy is a list of strings copied out of the plan (planForget). */
static char **ownCopy(char **l)
{
	size_t n = 0;
	while (l && l[n])
		n++;
	char **c = calloc(n + 1, sizeof(char *));
	if (!c)
		planFailMsg("init plan", "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!(c[i] = strdup(l[i])))
			planFailMsg("init plan", "out of memory");
	return c;
}

static _Noreturn void execUser(unsigned int preserve, int fifoFd)
{
	if (fifoFd >= 0) {
		if (ownArgs)
			planForget(); /* argv and envp are copies (opCloexec) */
		becomeWaitingStage();
		/*
		 * While it waits, a process of the container with CAP_SYS_PTRACE could reach its
		 * descriptors: keep only stdio, the preserved ones, the fd directory and the fifo
		 * (what the Go init's berth-wait keeps), the init pipe included in what goes.
		 */
		unsigned int keep[2] = {(unsigned int)fdDir, (unsigned int)fifoFd};
		if (keep[0] > keep[1]) {
			unsigned int t = keep[0];
			keep[0] = keep[1];
			keep[1] = t;
		}
		unsigned int first = 3 + preserve;
		for (int i = 0; i < 2; i++) {
			if (keep[i] > first)
				closeRange(first, keep[i] - 1);
			if (keep[i] + 1 > first)
				first = keep[i] + 1;
		}
		closeRange(first, ~0U);
		char name[16];
		snprintf(name, sizeof(name), "%d", fifoFd);
		int fifo = openat(fdDir, name, O_WRONLY | O_CLOEXEC);
		if (fifo < 0)
			waitDie("opening exec fifo");
		if (write(fifo, "0", 1) != 1)
			waitDie("writing exec fifo");
		close(fdDir);
		close(fifoFd);
	}
	/* Done before seccomp too (opCloexec); a profile may deny close_range here. */
	syscall(SYS_close_range, 3 + preserve, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(path, argv, envp);
	if (fifoFd >= 0)
		waitDie(path);
	char e[PATH_MAX + 16], w[PATH_MAX + 64];
	snprintf(w, sizeof(w), "process.args[0]: exec %s", esc(path, e, sizeof(e)));
	planFail(w, errno);
}

int planProcOp(int op, struct planReader *r)
{
	switch (op) {
	case opUmask:
		umask((mode_t)planU64(r));
		return 1;
	case opWriteFile: {
		const char *p = planStr(r, NULL);
		size_t len;
		const char *data = planStr(r, &len);
		const char *what = planStr(r, NULL);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, data, len) < 0)
			planFail(what, errno);
		close(fd);
		return 1;
	}
	case opRlimit: {
		int res = (int)planU64(r);
		struct rlimit lim = {.rlim_cur = planU64(r), .rlim_max = planU64(r)};
		const char *what = planStr(r, NULL);
		if (prlimit(0, res, &lim, NULL) < 0)
			planFail(what, errno);
		return 1;
	}
	case opHostname:
	case opDomainname: {
		size_t len;
		const char *name = planStr(r, &len);
		const char *what = planStr(r, NULL);
		if ((op == opHostname ? sethostname(name, len) : setdomainname(name, len)) < 0)
			planFail(what, errno);
		return 1;
	}
	case opKeyring: {
		const char *what = planStr(r, NULL);
		if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "_ses.berth") < 0 && errno != ENOSYS) {
			char e[160];
			snprintf(e, sizeof(e), "%s (use --no-new-keyring)", berthErrText(errno));
			e[0] = (char)(e[0] | 0x20);
			planFailMsg(what, e);
		}
		return 1;
	}
	case opEnv:
		envp = readList(r, 1, &envc);
		return 1;
	case opArgs:
		argv = readList(r, 0, NULL);
		return 1;
	case opHome:
		withHome((uid_t)planU64(r));
		return 1;
	case opLookPath:
		lookPath(planStr(r, NULL));
		return 1;
	case opStepPath: {
		/* A step naming the program lookPath found. */
		const char *name = planStr(r, NULL), *a = planStr(r, NULL), *b = planStr(r, NULL);
		char e[PATH_MAX + 16], *msg = malloc(strlen(a) + strlen(b) + sizeof(e));
		if (msg) {
			sprintf(msg, "%s%s%s", a, esc(path, e, sizeof(e)), b);
			planStep(name, msg);
			free(msg);
		}
		return 1;
	}
	case opCwd:
		enterCwd(planStr(r, NULL), 1);
		return 1;
	case opCwdAsUser: {
		const char *cwd = planStr(r, NULL);
		if (cwdDeferred)
			enterCwd(cwd, 0);
		return 1;
	}
	case opFdDir:
		containerFdDir();
		return 1;
	case opSeccomp:
		installSeccomp(r);
		return 1;
	case opCapBound: {
		uint64_t keep = planU64(r);
		unsigned int last = (unsigned int)planU64(r);
		for (unsigned int cp = 0; cp <= last && cp < 64; cp++) {
			if (keep & (1ULL << cp))
				continue;
			if (prctl(PR_CAPBSET_DROP, cp, 0, 0, 0) < 0 && errno != EINVAL) {
				char w[96];
				snprintf(w, sizeof(w), "process.capabilities.bounding: dropping capability %u", cp);
				planFail(w, errno);
			}
		}
		return 1;
	}
	case opKeepCaps:
		if (prctl(PR_SET_KEEPCAPS, (unsigned long)planU64(r), 0, 0, 0) < 0)
			planFail("", errno);
		return 1;
	case opStdio: {
		uid_t uid = (uid_t)planU64(r);
		giveStdioTo(uid, (int)planU64(r));
		return 1;
	}
	case opUser:
		setUser(r);
		return 1;
	case opCapSet: {
		uint64_t eff = planU64(r), perm = planU64(r), inh = planU64(r);
		struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct data[2] = {
			{.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
			{.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
		};
		if (syscall(SYS_capset, &hdr, data) < 0)
			planFail("process.capabilities: capset", errno);
		return 1;
	}
	case opAmbient: {
		unsigned long cp = (unsigned long)planU64(r);
		const char *what = planStr(r, NULL);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cp, 0, 0) < 0)
			planFail(what, errno);
		return 1;
	}
	case opNoNewPrivs:
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			planFail("process.noNewPrivileges", errno);
		return 1;
	case opCloexec:
		markCloexecFrom((unsigned int)planU64(r));
		if (fdDir >= 0) {
			/* The init will wait for `start`: what the exec needs leaves the plan, which is
			 * wiped then (before seccomp goes in: no allocation under the filter). */
			argv = ownCopy(argv);
			envp = ownCopy(envp);
			ownArgs = 1;
		}
		return 1;
	case opExec: {
		unsigned int preserve = (unsigned int)planU64(r);
		int fifo = (int)(int64_t)planU64(r);
		execUser(preserve, fifo);
	}
	}
	return 0;
}
