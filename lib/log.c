/*
 * log - logging to syslog, to maillog_file or to standard error (see
 * log.h for the contract).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* Maximum length of a log line with its prefix. Longer text is cut. */
#define LOG_LINE_MAX 2048

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
	LOG_LEVEL_PANIC
};

static enum log_target log_target_current = LOG_TARGET_STDERR;
static int log_file_fd = -1;
static int log_debug_on;
static int log_syslog_facility = LOG_MAIL;
static char log_program[64] = "postern";
static char log_ident[128] = "postern/postern";
static char log_hostname[256] = "localhost";

static const char *log_level_prefix(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_WARN:
		return "warning: ";
	case LOG_LEVEL_ERROR:
		return "error: ";
	case LOG_LEVEL_FATAL:
		return "fatal: ";
	case LOG_LEVEL_PANIC:
		return "panic: ";
	default:
		return "";
	}
}

static int log_level_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return LOG_DEBUG;
	case LOG_LEVEL_INFO:
		return LOG_INFO;
	case LOG_LEVEL_WARN:
		return LOG_WARNING;
	case LOG_LEVEL_ERROR:
		return LOG_ERR;
	case LOG_LEVEL_FATAL:
		return LOG_CRIT;
	default:
		return LOG_ALERT;
	}
}

static void log_set_ident(const char *syslog_name)
{
	snprintf(log_ident, sizeof(log_ident), "%s/%s", syslog_name, log_program);
}

static void log_set_hostname(const char *name)
{
	snprintf(log_hostname, sizeof(log_hostname), "%s", name);
}

void log_init(const char *progname)
{
	const char *env = getenv("POSTERN_LOG_STDERR");
	char host[256];

	snprintf(log_program, sizeof(log_program), "%s", progname);
	log_set_ident("postern");
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		log_set_hostname(host);
	}

	if (env != NULL && strcmp(env, "1") == 0)
		log_set_target(LOG_TARGET_STDERR, NULL);
	else
		log_set_target(LOG_TARGET_SYSLOG, NULL);
}

static const struct {
	const char *name;
	int facility;
} log_facilities[] = {
	{"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
	{"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

void log_configure(void)
{
	const char *facility = config_str("syslog_facility");
	const char *file = config_str("maillog_file");
	size_t i;

	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (strcmp(log_facilities[i].name, facility) == 0)
			break;
	if (i < sizeof(log_facilities) / sizeof(log_facilities[0]))
		log_syslog_facility = log_facilities[i].facility;
	else
		log_warn("invalid syslog_facility \"%s\": expected mail, daemon, "
		    "user or local0 to local7; using mail", facility);

	log_set_ident(config_str("syslog_name"));
	log_set_hostname(config_str("myhostname"));

	/* maillog_file wins over the foreground mode, so that an instance run
	 * in the foreground still writes the file its operator asked for. */
	if (file[0] != '\0') {
		if (log_set_target(LOG_TARGET_FILE, file) < 0)
			log_error("cannot open maillog_file %s: %s", file,
			    strerror(errno));
	} else if (log_target_current == LOG_TARGET_SYSLOG) {
		log_set_target(LOG_TARGET_SYSLOG, NULL);
	}
}

int log_set_target(enum log_target target, const char *path)
{
	if (target == LOG_TARGET_FILE) {
		if (path == NULL) {
			errno = EINVAL;
			return -1;
		}
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0644);
		if (fd < 0)
			return -1;
		if (log_file_fd >= 0)
			close(log_file_fd);
		log_file_fd = fd;
	}
	if (log_target_current == LOG_TARGET_SYSLOG && target != LOG_TARGET_SYSLOG)
		closelog();
	if (target == LOG_TARGET_SYSLOG) {
		/* LOG_NDELAY connects now, before any chroot hides /dev/log. */
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, log_syslog_facility);
	}
	log_target_current = target;
	return 0;
}

void log_debug_enable(int on)
{
	log_debug_on = on;
}

/* Replaces line breaks so that each call gives exactly one line. */
static void log_flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/* Appends "\n" to line (of length len, in a LOG_LINE_MAX + 2 buffer). */
static size_t log_terminate(char *line, int n)
{
	size_t len = n < 0 ? 0 : (size_t)n;

	if (len > LOG_LINE_MAX)
		len = LOG_LINE_MAX;
	line[len++] = '\n';
	return len;
}

static void log_emit_stderr(enum log_level level, const char *text)
{
	char line[LOG_LINE_MAX + 2];

	int n = snprintf(line, LOG_LINE_MAX + 1, "%s[%ld]: %s%s", log_ident,
	    (long)getpid(), log_level_prefix(level), text);
	size_t len = log_terminate(line, n);
	ssize_t rc = write(STDERR_FILENO, line, len);
	(void)rc;
}

static void log_emit_file(enum log_level level, const char *text)
{
	char line[LOG_LINE_MAX + 2];
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	int n = snprintf(line, LOG_LINE_MAX + 1, "%s %s %s[%ld]: %s%s", stamp,
	    log_hostname, log_ident, (long)getpid(), log_level_prefix(level),
	    text);
	size_t len = log_terminate(line, n);
	ssize_t rc = write(log_file_fd, line, len);
	(void)rc;
}

static void log_emit(enum log_level level, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX + 1];
	int saved_errno = errno;

	vsnprintf(text, sizeof(text), fmt, ap);
	log_flatten(text);

	switch (log_target_current) {
	case LOG_TARGET_FILE:
		if (log_file_fd >= 0) {
			log_emit_file(level, text);
			break;
		}
		/* fall through */
	case LOG_TARGET_STDERR:
		log_emit_stderr(level, text);
		break;
	case LOG_TARGET_SYSLOG:
		syslog(log_level_priority(level), "%s%s", log_level_prefix(level),
		    text);
		break;
	}

	/* Fatal messages also go to a terminal on standard error, so that a
	 * program started by hand shows why it stopped. */
	if (level >= LOG_LEVEL_FATAL && log_target_current != LOG_TARGET_STDERR &&
	    isatty(STDERR_FILENO))
		log_emit_stderr(level, text);
	errno = saved_errno;
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_PANIC, fmt, ap);
	va_end(ap);
	abort();
}

/* Rate limiting: a small table of keys, the oldest replaced when full. */
#define LOG_RATELIMIT_SLOTS 64
#define LOG_RATELIMIT_KEY_MAX 64

struct log_ratelimit_slot {
	char key[LOG_RATELIMIT_KEY_MAX];
	time_t window_start;
	int count;
	int suppressed;
};

static struct log_ratelimit_slot log_ratelimit_slots[LOG_RATELIMIT_SLOTS];
static pthread_mutex_t log_ratelimit_lock = PTHREAD_MUTEX_INITIALIZER;

static struct log_ratelimit_slot *log_ratelimit_find(const char *key)
{
	struct log_ratelimit_slot *oldest = &log_ratelimit_slots[0];

	for (size_t i = 0; i < LOG_RATELIMIT_SLOTS; i++) {
		struct log_ratelimit_slot *slot = &log_ratelimit_slots[i];
		/* Keys longer than the slot compare on their stored prefix. */
		if (slot->key[0] != '\0' &&
		    strncmp(slot->key, key, sizeof(slot->key) - 1) == 0)
			return slot;
		if (slot->window_start < oldest->window_start)
			oldest = slot;
	}
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->window_start = 0;
	oldest->count = 0;
	oldest->suppressed = 0;
	return oldest;
}

int log_ratelimit(const char *key, int burst, int interval)
{
	struct timespec ts;
	int allowed, suppressed = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&log_ratelimit_lock);
	struct log_ratelimit_slot *slot = log_ratelimit_find(key);
	if (slot->window_start == 0 || ts.tv_sec - slot->window_start >= interval) {
		suppressed = slot->suppressed;
		/* Monotonic time can be 0 early after boot; keep 0 as "unused". */
		slot->window_start = ts.tv_sec > 0 ? ts.tv_sec : 1;
		slot->count = 0;
		slot->suppressed = 0;
	}
	allowed = slot->count < burst;
	if (allowed)
		slot->count++;
	else
		slot->suppressed++;
	pthread_mutex_unlock(&log_ratelimit_lock);

	if (suppressed > 0)
		log_info("%d more messages keyed \"%s\" were suppressed in the "
		    "last %d seconds", suppressed, key, interval);
	return allowed;
}
