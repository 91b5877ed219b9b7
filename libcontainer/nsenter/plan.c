/*
 * The init's C stage (see plan.h): reads the plan `berth create` sent on the init pipe and
 * carries it out, op by op, in the constructor, before any Go runtime starts; it ends in the
 * execve of the user's program (or an error on the pipe and exit status 127, as the Go init).
 * berth chooses it per container (libcontainer/plan.go); what it does not cover keeps the Go
 * init. Its messages on the pipe are the Go init's: "step", "error", "ready", "handedOver".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "errtext.h"
#include "plan.h"

extern char berthNsError[256];
extern int berthSavedStderr;
extern long long berthStartedAt;

int planPipe = -1;
int planExplain;
int planArgc;
char **planArgv;
static int goReceived;
static char *planBuf; /* the plan as read (its strings are used in place) */
static size_t planLen;

/*
 * planForget wipes the plan (host paths: the rootfs, bind sources, cgroups) once nothing of
 * it is needed, before the init waits for `start`: a process of the container with
 * CAP_SYS_PTRACE may read the waiting init's memory (/proc/1/mem), and the Go init's
 * berth-wait, a new executable, holds none of it.
 */
void planForget(void)
{
	if (planBuf) {
		explicit_bzero(planBuf, planLen);
		free(planBuf);
		planBuf = NULL;
	}
}

/* A string being built for a message. */
struct buf {
	char *s;
	size_t n, cap;
};

static void bufAdd(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *s2 = realloc(b->s, cap);
		if (!s2)
			_exit(127);
		b->s = s2;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

static void bufStr(struct buf *b, const char *s) { bufAdd(b, s, strlen(s)); }

static void sendAll(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(planPipe, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* errText is the errno's text as Go prints it (errtext.h: the same whatever the C library). */
static const char *errText(int err)
{
	return berthErrText(err);
}

static void stepAt(const char *name, const char *msg, long long t)
{
	char at[64];
	snprintf(at, sizeof(at), "\",\"at\":%lld}\n", t);
	struct buf b = {0};
	bufStr(&b, "{\"type\":\"step\",\"step\":\"");
	bufStr(&b, name);
	bufStr(&b, "\",\"msg\":\"");
	bufStr(&b, msg);
	bufStr(&b, at);
	sendAll(b.s, b.n);
	explicit_bzero(b.s, b.n);
	free(b.s);
}

void planStep(const char *name, const char *msg)
{
	if (!planExplain)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	stepAt(name, msg, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

/* fail sends the error (text already JSON-escaped) and exits as the Go init does. */
static _Noreturn void fail(const char *text)
{
	struct buf b = {0};
	bufStr(&b, "{\"type\":\"error\",\"msg\":\"");
	bufStr(&b, text);
	bufStr(&b, "\"}\n");
	sendAll(b.s, b.n);
	if (goReceived) {
		/* After "go" a foreground berth no longer reads the pipe: stderr is the witness. */
		struct buf e = {0};
		bufStr(&e, "berth init: ");
		bufStr(&e, text);
		bufStr(&e, "\n");
		if (write(2, e.s, e.n) < 0) {
		}
	}
	_exit(127);
}

_Noreturn void planFailMsg(const char *what, const char *detail)
{
	struct buf b = {0};
	if (what && *what) {
		bufStr(&b, what);
		if (detail && *detail)
			bufStr(&b, ": ");
	}
	if (detail)
		bufStr(&b, detail);
	fail(b.s ? b.s : "");
}

_Noreturn void planFail(const char *what, int err) { planFailMsg(what, errText(err)); }

uint64_t planU64(struct planReader *r)
{
	if (r->end - r->p < 8)
		planFailMsg("init plan", "truncated");
	uint64_t v;
	memcpy(&v, r->p, 8); /* little-endian, as the host */
	r->p += 8;
	return v;
}

const char *planStr(struct planReader *r, size_t *len)
{
	if (r->end - r->p < 4)
		planFailMsg("init plan", "truncated");
	uint32_t n;
	memcpy(&n, r->p, 4);
	r->p += 4;
	if (n == 0 || (size_t)(r->end - r->p) < n || r->p[n - 1] != 0)
		planFailMsg("init plan", "bad string");
	const char *s = r->p;
	r->p += n;
	if (len)
		*len = n - 1;
	return s;
}

/* readFull reads n bytes from the pipe. */
static int readFull(char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(planPipe, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* planReady is dropAndHandOver's end: "ready", berth's "go", and for a detached process the
 * hand-over (it no longer dies with berth). Steps stop here: the pipe is berth's. */
static void planReady(int detached)
{
	static const char ready[] = "{\"type\":\"ready\"}\n";
	sendAll(ready, sizeof(ready) - 1);
	char line[128];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(planPipe, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			planFailMsg("waiting for the go-ahead from berth", "EOF");
		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = 0;
	if (!strstr(line, "\"go\""))
		planFailMsg("waiting for the go-ahead from berth", "unexpected message");
	goReceived = 1;
	if (detached) {
		if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
			planFail("", errno);
		static const char handed[] = "{\"type\":\"handedOver\"}\n";
		sendAll(handed, sizeof(handed) - 1);
	}
	planExplain = 0;
}

/* berthRunPlan is the C stage's main: it never returns. */
void berthRunPlan(int argc, char **argv)
{
	planArgc = argc;
	planArgv = argv;
	planPipe = atoi(getenv("_BERTH_INITPIPE"));
	/* Nothing starts a Go runtime here: stderr can be the caller's again at once. */
	if (berthSavedStderr > 2) {
		dup3(berthSavedStderr, 2, 0);
		close(berthSavedStderr);
		berthSavedStderr = -1;
	}
	if (berthNsError[0])
		fail(berthNsError);
	/* A session of its own, as the Go init (runInit). */
	setsid();
	char head[8];
	if (readFull(head, 8) < 0)
		planFailMsg("reading init plan", "EOF");
	if (memcmp(head, "BPL1", 4) != 0)
		planFailMsg("reading init plan", "not a plan");
	uint32_t len;
	memcpy(&len, head + 4, 4);
	char *plan = malloc(len ? len : 1);
	if (!plan || readFull(plan, len) < 0)
		planFailMsg("reading init plan", "short");
	planBuf = plan;
	planLen = len;
	/* Nothing in the container may ptrace us or read our memory while we hold host resources. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		planFail("", errno);
	struct planReader r = {plan, plan + len};
	while (r.p < r.end) {
		if (r.end - r.p < 2)
			planFailMsg("init plan", "truncated");
		uint16_t op;
		memcpy(&op, r.p, 2);
		r.p += 2;
		switch (op) {
		case opStep: {
			const char *name = planStr(&r, NULL), *msg = planStr(&r, NULL);
			planExplain = 1;
			planStep(name, msg);
			break;
		}
		case opStepStart: {
			/* The init's first step, timed when its constructor began (bench/steps). */
			const char *name = planStr(&r, NULL), *msg = planStr(&r, NULL);
			planExplain = 1;
			if (berthStartedAt > 0)
				stepAt(name, msg, berthStartedAt);
			else
				planStep(name, msg);
			break;
		}
		case opStepPid: {
			const char *name = planStr(&r, NULL), *a = planStr(&r, NULL), *b = planStr(&r, NULL);
			planExplain = 1;
			struct buf m = {0};
			char pid[24];
			snprintf(pid, sizeof(pid), "%d", (int)getpid());
			bufStr(&m, a);
			bufStr(&m, pid);
			bufStr(&m, b);
			planStep(name, m.s);
			explicit_bzero(m.s, m.n);
			free(m.s);
			break;
		}
		case opReady:
			planReady((int)planU64(&r));
			break;
		default:
			if (!planRootfsOp(op, &r) && !planProcOp(op, &r)) {
				char t[32];
				snprintf(t, sizeof(t), "unknown op %u", op);
				planFailMsg("init plan", t);
			}
		}
	}
	planFailMsg("init plan", "ended without an exec");
}
