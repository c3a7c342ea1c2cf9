/* Leveled logging to stderr, shared by every Cove program. */
#ifndef COVE_UTIL_LOG_H
#define COVE_UTIL_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the threshold; messages above it are dropped. Default: WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info", "debug" (case-insensitive). Returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *out);

/* Sets the program name printed before each message ("cove", "coved"). */
void log_set_prog(const char *prog);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
