/*
 * log - logging for every Postern program.
 *
 * Lines go to syslog (facility syslog_facility, ident "postern/PROGRAM"
 * with the PID), to the file named by maillog_file (appended with one
 * write per line, so several processes can share it), or to standard
 * error in the foreground mode. Per-message lines start with the queue ID
 * and connection lines name the client as name[address]:port; callers
 * format that part. Client text must be passed through str_sanitize().
 *
 * The functions are safe to call from several threads: each line is
 * formatted on the stack and emitted with one syscall.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

enum log_target {
	LOG_TARGET_SYSLOG,
	LOG_TARGET_STDERR,
	LOG_TARGET_FILE
};

/*
 * Sets the program name used in every line, and the first target:
 * standard error when the environment variable POSTERN_LOG_STDERR is
 * set to 1 (the foreground mode sets it for every child), syslog otherwise.
 */
void log_init(const char *progname);

/*
 * Applies maillog_file and syslog_facility from the loaded configuration.
 * Call after config_load() and before dropping privileges, because the
 * log file is opened here and kept open.
 */
void log_configure(void);

/* Forces a target: LOG_TARGET_FILE needs path, the others ignore it. */
int log_set_target(enum log_target target, const char *path);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at debug level only when debug logging was enabled with log_debug_enable. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_enable(int on);

/* Logs and exits with status 1: for startup failures (config, bind, setuid). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Logs and aborts for a core dump: for broken internal invariants. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Returns 1 when a warning keyed by key may be logged now, 0 when the
 * same key was already logged burst times in the current interval of
 * interval seconds. Use for warnings a client can trigger at will.
 */
int log_ratelimit(const char *key, int burst, int interval);

#endif
