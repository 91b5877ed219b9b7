/*
 * The init's C stage: the plan `berth create` computes (internal/initplan) and the code that
 * carries it out in the init's constructor, so that no Go runtime starts in the init.
 * The op codes and fields must agree with internal/initplan/initplan.go.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stdint.h>
#include <stddef.h>

enum planOp {
	opStep = 1,           /* name, msg */
	opStepPid = 2,        /* name, msg before the pid, msg after it */
	opUmask = 3,          /* mask */
	opWriteFile = 4,      /* path, data, what */
	opRlimit = 5,         /* resource, soft, hard, what */
	opMountRoot = 6,      /* flags, what */
	opMakePrivate = 7,    /* path, what */
	opBindRootfs = 8,     /* rootfs, what */
	opRefuseSymlink = 9,  /* dest, what */
	opMkdirTarget = 10,   /* dest, what */
	opMount = 11,         /* source, fstype, flags, data, fallback fd, fallback remount flags, what */
	opBind = 12,          /* source, source fd, rec, dest, what */
	opRemountBind = 13,   /* dest, flags, what */
	opSetAttr = 14,       /* dest, set, clear, sysfs source, what */
	opPropagate = 15,     /* dest, flag, what */
	opCgroupTree = 16,    /* attrs, source, what */
	opCgroupBind = 17,    /* source, name, attrs, what */
	opCgroupLink = 18,    /* target, name */
	opCgroupReadonly = 19,/* what */
	opMknod = 20,         /* path, mode, major, minor, uid, gid, what */
	opBindDevice = 21,    /* path, major, minor, what */
	opDevLink = 22,       /* target, name */
	opMakeCwd = 23,       /* cwd, what */
	opPivotRoot = 24,     /* rootfs, what */
	opSysctl = 25,        /* relative path, value, what */
	opMask = 26,          /* path, what */
	opReadonlyPath = 27,  /* path, what */
	opRootReadonly = 28,  /* what */
	opReopenDevNull = 29,
	opReopenRoot = 30,
	opHostname = 31,      /* name, what */
	opDomainname = 32,    /* name, what */
	opKeyring = 33,       /* what */
	opEnv = 34,           /* count, strings */
	opArgs = 35,          /* count, strings */
	opHome = 36,          /* uid */
	opLookPath = 37,      /* name, PATH */
	opCwd = 38,           /* cwd */
	opFdDir = 39,
	opSeccomp = 40,       /* program bytes, flags, why */
	opCapBound = 41,      /* keep mask, last cap */
	opKeepCaps = 42,      /* 0 or 1 */
	opStdio = 43,         /* uid, inherited */
	opUser = 44,          /* uid, gid, setgroups, count, gids */
	opCwdAsUser = 45,     /* cwd */
	opCapSet = 46,        /* effective, permitted, inheritable */
	opAmbient = 47,       /* cap, name */
	opNoNewPrivs = 48,
	opReady = 49,         /* detached */
	opCloexec = 50,       /* first */
	opExec = 51,          /* preserve, fifo fd */
	opStepStart = 52,     /* name, msg: a step timed at the constructor's start */
	opStepPath = 53,
	opCgroupFresh = 54,   /* name, fstype, flags, data, step, what */      /* name, msg before the program's path, msg after it */
};

/* A plan being read: fields are taken in order; strings point into the plan's buffer. */
struct planReader {
	const char *p, *end;
};

uint64_t planU64(struct planReader *r);
const char *planStr(struct planReader *r, size_t *len);

/* Messages to berth on the init pipe. */
void planStep(const char *name, const char *msg);
_Noreturn void planFail(const char *what, int err);
_Noreturn void planFailMsg(const char *what, const char *detail);

/* planForget wipes the plan once nothing of it is needed (before the wait for `start`). */
void planForget(void);

/* The rootfs ops (plan_rootfs.c) and the process ops (plan_proc.c): 1 if op was theirs. */
int planRootfsOp(int op, struct planReader *r);
int planProcOp(int op, struct planReader *r);

/* Shared state. */
extern int planPipe;      /* the init pipe */
extern int planExplain;   /* steps are sent until "ready" */
extern int planArgc;      /* the init's own arguments ("berth init ID") */
extern char **planArgv;

/* The container's root while it is built (opBindRootfs; "/" after opReopenRoot). */
extern int planRootFd;

/* openInRoot opens path under planRootFd (RESOLVE_IN_ROOT, no magic links). */
int openInRoot(const char *path, int flags);

#endif
