// The C half of sigrelay: one handler for every relayed signal.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int relayFd = -1;
static struct sigaction goAction[65];

// isFault: a signal the kernel raises for the instruction that was running.
static int isFault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP ||
	       sig == SIGSYS;
}

// relaySignal runs on whatever thread the signal lands on, on that thread's signal stack
// (SA_ONSTACK: every Go thread has one). It writes the number to the non-blocking pipe: a
// full pipe (64 KiB of unread signals) drops it, as a full os/signal channel does.
static void relaySignal(int sig, siginfo_t *info, void *uc)
{
	int saved = errno;
	(void)uc;
	if (isFault(sig) && info != NULL && info->si_code > 0) {
		// Raised by the kernel for berth's own instruction: back to the Go runtime's
		// handler, which takes it when the instruction runs again (SIGSYS and SIGTRAP do
		// not run again: they are raised anew).
		sigaction(sig, &goAction[sig], NULL);
		if (sig == SIGSYS || sig == SIGTRAP)
			raise(sig);
		errno = saved;
		return;
	}
	unsigned char c = (unsigned char)sig;
	ssize_t n = write(relayFd, &c, 1);
	(void)n;
	errno = saved;
}

// berthRelaySignals installs relaySignal for the n signals in sigs, writing to fd. It returns
// 0, or the errno of the first sigaction that failed (those before it stay installed).
int berthRelaySignals(int fd, const int *sigs, int n)
{
	struct sigaction sa;
	relayFd = fd;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = relaySignal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < n; i++) {
		if (sigs[i] <= 0 || sigs[i] >= 65)
			return EINVAL;
		if (sigaction(sigs[i], &sa, &goAction[sigs[i]]) < 0)
			return errno;
	}
	return 0;
}
