/* struct cove_err: an error code with a message that gathers context on the way up. */
#include <cove/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cove_err_set(struct cove_err *err, int code, const char *fmt, ...)
{
	if (!err || err->code)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code ? code : -1;
	return code;
}

int cove_err_prefix(struct cove_err *err, const char *fmt, ...)
{
	if (!err)
		return 0;
	char prefix[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	size_t plen = strlen(prefix), mlen = strlen(err->msg);
	/* Keep the prefix; a very long chain loses the end of the innermost message. */
	if (plen + 2 >= sizeof(err->msg))
		plen = sizeof(err->msg) - 3;
	if (plen + 2 + mlen >= sizeof(err->msg))
		mlen = sizeof(err->msg) - 1 - plen - 2;
	memmove(err->msg + plen + 2, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	err->msg[plen + 2 + mlen] = '\0';
	return err->code;
}

void cove_err_clear(struct cove_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
