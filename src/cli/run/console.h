/* The host side of the guest console: raw terminal mode and the event-loop thread. */
#ifndef COVE_CLI_RUN_CONSOLE_H
#define COVE_CLI_RUN_CONSOLE_H

#include "vmm/machine.h"

#include <stdbool.h>

/* Puts stdin in raw mode if it is a terminal; restored at exit, on fatal signals, and by
 * term_restore(). Returns true if raw mode is on. */
bool term_raw_enter(void);
void term_restore(void);

struct event_loop;

/*
 * Starts the event-loop thread for machine m: stdin to the UART (when input is true;
 * Ctrl-A X quits when stdin is a terminal), SIGINT/SIGTERM/SIGHUP to a clean stop (they
 * must be blocked in every thread before this is called), and periodic output flushing.
 * Returns NULL on failure.
 */
struct event_loop *event_loop_start(struct machine *m, bool input, bool escape);

/* Stops and joins the thread. Returns the signal that stopped the VM, or 0. */
int event_loop_stop(struct event_loop *loop);

#endif
