/* SPDX-License-Identifier: GPL-2.0-only */
/* The one logging API of weft: one line per event on stderr,
 * "component: message key=value", no timestamps (journald and kubelet add them).
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Set the most verbose level that is printed; the default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "err", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);

/* Set the component prefix printed before every line ("weft-agent"). */
void log_set_ident(const char *ident);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Log at error level "<message>: <strerror(-err)>" and return @err (a negative
 * errno), so a caller can write `return log_errno(err, "attach '%s'", path);`.
 */
int log_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* WEFT_LOG_H */
