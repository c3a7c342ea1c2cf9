/* The event-loop thread: console input to the UART, signals to a clean stop, output flushing. */
#include "cli/run/console.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FLUSH_INTERVAL_NS (20 * 1000 * 1000)
#define CTRL_A		  0x01

struct event_loop {
	struct machine *m;
	pthread_t thread;
	int epfd;
	int sigfd;
	int timerfd;
	int stopfd;
	int rtcfd;	     /* the RTC's periodic/alarm/update interrupts, when enabled */
	uint64_t rtc_period; /* ns the rtcfd is armed with, 0 when disarmed */
	bool input;	     /* stdin feeds the UART */
	bool escape;	     /* Ctrl-A X quits */
	bool in_paused;
	bool in_polled; /* stdin is a file epoll refuses: read it on each tick */
	bool saw_ctrl_a;
	int stop_signal;
};

enum { EV_STDIN = 1, EV_SIGNAL, EV_TIMER, EV_STOP, EV_RTC };

static int watch(int epfd, int fd, uint64_t tag, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

/* Feeds stdin to the UART, handling the Ctrl-A escape. Returns false on EOF or error. */
static bool pump_stdin(struct event_loop *l)
{
	size_t space = serial_rx_space(l->m->serial);
	if (space == 0) {
		/* The guest is not reading: wait for the next tick instead of spinning. */
		if (!l->in_polled) {
			watch(l->epfd, STDIN_FILENO, EV_STDIN, false);
			l->in_paused = true;
		}
		return true;
	}
	uint8_t buf[256], out[256];
	ssize_t n = read(STDIN_FILENO, buf, space < sizeof(buf) ? space : sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	size_t o = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (l->escape && l->saw_ctrl_a) {
			l->saw_ctrl_a = false;
			if (c == 'x' || c == 'X') {
				vm_request_stop(&l->m->vm, VM_STOPPED, "stopped (Ctrl-A X)");
				return true;
			}
			if (c != CTRL_A)
				out[o++] = CTRL_A;
			out[o++] = c;
		} else if (l->escape && c == CTRL_A) {
			l->saw_ctrl_a = true;
		} else {
			out[o++] = c;
		}
	}
	if (o)
		serial_input(l->m->serial, out, o);
	return true;
}

/* Follows the guest's choice of RTC interrupts (checked on each flush tick). */
static void rtc_rearm(struct event_loop *l)
{
	uint64_t period = l->m->rtc ? rtc_tick_interval_ns(l->m->rtc) : 0;
	if (period == l->rtc_period)
		return;
	l->rtc_period = period;
	struct itimerspec it = {
	    .it_interval = {(time_t)(period / 1000000000), (long)(period % 1000000000)},
	    .it_value = {(time_t)(period / 1000000000), (long)(period % 1000000000)},
	};
	timerfd_settime(l->rtcfd, 0, &it, NULL);
}

static void *loop_thread(void *arg)
{
	struct event_loop *l = arg;
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(l->epfd, evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("event loop: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case EV_STOP:
				return NULL;
			case EV_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(l->sigfd, &si, sizeof(si)) == sizeof(si)) {
					l->stop_signal = (int)si.ssi_signo;
					vm_request_stop(&l->m->vm, VM_STOPPED, NULL);
				}
				break;
			}
			case EV_TIMER: {
				uint64_t ticks;
				if (read(l->timerfd, &ticks, sizeof(ticks)) < 0)
					break;
				serial_flush(l->m->serial);
				rtc_rearm(l);
				if (l->input && l->in_polled && !pump_stdin(l))
					l->input = false;
				if (l->in_paused && serial_rx_space(l->m->serial)) {
					l->in_paused = false;
					watch(l->epfd, STDIN_FILENO, EV_STDIN, true);
				}
				break;
			}
			case EV_RTC: {
				uint64_t ticks;
				if (read(l->rtcfd, &ticks, sizeof(ticks)) == sizeof(ticks) &&
				    l->rtc_period)
					rtc_tick(
					    l->m->rtc); /* missed ticks coalesce, as on hardware */
				break;
			}
			case EV_STDIN:
				if (!pump_stdin(l)) {
					/* EOF: the guest simply gets no more input. */
					watch(l->epfd, STDIN_FILENO, EV_STDIN, false);
					l->input = false;
				}
				break;
			}
		}
	}
}

static void close_fds(struct event_loop *l)
{
	int *fds[] = {&l->epfd, &l->sigfd, &l->timerfd, &l->stopfd, &l->rtcfd};
	for (unsigned i = 0; i < 5; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
}

struct event_loop *event_loop_start(struct machine *m, bool input, bool escape)
{
	struct event_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = l->sigfd = l->timerfd = l->stopfd = l->rtcfd = -1;
	l->m = m;
	l->input = input;
	l->escape = escape;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	l->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->rtcfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->epfd < 0 || l->sigfd < 0 || l->timerfd < 0 || l->stopfd < 0 || l->rtcfd < 0)
		goto fail;
	struct itimerspec it = {
	    .it_interval = {0, FLUSH_INTERVAL_NS},
	    .it_value = {0, FLUSH_INTERVAL_NS},
	};
	if (timerfd_settime(l->timerfd, 0, &it, NULL) < 0)
		goto fail;
	if (watch(l->epfd, l->sigfd, EV_SIGNAL, true) ||
	    watch(l->epfd, l->timerfd, EV_TIMER, true) || watch(l->epfd, l->stopfd, EV_STOP, true))
		goto fail;
	/* stdin may be a regular file or /dev/null, which epoll refuses: poll those per tick. */
	if (l->input && watch(l->epfd, STDIN_FILENO, EV_STDIN, true))
		l->in_polled = true;
	if (pthread_create(&l->thread, NULL, loop_thread, l) != 0)
		goto fail;
	pthread_setname_np(l->thread, "events");
	return l;
fail:
	close_fds(l);
	free(l);
	return NULL;
}

int event_loop_stop(struct event_loop *l)
{
	uint64_t one = 1;
	if (write(l->stopfd, &one, sizeof(one)) < 0)
		log_debug("event loop: cannot signal stop: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	int sig = l->stop_signal;
	close_fds(l);
	free(l);
	return sig;
}
