/* An error with context, passed across library boundaries (block layer, OCI, API). */
#ifndef COVE_ERROR_H
#define COVE_ERROR_H

struct cove_err {
	int code;      /* negative errno, 0 when no error */
	char msg[512]; /* one line for the user: what was wrong and, where known, what to do */
};

/*
 * Records an error in err (which may be NULL) unless one is already recorded: the
 * innermost message is kept and callers add context with cove_err_prefix().
 * Returns code, so that `return cove_err_set(err, -EINVAL, "...")` reads naturally.
 */
int cove_err_set(struct cove_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "context: " in front of the recorded message. Returns err->code (or 0). */
int cove_err_prefix(struct cove_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err. */
void cove_err_clear(struct cove_err *err);

#endif
