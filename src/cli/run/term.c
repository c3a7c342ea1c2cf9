/* Raw mode for a terminal on stdin, restored on every way out of the process. */
#include "cli/run/console.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static volatile sig_atomic_t raw_on;

void term_restore(void)
{
	if (raw_on) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		raw_on = 0;
	}
}

static void fatal_signal(int sig)
{
	/* tcsetattr is async-signal-safe; then die the way the signal meant. */
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

bool term_raw_enter(void)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
		return false;
	struct termios raw = saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* keep the host's own messages readable */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0)
		return false;
	raw_on = 1;
	static bool hooked;
	if (!hooked) {
		hooked = true;
		atexit(term_restore);
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = fatal_signal;
		sigemptyset(&sa.sa_mask);
		const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT};
		for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			sigaction(fatal[i], &sa, NULL);
	}
	return true;
}
