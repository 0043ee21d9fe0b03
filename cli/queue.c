/*
 * postern queue, flush and cat: listing, retrying and printing queued
 * messages. They read the queue directory directly and never change a
 * queue file; flush only sets the access and modification times of deferred files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "addr.h"
#include "config.h"
#include "qfile.h"
#include "sbuf.h"
#include "wakeup.h"

/* The queues that hold messages waiting for delivery, with the marker
 * that the text listing puts after the queue ID. */
static const struct {
	const char *name;
	char marker;
} queue_dirs[] = {
	{QDIR_INCOMING, ' '},
	{QDIR_ACTIVE, '*'},
	{QDIR_DEFERRED, ' '},
	{QDIR_HOLD, '!'},
};

#define QUEUE_DIR_COUNT (sizeof(queue_dirs) / sizeof(queue_dirs[0]))

static int queue_qid_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the queue IDs in queue_dir/subdir, sorted (so by arrival).
 * Returns a NULL-terminated array (free each and the array), or NULL
 * with a message on stderr. A missing directory is an empty queue. */
static char **queue_list_ids(const char *queue_dir, const char *subdir)
{
	char *path = xasprintf("%s/%s", queue_dir, subdir);
	DIR *dir = opendir(path);
	char **ids = xcalloc(1, sizeof(char *));
	size_t count = 0;
	struct dirent *de;

	if (dir == NULL) {
		if (errno != ENOENT) {
			fprintf(stderr, "postern: failed to open %s: %s\n", path,
			    strerror(errno));
			free(ids);
			ids = NULL;
		}
		free(path);
		return ids;
	}
	while ((de = readdir(dir)) != NULL) {
		/* Skips ".", ".." and the temporary files of writers. */
		if (!qid_valid(de->d_name))
			continue;
		ids = xrealloc(ids, (count + 2) * sizeof(char *));
		ids[count++] = xstrdup(de->d_name);
		ids[count] = NULL;
	}
	closedir(dir);
	free(path);
	qsort(ids, count, sizeof(char *), queue_qid_compare);
	return ids;
}

static void queue_free_ids(char **ids)
{
	for (size_t i = 0; ids != NULL && ids[i] != NULL; i++)
		free(ids[i]);
	free(ids);
}

/* Length of the valid UTF-8 sequence at s, or 0 when s[0] does not
 * start one. */
static size_t queue_utf8_len(const unsigned char *s)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		min = 0x80;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		min = 0x800;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		min = 0x10000;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Prints s as a JSON string (RFC 8259): quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. NULL prints null. */
static void queue_json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (; *p != '\0'; p++) {
		size_t len;

		if (*p == '"' || *p == '\\') {
			fputc('\\', out);
			fputc(*p, out);
		} else if (*p == '\n') {
			fputs("\\n", out);
		} else if (*p == '\t') {
			fputs("\\t", out);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p);
		} else if (*p < 0x80) {
			fputc(*p, out);
		} else if ((len = queue_utf8_len(p)) > 0) {
			fwrite(p, 1, len, out);
			p += len - 1;
		} else {
			fputs("\\ufffd", out);
		}
	}
	fputc('"', out);
}

static const char *queue_status_name(char status)
{
	switch (status) {
	case QSTATUS_DELIVERED: return "delivered";
	case QSTATUS_BOUNCED: return "bounced";
	default: return "pending";
	}
}

static void queue_print_json(const char *queue_name, const struct qenv *env,
    char **reasons)
{
	printf("{\"queue_id\": ");
	queue_json_string(stdout, env->qid);
	printf(", \"queue_name\": ");
	queue_json_string(stdout, queue_name);
	printf(", \"size\": %lld, \"arrival_time\": %ld, \"sender\": ",
	    (long long)env->msg_size, env->arrival_sec);
	queue_json_string(stdout, env->sender);
	printf(", \"recipients\": [");
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qrcpt *r = &env->rcpt[i];

		printf("%s{\"address\": ", i ? ", " : "");
		queue_json_string(stdout, r->addr);
		printf(", \"status\": \"%s\", \"delay_reason\": ",
		    queue_status_name(r->status));
		queue_json_string(stdout,
		    r->status == QSTATUS_PENDING ? reasons[i] : NULL);
		putchar('}');
	}
	printf("]}\n");
}

/* Prints s with control and non-ASCII bytes shown as '?'. */
static void queue_print_clean(const char *s)
{
	size_t len = strlen(s);
	char *buf = xmalloc(len + 1);

	str_sanitize(buf, len + 1, s, len);
	fputs(buf, stdout);
	free(buf);
}

static void queue_print_text(char marker, const struct qenv *env,
    char **reasons)
{
	char when[64];
	time_t t = (time_t)env->arrival_sec;
	struct tm tm;

	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", localtime_r(&t, &tm));
	printf("%s%c %9lld  %s  ", env->qid, marker, (long long)env->msg_size,
	    when);
	if (env->sender[0] != '\0') {
		char *external = addr_externalize(env->sender);

		queue_print_clean(external);
		free(external);
	} else {
		fputs("<>", stdout);
	}
	putchar('\n');
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (env->rcpt[i].status != QSTATUS_PENDING)
			continue;
		if (reasons[i] != NULL) {
			printf("%*s(", 24, "");
			queue_print_clean(reasons[i]);
			printf(")\n");
		}
		char *external = addr_externalize(env->rcpt[i].addr);

		printf("%*s", 24, "");
		queue_print_clean(external);
		putchar('\n');
		free(external);
	}
	putchar('\n');
}

/* Prints one queued message. Returns its size, or -1 when it could not
 * be read (a message that left the queue meanwhile is skipped, as 0). */
static long long queue_show(const char *queue_dir, size_t dir_index,
    const char *qid, int json)
{
	char *path = xasprintf("%s/%s/%s", queue_dir, queue_dirs[dir_index].name, qid);
	struct qenv *env = NULL;
	char **reasons = NULL;
	char *err = NULL;
	long long size;
	int fd = -1;
	int rc = qfile_read(path, 0, &env, &fd, &err);

	if (rc < 0) {
		if (rc == -1 && errno == ENOENT) {
			free(path);
			return 0;
		}
		fprintf(stderr, "postern: failed to read queue file %s: %s\n", path,
		    rc == -2 ? err : strerror(errno));
		free(err);
		free(path);
		return -1;
	}
	close(fd);
	if (qfile_defer_log_read(queue_dir, qid, env->nrcpt, &reasons) < 0) {
		fprintf(stderr, "postern: failed to read the defer log of %s: %s\n",
		    qid, strerror(errno));
		reasons = xcalloc(env->nrcpt + 1, sizeof(char *));
	}
	if (json)
		queue_print_json(queue_dirs[dir_index].name, env, reasons);
	else
		queue_print_text(queue_dirs[dir_index].marker, env, reasons);
	size = (long long)env->msg_size;
	for (size_t i = 0; i < env->nrcpt; i++)
		free(reasons[i]);
	free(reasons);
	qenv_free(&env);
	free(path);
	return size;
}

int cmd_queue(int argc, char **argv)
{
	const char *queue_dir = config_str("queue_directory");
	long long total = 0;
	size_t messages = 0;
	int json = 0, status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") != 0) {
			fprintf(stderr, "postern: queue: unknown argument \"%s\"\n"
			    "usage: postern queue [--json]\n", argv[i]);
			return 2;
		}
		json = 1;
	}
	if (!json)
		printf("%-22s  %9s  %-19s  %s\n", "Queue ID", "Size",
		    "Arrival time", "Sender/Recipients");
	for (size_t d = 0; d < QUEUE_DIR_COUNT; d++) {
		char **ids = queue_list_ids(queue_dir, queue_dirs[d].name);

		if (ids == NULL) {
			status = 1;
			continue;
		}
		for (size_t i = 0; ids[i] != NULL; i++) {
			long long size = queue_show(queue_dir, d, ids[i], json);

			if (size < 0)
				status = 1;
			else {
				total += size;
				messages++;
			}
		}
		queue_free_ids(ids);
	}
	if (!json && messages == 0)
		printf("Mail queue is empty\n");
	else if (!json)
		printf("-- %lld Kbytes in %zu message%s.\n", (total + 1023) / 1024,
		    messages, messages == 1 ? "" : "s");
	fflush(stdout);
	return status;
}

int cmd_flush(int argc, char **argv)
{
	const char *queue_dir = config_str("queue_directory");
	char **ids;
	int status = 0;

	if (argc > 1) {
		fprintf(stderr, "postern: flush takes no arguments\n");
		return 2;
	}
	ids = queue_list_ids(queue_dir, QDIR_DEFERRED);
	if (ids == NULL)
		return 1;
	/* qmgr retries a deferred message once its modification time has
	 * passed, so "now" makes every one due. */
	for (size_t i = 0; ids[i] != NULL; i++) {
		char *path = xasprintf("%s/%s/%s", queue_dir, QDIR_DEFERRED, ids[i]);

		if (utimes(path, NULL) < 0 && errno != ENOENT) {
			fprintf(stderr, "postern: failed to set the time of %s: %s\n",
			    path, strerror(errno));
			status = 1;
		}
		free(path);
	}
	queue_free_ids(ids);

	if (wakeup_qmgr_flush(queue_dir) < 0) {
		fprintf(stderr, "postern: failed to reach qmgr at %s/%s: %s; "
		    "is Postern running? (\"postern start\")\n", queue_dir,
		    QMGR_SOCKET_NAME, strerror(errno));
		return 1;
	}
	return status;
}

static void cat_print_envelope(const char *queue_name, const struct qenv *env)
{
	char when[64];
	time_t t = (time_t)env->arrival_sec;
	struct tm tm;

	strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S %z", localtime_r(&t, &tm));
	printf("queue_id: %s\nqueue: %s\n", env->qid, queue_name);
	printf("arrival: %s (%ld.%06ld)\n", when, env->arrival_sec, env->arrival_usec);
	printf("sender: %s\n", env->sender[0] ? env->sender : "<>");
	if (env->client_addr != NULL || env->client_name != NULL)
		printf("client: %s[%s]\n",
		    env->client_name ? env->client_name : "unknown",
		    env->client_addr ? env->client_addr : "unknown");
	if (env->helo != NULL)
		printf("helo: %s\n", env->helo);
	if (env->protocol != NULL)
		printf("protocol: %s\n", env->protocol);
	if (env->auth_user != NULL)
		printf("authenticated user: %s\n", env->auth_user);
	if (env->tls != NULL)
		printf("tls: %s\n", env->tls);
	if (env->envid != NULL)
		printf("envid: %s\n", env->envid);
	if (env->ret != NULL)
		printf("ret: %s\n", env->ret);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qrcpt *r = &env->rcpt[i];

		char *external = addr_externalize(r->addr);

		printf("recipient: %s", external);
		free(external);
		if (r->status != QSTATUS_PENDING)
			printf(" (%s)", queue_status_name(r->status));
		putchar('\n');
		if (r->orcpt != NULL)
			printf("  orcpt: %s\n", r->orcpt);
	}
}

/* Copies the message of fd from env->msg_offset to standard output. */
static int cat_copy_message(int fd, const struct qenv *env)
{
	char buf[65536];
	off_t off = env->msg_offset;
	off_t end = env->msg_offset + env->msg_size;

	fflush(stdout);
	while (off < end) {
		size_t want = end - off < (off_t)sizeof(buf) ? (size_t)(end - off)
		    : sizeof(buf);
		ssize_t n = pread(fd, buf, want, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
		off += n;
	}
	return fflush(stdout) == 0 ? 0 : -1;
}

int cmd_cat(int argc, char **argv)
{
	static const char *const dirs[] = {QDIR_INCOMING, QDIR_ACTIVE,
	    QDIR_DEFERRED, QDIR_HOLD, QDIR_CORRUPT};
	const char *queue_dir = config_str("queue_directory");

	if (argc != 2) {
		fprintf(stderr, "usage: postern cat QUEUEID\n");
		return 2;
	}
	if (!qid_valid(argv[1])) {
		fprintf(stderr, "postern: invalid queue ID \"%s\": expected %d "
		    "hexadecimal digits (0-9, A-F) as shown by \"postern queue\"\n",
		    argv[1], QID_LEN);
		return 2;
	}
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		char *path = xasprintf("%s/%s/%s", queue_dir, dirs[d], argv[1]);
		struct qenv *env = NULL;
		char *err = NULL;
		int fd = -1, rc;

		rc = qfile_read(path, 0, &env, &fd, &err);
		if (rc == -1 && errno == ENOENT) {
			free(path);
			continue;
		}
		if (rc < 0) {
			fprintf(stderr, "postern: failed to read queue file %s: %s\n",
			    path, rc == -2 ? err : strerror(errno));
			free(err);
			free(path);
			return 1;
		}
		cat_print_envelope(dirs[d], env);
		putchar('\n');
		rc = cat_copy_message(fd, env);
		if (rc < 0)
			fprintf(stderr, "postern: failed to copy the message of %s: %s\n",
			    path, strerror(errno));
		close(fd);
		qenv_free(&env);
		free(path);
		return rc < 0 ? 1 : 0;
	}
	fprintf(stderr, "postern: queue ID %s not found in %s\n", argv[1], queue_dir);
	return 1;
}
