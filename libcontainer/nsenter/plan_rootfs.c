/*
 * The rootfs ops of the init's C stage (plan.h): rootfs.Setup and rootfs.Finish of the Go
 * init, one op per system-call group, in the order berth's plan gives (rootfs/plan.go). Paths
 * inside the container are resolved as the Go code does: relative to the rootfs's descriptor
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), symlinks followed as if the rootfs
 * were /, created a component at a time without following any, and every mount is made on a
 * descriptor (/proc/self/fd/N or move_mount), never on a path the container could swap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mountapi.h"
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "plan.h"
#include "errtext.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

int planRootFd = -1;
static int curFd = -1;  /* the destination of the mount being made (opMkdirTarget) */
static int treeFd = -1; /* the tmpfs holding the cgroup binds (opCgroupTree) */
static int nullFd = -1; /* the container's /dev/null, for masks */

/*
 * failPathIn is planFail with what (escaped already), a suffix to it, and a verb and a path
 * (raw, escaped here): "what suffix: verb path: error". Built to its length: a fixed buffer
 * cut a long text inside an escape, and the message then was not JSON (berth lost the error).
 */
static _Noreturn void failPathIn(const char *what, const char *suffix, const char *verb, const char *path, int err)
{
	size_t n = strlen(what) + strlen(suffix) + (verb ? strlen(verb) : 0) + (path ? 6 * strlen(path) : 0) + 8;
	char *t = malloc(n);
	if (!t)
		_exit(127);
	size_t k = (size_t)snprintf(t, n, "%s%s", what, suffix);
	if (verb || path)
		k += (size_t)snprintf(t + k, n - k, "%s%s%s", k ? ": " : "", verb ? verb : "",
			verb && path && *verb && verb[strlen(verb) - 1] != '/' ? " " : "");
	for (const char *p = path; p && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			t[k++] = '\\';
			t[k++] = (char)c;
		} else if (c < 0x20) {
			k += (size_t)snprintf(t + k, n - k, "\\u%04x", c);
		} else {
			t[k++] = (char)c;
		}
	}
	t[k] = 0;
	planFail(t, err);
}

static _Noreturn void failPath(const char *what, const char *verb, const char *path, int err)
{
	failPathIn(what, "", verb, path, err);
}

static char *fdPath(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

static int openat2Retry(int dir, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	for (int i = 0; i < 32; i++) {
		int fd = (int)syscall(SYS_openat2, dir, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			return fd;
	}
	return -1;
}

int openInRoot(const char *path, int flags)
{
	return openat2Retry(planRootFd, path, O_PATH | (uint64_t)flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/*
 * cleanPath makes an absolute path lexically clean, as Go's filepath.Clean, in place (a clean
 * path is never longer). A component that did not fit used to be dropped, and the ".." after
 * it then climbed past what it meant: -1 (ENAMETOOLONG) instead.
 */
static int cleanPath(char *p)
{
	static char out[PATH_MAX * 4];
	size_t n = 0;
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 1 && s[0] == '.') {
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
		} else if (n + len + 2 < sizeof(out)) {
			out[n++] = '/';
			memcpy(out + n, s, len);
			n += len;
		} else {
			errno = ENAMETOOLONG;
			return -1;
		}
		s += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = 0;
	memcpy(p, out, n + 1);
	return 0;
}

/*
 * resolveInRoot is rootfs.resolveInRoot: dest as a path of the rootfs without symlinks in its
 * existing part, each symlink followed as if the rootfs were / (a dangling link's target is
 * then created inside the rootfs). The path is only a name: opening and creating it resolve
 * it in the root again.
 */
static int resolveInRoot(const char *dest, char out[PATH_MAX])
{
	static char rest[PATH_MAX * 4];
	char resolved[PATH_MAX * 2] = "";
	char link[PATH_MAX];
	int links = 0;
	if (snprintf(rest, sizeof(rest), "/%s", dest) >= (int)sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (cleanPath(rest) < 0)
		return -1;
	char *s = rest;
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, s, len);
		comp[len] = 0;
		s += len;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = strrchr(resolved, '/');
			if (slash)
				*slash = 0;
			continue;
		}
		char next[PATH_MAX * 2 + 2];
		if (snprintf(next, sizeof(next), "%s/%s", resolved, comp) >= PATH_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		char dotted[PATH_MAX * 2 + 4];
		snprintf(dotted, sizeof(dotted), ".%s", next);
		ssize_t n = readlinkat(planRootFd, dotted, link, sizeof(link) - 1);
		if (n < 0) {
			if (errno == ENOENT) {
				/* Nothing exists from here on: no more links to follow. */
				if (snprintf(out, PATH_MAX, "%s/%s", next, s) >= PATH_MAX) {
					errno = ENAMETOOLONG;
					return -1;
				}
				return cleanPath(out);
			}
			if (errno == EINVAL) {
				strcpy(resolved, next); /* not a symlink */
				continue;
			}
			return -1;
		}
		if (++links > 40) {
			errno = ELOOP;
			return -1;
		}
		link[n] = 0;
		if (link[0] == '/')
			resolved[0] = 0;
		char tmp[PATH_MAX * 4];
		if (snprintf(tmp, sizeof(tmp), "%s/%s", link, s) >= (int)sizeof(tmp)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(rest, tmp);
		s = rest;
	}
	snprintf(out, PATH_MAX, "%s", resolved[0] ? resolved : "/");
	return 0;
}

/*
 * mkdirWalk makes the directory p (absolute, clean) inside the rootfs a component at a time,
 * and returns an O_PATH descriptor of it. A missing component is made with mkdirat in its
 * parent's descriptor and opened beneath it without following anything, so nothing leads out
 * of the rootfs, whatever is swapped meanwhile. An existing one is opened the same way
 * (follow = 0: resolveInRoot has followed p's symlinks already), or resolved in the root,
 * following symlinks (follow = 1), where a dangling symlink is then an error (ENOENT).
 */
static int mkdirWalk(char *p, int follow)
{
	const uint64_t beneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	char prefix[PATH_MAX] = "";
	int cur = openInRoot("/", O_DIRECTORY);
	if (cur < 0)
		return -1;
	char *s = p;
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			return cur;
		char *e = strchr(s, '/');
		if (e)
			*e = 0;
		size_t n = strlen(prefix);
		if (n + 1 + strlen(s) >= sizeof(prefix)) {
			close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		prefix[n] = '/';
		strcpy(prefix + n + 1, s);
		int next = follow ? openInRoot(prefix, O_DIRECTORY) : openat2Retry(cur, s, O_PATH | O_DIRECTORY | O_NOFOLLOW, beneath);
		if (next < 0 && errno == ENOENT) {
			char l[8];
			if (follow && readlinkat(cur, s, l, sizeof(l)) >= 0)
				errno = ENOENT; /* a dangling symlink */
			else if (mkdirat(cur, s, 0755) == 0 || errno == EEXIST)
				next = openat2Retry(cur, s, O_PATH | O_DIRECTORY | O_NOFOLLOW, beneath);
		}
		int err = errno;
		close(cur);
		if (next < 0) {
			errno = err;
			return -1;
		}
		cur = next;
		if (!e)
			return cur;
		s = e + 1;
	}
}

/*
 * mkdirInRoot makes the directory dest inside the rootfs (and its parents), following symlinks
 * as resolveInRoot does (a dangling link's target is made inside the rootfs).
 */
static int mkdirInRoot(const char *dest)
{
	char p[PATH_MAX];
	if (resolveInRoot(dest, p) < 0)
		return -1;
	return mkdirWalk(p, 0);
}

/*
 * mkdirNoDangling makes the missing part of path as libcontainer.makeCwd does (pathrs's
 * MkdirAllHandle): resolved in the root, but a dangling symlink on the way is an error, never
 * followed to be created (runc's MkdirAll refuses it too).
 */
static int mkdirNoDangling(const char *path)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "/%s", path) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (cleanPath(p) < 0)
		return -1;
	return mkdirWalk(p, 1);
}

/* openOrCreate is rootfs.openOrCreate: dest as a directory, or an empty file when missing. */
static int openOrCreate(const char *dest, int dir)
{
	if (dir)
		return mkdirInRoot(dest);
	int fd = openInRoot(dest, 0);
	if (fd >= 0)
		return fd;
	char p[PATH_MAX];
	if (resolveInRoot(dest, p) < 0)
		return -1;
	char *slash = strrchr(p, '/');
	char name[NAME_MAX + 1];
	if (strlen(slash + 1) > NAME_MAX) {
		errno = ENAMETOOLONG; /* never a shorter name than asked */
		return -1;
	}
	snprintf(name, sizeof(name), "%s", slash + 1);
	if (slash == p)
		p[1] = 0;
	else
		*slash = 0;
	int parent = mkdirInRoot(p);
	if (parent < 0)
		return -1;
	/*
	 * Created, never opened: what exists there (reached through a magic link, which openInRoot
	 * refuses and resolveInRoot follows by name) may be a device node or a fifo of the image,
	 * whose open as root acts on the host's device or blocks for ever.
	 */
	fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno != EEXIST) {
		int err = errno;
		close(parent);
		errno = err;
		return -1;
	}
	if (fd >= 0)
		close(fd);
	fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err = errno;
	close(parent);
	errno = err;
	return fd;
}

/* remountBind is rootfs.remountBind: per-mount flags on a bind, keeping the locked ones. */
static void remountBind(const char *dest, unsigned long flags, const char *what)
{
	int h = openInRoot(dest, 0);
	if (h < 0)
		planFail(what, errno);
	struct statfs sfs;
	if (fstatfs(h, &sfs) == 0)
		flags |= (unsigned long)sfs.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
	flags |= MS_BIND | MS_REMOUNT;
	char b[32];
	if (mount("", fdPath(h, b), NULL, flags, NULL) < 0)
		failPath(what, "remount", dest, errno);
	close(h);
}

static int mountAttr(int fd, unsigned int flags, uint64_t set, uint64_t clr)
{
	struct mount_attr attr = {.attr_set = set, .attr_clr = clr};
	return mount_setattr(fd, "", AT_EMPTY_PATH | flags, &attr, sizeof(attr));
}

static void closeCur(void)
{
	if (curFd >= 0)
		close(curFd);
	curFd = -1;
}

static void bindRootfs(struct planReader *r)
{
	const char *rootfs = planStr(r, NULL), *what = planStr(r, NULL);
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		failPath(what, "bind mount", rootfs, errno);
	if (mount(NULL, rootfs, NULL, MS_PRIVATE, NULL) < 0)
		failPath(what, "make private", rootfs, errno);
	planRootFd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (planRootFd < 0)
		planFail(what, errno);
}

static void opMountFn(struct planReader *r)
{
	const char *src = planStr(r, NULL), *fstype = planStr(r, NULL);
	unsigned long flags = (unsigned long)planU64(r);
	const char *data = planStr(r, NULL), *dest = planStr(r, NULL);
	int fallback = (int)(int64_t)planU64(r);
	unsigned long fallbackFlags = (unsigned long)planU64(r);
	const char *fallbackStep = planStr(r, NULL), *what = planStr(r, NULL);
	char b[32];
	int rc = mount(src, fdPath(curFd, b), fstype, flags, *data ? data : NULL);
	if (rc < 0 && errno == EPERM && fallback >= 0) {
		planStep("rootfs.mountSysfs", fallbackStep);
		rc = move_mount(fallback, "", curFd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		if (rc == 0 && fallbackFlags)
			remountBind(dest, fallbackFlags, what);
	}
	if (rc < 0)
		planFail(what, errno);
	if (fallback >= 0)
		close(fallback);
}

static void opBindFn(struct planReader *r)
{
	const char *src = planStr(r, NULL);
	int srcFd = (int)(int64_t)planU64(r);
	unsigned long rec = (unsigned long)planU64(r);
	const char *dest = planStr(r, NULL), *stepBind = planStr(r, NULL), *stepClone = planStr(r, NULL);
	const char *what = planStr(r, NULL);
	struct stat st;
	int useClone = 0;
	int rc = stat(src, &st);
	if (rc < 0 && errno == EACCES && srcFd >= 0) {
		useClone = 1;
		rc = fstat(srcFd, &st);
	}
	if (rc < 0)
		failPathIn(what, ": source", "stat", src, errno);
	closeCur();
	curFd = openOrCreate(dest, S_ISDIR(st.st_mode));
	if (curFd < 0)
		failPathIn(what, ": destination", NULL, NULL, errno);
	char b[32];
	if (useClone) {
		planStep("rootfs.mountBind", stepClone);
		if (move_mount(srcFd, "", curFd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			failPath(what, "bind mount of", src, errno);
	} else {
		planStep("rootfs.mountBind", stepBind);
		if (mount(src, fdPath(curFd, b), NULL, MS_BIND | rec, NULL) < 0)
			failPath(what, "bind mount", src, errno);
	}
	if (srcFd >= 0)
		close(srcFd);
}

/* openDevNull is rootfs.openDevNull: the container's /dev/null, checked to be the null device. */
static int openDevNull(void)
{
	int fd = openat2Retry(AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		planFail("/dev/null", errno);
	struct stat st;
	if (fstat(fd, &st) < 0)
		planFail("/dev/null", errno);
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		planFailMsg("/dev/null is not the null device (1:3)", "refusing to use it to mask paths");
	return fd;
}

static void pivotRoot(struct planReader *r)
{
	const char *rootfs = planStr(r, NULL), *what = planStr(r, NULL), *step2 = planStr(r, NULL);
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		planFail(what, errno);
	int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0)
		planFail(what, errno);
	if (fchdir(newroot) < 0)
		planFail(what, errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		int err = errno;
		char e[256];
		snprintf(e, sizeof(e), "%s (use --no-pivot for roots that cannot be pivoted, e.g. ramfs)", berthErrText(err));
		e[0] = (char)(e[0] | 0x20);
		planFailMsg(what, e);
	}
	if (fchdir(oldroot) < 0)
		planFail(what, errno);
	/* Slave first, so the unmount below does not propagate to the host's mounts. */
	if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		planFail(what, errno);
	planStep("rootfs.pivotRoot", step2);
	if (umount2(".", MNT_DETACH) < 0)
		planFail("detaching the old root", errno);
	if (chdir("/") < 0)
		planFail(what, errno);
	close(oldroot);
	close(newroot);
	closeCur();
}

static void maskPath(struct planReader *r)
{
	const char *path = planStr(r, NULL), *what = planStr(r, NULL);
	const char *stepDir = planStr(r, NULL), *stepFile = planStr(r, NULL);
	if (nullFd < 0)
		nullFd = openDevNull();
	int fd = openat2Retry(AT_FDCWD, path, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		planFail(what, errno);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		planFail(what, errno);
	char b[32], nb[32];
	int rc;
	if (S_ISDIR(st.st_mode)) {
		planStep("rootfs.maskPaths", stepDir);
		rc = mount("tmpfs", fdPath(fd, b), "tmpfs", MS_RDONLY, NULL);
	} else {
		planStep("rootfs.maskPaths", stepFile);
		rc = mount(fdPath(nullFd, nb), fdPath(fd, b), NULL, MS_BIND, NULL);
	}
	if (rc < 0)
		planFail(what, errno);
	close(fd);
}

static void readonlyPath(struct planReader *r)
{
	const char *path = planStr(r, NULL), *what = planStr(r, NULL), *step = planStr(r, NULL);
	int fd = openat2Retry(AT_FDCWD, path, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		planFail(what, errno);
	}
	planStep("rootfs.readonlyPaths", step);
	char b[32];
	if (mount(fdPath(fd, b), b, NULL, MS_BIND | MS_REC, NULL) < 0)
		planFail(what, errno);
	/* Reopen: the old handle names the directory under the new bind mount. */
	close(fd);
	fd = openat2Retry(AT_FDCWD, path, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT);
	if (fd < 0)
		planFail(what, errno);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC;
	struct statfs sfs;
	if (fstatfs(fd, &sfs) == 0)
		flags |= (unsigned long)sfs.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
	if (mount("", fdPath(fd, b), NULL, flags, NULL) < 0)
		planFail(what, errno);
	close(fd);
}

/* reopenDevNull is libcontainer.reopenDevNull: stdio that is the host's null device becomes
 * the container's (checked to be 1:3, opened without following a symlink). */
static void reopenDevNull(void)
{
	dev_t null = makedev(1, 3);
	int fd = -1;
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (fstat(i, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null)
			continue;
		if (fd < 0) {
			/* Checked before it is opened: the image's node (no /dev mounted) could be any
			 * device of the host, acting on open. */
			for (int flags = O_PATH; fd < 0; flags = O_RDWR | O_NOCTTY) {
				int h = openat2Retry(AT_FDCWD, "/dev/null", (uint64_t)flags | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
				if (h < 0)
					planFail("reopening /dev/null for stdio", errno);
				struct stat own;
				if (fstat(h, &own) < 0)
					planFail("reopening /dev/null for stdio", errno);
				if (!S_ISCHR(own.st_mode) || own.st_rdev != null)
					planFailMsg("reopening /dev/null for stdio", "the container's /dev/null is not the null device (1:3)");
				if (flags == O_PATH)
					close(h);
				else
					fd = h;
			}
		}
		if (dup3(fd, i, 0) < 0)
			planFail("reopening /dev/null for stdio", errno);
	}
	if (fd >= 0)
		close(fd);
}

int planRootfsOp(int op, struct planReader *r)
{
	char b[32];
	switch (op) {
	case opMountRoot: {
		unsigned long flags = (unsigned long)planU64(r);
		const char *what = planStr(r, NULL);
		if (mount("", "/", NULL, flags, NULL) < 0)
			planFail(what, errno);
		return 1;
	}
	case opMakePrivate: {
		const char *path = planStr(r, NULL), *what = planStr(r, NULL);
		if (mount("", path, NULL, MS_PRIVATE, NULL) < 0)
			planFail(what, errno);
		return 1;
	}
	case opBindRootfs:
		bindRootfs(r);
		return 1;
	case opRefuseSymlink: {
		const char *dest = planStr(r, NULL), *what = planStr(r, NULL);
		int fd = openat2Retry(planRootFd, dest, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
		if (fd >= 0)
			close(fd);
		else if (errno == ELOOP)
			planFailMsg(what, "");
		return 1;
	}
	case opMkdirTarget: {
		const char *dest = planStr(r, NULL), *what = planStr(r, NULL);
		closeCur();
		curFd = mkdirInRoot(dest);
		if (curFd < 0)
			planFail(what, errno);
		return 1;
	}
	case opMount:
		opMountFn(r);
		return 1;
	case opBind:
		opBindFn(r);
		return 1;
	case opRemountBind: {
		const char *dest = planStr(r, NULL);
		unsigned long flags = (unsigned long)planU64(r);
		const char *what = planStr(r, NULL);
		remountBind(dest, flags, what);
		return 1;
	}
	case opSetAttr: {
		const char *dest = planStr(r, NULL);
		uint64_t set = planU64(r), clr = planU64(r);
		const char *sysfsSrc = planStr(r, NULL), *step = planStr(r, NULL), *what = planStr(r, NULL);
		struct statfs sfs;
		if (*sysfsSrc && statfs(sysfsSrc, &sfs) == 0 && sfs.f_type == SYSFS_MAGIC)
			set |= MOUNT_ATTR_RDONLY; /* CVE-2023-25809: all of an rbind of /sys read-only */
		if (!set && !clr)
			return 1;
		int h = openInRoot(dest, 0);
		if (h < 0)
			planFail(what, errno);
		planStep("rootfs.setRecursiveAttrs", step);
		if (mountAttr(h, AT_RECURSIVE, set, clr) < 0)
			planFail(what, errno);
		close(h);
		return 1;
	}
	case opPropagate: {
		const char *dest = planStr(r, NULL);
		unsigned long flag = (unsigned long)planU64(r);
		const char *what = planStr(r, NULL);
		int h = openInRoot(dest, 0);
		if (h < 0)
			planFail(what, errno);
		if (mount("", fdPath(h, b), NULL, flag, NULL) < 0)
			planFail(what, errno);
		close(h);
		return 1;
	}
	case opCgroupTree: {
		uint64_t attrs = planU64(r);
		const char *source = planStr(r, NULL), *what = planStr(r, NULL);
		int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
		if (fs < 0)
			planFail(what, errno);
		if (*source && fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) < 0)
			planFail(what, errno);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "755", 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
			planFail(what, errno);
		treeFd = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)attrs);
		if (treeFd < 0)
			planFail(what, errno);
		close(fs);
		if (move_mount(treeFd, "", curFd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			planFail(what, errno);
		return 1;
	}
	case opCgroupBind: {
		const char *src = planStr(r, NULL), *name = planStr(r, NULL);
		uint64_t attrs = planU64(r);
		const char *step = planStr(r, NULL), *what = planStr(r, NULL);
		planStep("rootfs.bindCgroupTree", step);
		if (mkdirat(treeFd, name, 0755) < 0)
			failPath(what, "mkdir", name, errno);
		int tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0)
			failPath(what, "bind", src, errno);
		if (mountAttr(tree, 0, attrs, 0) < 0 || move_mount(tree, "", treeFd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			failPath(what, "bind", src, errno);
		close(tree);
		return 1;
	}
	case opCgroupFresh: {
		/* mountFreshCgroup: in its own cgroup namespace, a new mount of the hierarchy,
		 * which the kernel roots at the namespace's group. */
		const char *name = planStr(r, NULL), *fstype = planStr(r, NULL);
		unsigned long flags = (unsigned long)planU64(r);
		const char *data = planStr(r, NULL), *step = planStr(r, NULL), *what = planStr(r, NULL);
		if (mkdirat(treeFd, name, 0755) < 0 && errno != EEXIST)
			failPath(what, "mkdir", name, errno);
		int target = openat2Retry(treeFd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
		if (target < 0)
			failPath(what, "mkdir", name, errno);
		planStep("rootfs.mountCgroup", step);
		if (mount("cgroup", fdPath(target, b), fstype, flags, *data ? data : NULL) < 0)
			planFail(what, errno);
		close(target);
		return 1;
	}
	case opCgroupLink: {
		const char *target = planStr(r, NULL), *name = planStr(r, NULL), *step = planStr(r, NULL);
		planStep("rootfs.mountCgroup", step);
		(void)symlinkat(target, treeFd, name);
		return 1;
	}
	case opCgroupReadonly: {
		uint64_t ro = planU64(r);
		const char *what = planStr(r, NULL);
		if (ro && mountAttr(treeFd, 0, MOUNT_ATTR_RDONLY, 0) < 0)
			planFail(what, errno);
		close(treeFd);
		treeFd = -1;
		return 1;
	}
	case opMknod: {
		const char *parentPath = planStr(r, NULL), *name = planStr(r, NULL);
		mode_t mode = (mode_t)planU64(r);
		unsigned int maj = (unsigned int)planU64(r), min = (unsigned int)planU64(r);
		uid_t uid = (uid_t)planU64(r);
		gid_t gid = (gid_t)planU64(r);
		const char *step = planStr(r, NULL), *what = planStr(r, NULL);
		int parent = mkdirInRoot(parentPath);
		if (parent < 0)
			planFail(what, errno);
		(void)unlinkat(parent, name, 0);
		planStep("rootfs.makeDevice", step);
		if (mknodat(parent, name, mode, makedev(maj, min)) < 0)
			planFail(what, errno);
		if ((uid || gid) && fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			planFail(what, errno);
		close(parent);
		return 1;
	}
	case opBindDevice: {
		const char *parentPath = planStr(r, NULL), *name = planStr(r, NULL), *hostPath = planStr(r, NULL);
		unsigned int maj = (unsigned int)planU64(r), min = (unsigned int)planU64(r);
		const char *step = planStr(r, NULL), *what = planStr(r, NULL);
		int parent = mkdirInRoot(parentPath);
		if (parent < 0)
			planFail(what, errno);
		(void)unlinkat(parent, name, 0);
		int host = open(hostPath, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (host < 0)
			failPathIn(what, ": user namespace: the host node to bind", NULL, NULL, errno);
		struct stat st;
		if (fstat(host, &st) < 0)
			planFail(what, errno);
		if (major(st.st_rdev) != maj || minor(st.st_rdev) != min || S_ISREG(st.st_mode))
			planFailMsg(what, "user namespace: the host node is not the device the config names, cannot bind it");
		int fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST) {
			/* Listed again: the first bind is a mount point; bind on top, never through a link. */
			fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			struct stat ex;
			if (fd >= 0 && fstat(fd, &ex) == 0 && !S_ISREG(ex.st_mode) && !S_ISCHR(ex.st_mode) && !S_ISBLK(ex.st_mode))
				planFailMsg(what, "user namespace: it exists and is not a file or device node");
		}
		if (fd < 0)
			planFail(what, errno);
		planStep("rootfs.bindDevice", step);
		char hb[32];
		if (mount(fdPath(host, hb), fdPath(fd, b), NULL, MS_BIND, NULL) < 0)
			planFail(what, errno);
		close(fd);
		close(host);
		close(parent);
		return 1;
	}
	case opDevLink: {
		const char *target = planStr(r, NULL), *name = planStr(r, NULL), *step = planStr(r, NULL);
		int dev = openInRoot("/dev", 0);
		if (dev < 0)
			planFail("/dev", errno);
		planStep("rootfs.createDevices", step);
		if (strcmp(name, "ptmx") == 0)
			(void)unlinkat(dev, "ptmx", 0); /* only the devpts instance's ptmx gives the container's ptys */
		if (symlinkat(target, dev, name) < 0 && errno != EEXIST)
			failPath("", "symlink /dev/", name, errno);
		close(dev);
		return 1;
	}
	case opMakeCwd: {
		const char *cwd = planStr(r, NULL), *step = planStr(r, NULL), *what = planStr(r, NULL);
		int h = openInRoot(cwd, 0);
		if (h >= 0) {
			close(h);
			return 1;
		}
		if (errno != ENOENT)
			return 1; /* opCwd says what is wrong with it */
		planStep("libcontainer.makeCwd", step);
		h = mkdirNoDangling(cwd);
		if (h < 0)
			planFail(what, errno);
		close(h);
		return 1;
	}
	case opPivotRoot:
		pivotRoot(r);
		return 1;
	case opReopenRoot:
		if (planRootFd >= 0)
			close(planRootFd);
		planRootFd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (planRootFd < 0)
			planFail("/", errno);
		return 1;
	case opSysctl: {
		const char *rel = planStr(r, NULL), *value = planStr(r, NULL);
		size_t vlen = strlen(value);
		const char *what = planStr(r, NULL);
		int dir = open("/proc/sys", O_DIRECTORY | O_PATH | O_CLOEXEC);
		if (dir < 0)
			planFail("linux.sysctl: /proc/sys", errno);
		/* Not the image's: with no procfs on /proc, a value would land in its files. */
		struct statfs sfs;
		if (fstatfs(dir, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
			planFailMsg("linux.sysctl: /proc/sys", "not a procfs (the config mounts none on /proc)");
		int fd = openat2Retry(dir, rel, O_WRONLY | O_TRUNC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
		if (fd < 0)
			planFail(what, errno);
		if (write(fd, value, vlen) < 0)
			planFail(what, errno);
		close(fd);
		close(dir);
		return 1;
	}
	case opMask:
		maskPath(r);
		return 1;
	case opReadonlyPath:
		readonlyPath(r);
		return 1;
	case opRootReadonly: {
		const char *what = planStr(r, NULL);
		unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
		struct statfs sfs;
		if (statfs("/", &sfs) == 0)
			flags |= (unsigned long)sfs.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
		if (mount("", "/", NULL, flags, NULL) < 0)
			planFail(what, errno);
		return 1;
	}
	case opReopenDevNull:
		reopenDevNull();
		return 1;
	}
	return 0;
}
