/*
 * Checking one maildrop file and turning it into a queue file.
 *
 * The file comes from a local user and may hold anything (lib/maildrop.h
 * gives the format). The submitter is the file's owner. A file that
 * breaks a rule is moved to corrupt/ under a new queue ID with a log line
 * that names the owner's user ID, and is never deleted; the maildrop file
 * is removed only after its queue file is committed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "qfile.h"
#include "sbuf.h"
#include "wakeup.h"

/* Seconds after which an unfinished ".tmp." file counts as abandoned by a
 * sendmail that died. */
#define PICKUP_TMP_MAX_AGE (24 * 3600)
/* Files handled per scan, so that a flood cannot starve wake-ups. */
#define PICKUP_MAX_PER_SCAN 10000
/* Order of the envelope records; R may repeat. */
#define PICKUP_RECORD_ORDER "SEJNRM"

struct pickup_file {
	int dir_fd;            /* maildrop/ */
	const char *name;
	uid_t uid;
	char *login;
	FILE *fp;
	struct qenv *env;
};

/* Moves the file to corrupt/ and logs why. */
static void pickup_reject(struct pickup_file *f, const char *why)
{
	char qid[QID_SIZE], clean[128], to[sizeof(QDIR_CORRUPT) + QID_SIZE];

	qid_new(qid);
	snprintf(to, sizeof(to), "%s/%s", QDIR_CORRUPT, qid);
	str_sanitize(clean, sizeof(clean), f->name, strlen(f->name));
	if (renameat(f->dir_fd, f->name, AT_FDCWD, to) < 0)
		log_error("maildrop/%s from uid %lu: %s; failed to move it to"
		    " %s/: %s", clean, (unsigned long)f->uid, why, QDIR_CORRUPT,
		    strerror(errno));
	else
		log_warn("maildrop/%s from uid %lu: %s; moved to %s/%s", clean,
		    (unsigned long)f->uid, why, QDIR_CORRUPT, qid);
}

/*
 * Reads one envelope record into buf (size bytes). Returns its length
 * without the LF, or -1 when the record is too long, holds NUL or CR, or
 * the file ends before its LF.
 */
static long pickup_read_record(FILE *fp, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
		if (c == '\0' || c == '\r' || n + 1 >= size)
			return -1;
		buf[n++] = (char)c;
	}
	if (c != '\n')
		return -1;
	buf[n] = '\0';
	return (long)n;
}

/* Parses an address record value (external form) into internal form. */
static char *pickup_parse_address(const char *value, int allow_null)
{
	char *path, *internal = NULL;
	const char *rest;

	if (value[0] == '\0')
		return allow_null ? xstrdup("") : NULL;
	path = xasprintf("<%s>", value);
	if (addr_parse_path(path, 0, 0, &internal, &rest) != ADDR_OK
	    || *rest != '\0') {
		free(internal);
		internal = NULL;
	}
	free(path);
	return internal;
}

/* Parses an N record value. Returns the QNOTIFY_* bits or -1. */
static int pickup_parse_notify(const char *value)
{
	size_t count;
	char **words;
	int bits = 0;

	if (strcmp(value, "NEVER") == 0)
		return QNOTIFY_NEVER;
	words = str_split(value, ",", &count);
	for (size_t i = 0; i < count && bits >= 0; i++) {
		if (strcmp(words[i], "SUCCESS") == 0)
			bits |= QNOTIFY_SUCCESS;
		else if (strcmp(words[i], "FAILURE") == 0)
			bits |= QNOTIFY_FAILURE;
		else if (strcmp(words[i], "DELAY") == 0)
			bits |= QNOTIFY_DELAY;
		else
			bits = -1;
	}
	free(words);
	return count == 0 ? -1 : bits;
}

/* 1 when an ENVID is 1..100 printable ASCII characters without '='
 * (the xtext alphabet of RFC 3461 4). */
static int pickup_envid_valid(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > 100)
		return 0;
	for (; *v != '\0'; v++)
		if (*v < 33 || *v > 126 || *v == '=')
			return 0;
	return 1;
}

/* Applies one record to f->env. Returns NULL or the reason it is
 * invalid. */
static const char *pickup_apply_record(struct pickup_file *f, char kind,
    const char *value, int *notify)
{
	struct qenv *env = f->env;

	switch (kind) {
	case 'S':
		env->sender = pickup_parse_address(value, 1);
		return env->sender ? NULL : "invalid sender address";
	case 'E':
		env->envid = xstrdup(value);
		return pickup_envid_valid(value) ? NULL : "invalid ENVID";
	case 'J':
		env->ret = xstrdup(value);
		return strcmp(value, "FULL") == 0 || strcmp(value, "HDRS") == 0
		    ? NULL : "invalid RET";
	case 'N':
		*notify = pickup_parse_notify(value);
		return *notify >= 0 ? NULL : "invalid NOTIFY";
	case 'R': {
		char *rcpt = pickup_parse_address(value, 0);

		if (rcpt == NULL)
			return "invalid recipient address";
		if (env->nrcpt >= MAILDROP_MAX_RCPT) {
			free(rcpt);
			return "too many recipients";
		}
		qenv_add_rcpt(env, rcpt, NULL, *notify > 0 ? *notify : 0);
		free(rcpt);
		return NULL;
	}
	}
	return "unknown record";
}

/* Reads the envelope up to and including "M". Returns NULL or the reason
 * the file is invalid. */
static const char *pickup_parse_envelope(struct pickup_file *f)
{
	char buf[MAILDROP_MAX_RECORD + 1];
	int last = -1, notify = 0;

	if (pickup_read_record(f->fp, buf, sizeof(buf)) < 0
	    || strcmp(buf, MAILDROP_MAGIC) != 0)
		return "not a maildrop file (first line)";
	for (;;) {
		if (pickup_read_record(f->fp, buf, sizeof(buf)) < 0)
			return "truncated or over-long envelope record";
		const char *pos = buf[0] ? strchr(PICKUP_RECORD_ORDER, buf[0]) : NULL;
		int index = pos ? (int)(pos - PICKUP_RECORD_ORDER) : -1;

		if (index < 0)
			return "unknown envelope record";
		if (index < last || (index == last && buf[0] != 'R')
		    || (last < 0 && buf[0] != 'S'))
			return "envelope records out of order or repeated";
		last = index;
		if (buf[0] == 'M')
			return buf[1] == '\0' ? (f->env->nrcpt > 0 ? NULL
			    : "no recipients") : "invalid M record";
		if (buf[1] != ' ')
			return "envelope record without a value";
		const char *why = pickup_apply_record(f, buf[0], buf + 2, &notify);
		if (why != NULL)
			return why;
	}
}

/* RFC 5322 3.3 date in local time. */
static void pickup_format_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		out[0] = '\0';
}

/* Writes the Received header and copies the message. Returns NULL, or
 * the reason the file is rejected, or "" after a local write error
 * (logged; the file stays for the next scan). */
static const char *pickup_copy_message(struct pickup_file *f,
    struct qwriter *w)
{
	char date[64], buf[65536];
	size_t n;
	off_t total = 0;

	pickup_format_date((time_t)f->env->arrival_sec, date, sizeof(date));
	char *received = xasprintf("Received: by %s (%s, from userid %lu)\n"
	    "\tid %s; %s\n", pickup.myhostname, pickup.mail_name,
	    (unsigned long)f->uid, f->env->qid, date);
	int rc = qwriter_write(w, received, strlen(received));

	free(received);
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f->fp)) > 0) {
		total += (off_t)n;
		if (pickup.message_size_limit > 0
		    && total > (off_t)pickup.message_size_limit)
			return "message larger than message_size_limit";
		rc = qwriter_write(w, buf, n);
	}
	if (rc < 0 || ferror(f->fp)) {
		log_error("%s: failed to copy maildrop/%s: %s", f->env->qid,
		    f->name, strerror(errno));
		return "";
	}
	return NULL;
}

/* Applies the submit and sender policy. Returns NULL, the reason to
 * reject, or "" to keep the file for a later scan. */
static const char *pickup_apply_policy(struct pickup_file *f)
{
	int rc = pickup_policy_may_submit(f->uid, f->login);

	if (rc < 0)
		return "";
	if (rc == 0)
		return "user not allowed by authorized_submit_users";
	rc = pickup_policy_may_send_as(f->uid, f->login, f->env->sender);
	if (rc < 0)
		return "";
	if (rc == 0) {
		char clean[ADDR_MAX_PATH + 1];
		char *own = xasprintf("%s@%s", f->login, pickup.myorigin);

		str_sanitize(clean, sizeof(clean), f->env->sender,
		    strlen(f->env->sender));
		log_warn("maildrop/%s: uid %lu (%s) may not use sender <%s>"
		    " (local_login_sender_maps); using <%s>", f->name,
		    (unsigned long)f->uid, f->login, clean, own);
		free(f->env->sender);
		f->env->sender = own;
	}
	return NULL;
}

/* Builds and commits the queue file. Returns as pickup_apply_policy. */
static const char *pickup_enqueue(struct pickup_file *f)
{
	char *err = NULL;
	const char *why;

	f->env->protocol = xstrdup("LOCAL");
	struct qwriter *w = qwriter_open(".", f->env, &err);
	if (w == NULL) {
		log_error("maildrop/%s: failed to create a queue file: %s",
		    f->name, err);
		free(err);
		return "";
	}
	why = pickup_copy_message(f, w);
	if (why != NULL) {
		qwriter_abort(&w);
		return why;
	}
	if (qwriter_commit(&w, &err) < 0) {
		log_error("%s: failed to commit the queue file for maildrop/%s: %s",
		    f->env->qid, f->name, err);
		free(err);
		return "";
	}
	return NULL;
}

/* Opens the file and checks what it is. Returns NULL, the reason to
 * reject, or "" when it vanished. */
static const char *pickup_open(struct pickup_file *f)
{
	struct stat st;
	int fd = openat(f->dir_fd, f->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK
	    | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return "";
		if (fstatat(f->dir_fd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			f->uid = st.st_uid;
		return errno == ELOOP ? "symbolic link" : "file cannot be opened";
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return "file cannot be inspected";
	}
	f->uid = st.st_uid;
	f->fp = fdopen(fd, "r");
	if (f->fp == NULL) {
		close(fd);
		return "";
	}
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	if (st.st_nlink != 1)
		return "file with more than one hard link";
	if (!qid_valid(f->name))
		return "invalid file name";

	struct passwd *pw = getpwuid(st.st_uid);
	if (pw == NULL)
		return "owner has no passwd entry";
	f->login = xstrdup(pw->pw_name);
	return NULL;
}

/* Handles one maildrop file. */
static void pickup_file(int dir_fd, const char *name)
{
	struct pickup_file f = {.dir_fd = dir_fd, .name = name, .uid = (uid_t)-1};
	const char *why;

	f.env = qenv_new();
	why = pickup_open(&f);
	if (why == NULL)
		why = pickup_parse_envelope(&f);
	if (why == NULL)
		why = pickup_apply_policy(&f);
	if (why == NULL)
		why = pickup_enqueue(&f);

	if (why == NULL) {
		char clean[ADDR_MAX_PATH + 1];

		if (unlinkat(dir_fd, name, 0) < 0)
			log_error("%s: failed to remove maildrop/%s: %s; the message"
			    " may be queued twice", f.env->qid, name, strerror(errno));
		str_sanitize(clean, sizeof(clean), f.env->sender,
		    strlen(f.env->sender));
		log_info("%s: uid=%lu from=<%s> nrcpt=%zu", f.env->qid,
		    (unsigned long)f.uid, clean, f.env->nrcpt);
		if (wakeup_qmgr(".", f.env->qid) < 0)
			log_warn("%s: failed to wake qmgr: %s", f.env->qid,
			    strerror(errno));
	} else if (why[0] != '\0') {
		pickup_reject(&f, why);
	}
	if (f.fp != NULL)
		fclose(f.fp);
	free(f.login);
	qenv_free(&f.env);
}

/* Removes a ".tmp." file that a dead sendmail left behind. */
static void pickup_old_tmp(int dir_fd, const char *name)
{
	struct stat st;

	if (strncmp(name, MAILDROP_TMP_PREFIX, strlen(MAILDROP_TMP_PREFIX)) != 0
	    || fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0
	    || st.st_mtime > time(NULL) - PICKUP_TMP_MAX_AGE)
		return;
	if (unlinkat(dir_fd, name, 0) == 0)
		log_warn("maildrop/%s from uid %lu: removed an unfinished file"
		    " older than %d hours", qid_valid(name + 5) ? name : "?",
		    (unsigned long)st.st_uid, PICKUP_TMP_MAX_AGE / 3600);
}

static int pickup_name_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void pickup_scan(void)
{
	DIR *dir = opendir(QDIR_MAILDROP);
	struct dirent *de;
	char **names = NULL;
	size_t count = 0;

	if (dir == NULL) {
		log_error("failed to open %s/: %s", QDIR_MAILDROP, strerror(errno));
		return;
	}
	while (count < PICKUP_MAX_PER_SCAN && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.') {
			pickup_old_tmp(dirfd(dir), de->d_name);
			continue;
		}
		names = xrealloc(names, (count + 1) * sizeof(char *));
		names[count++] = xstrdup(de->d_name);
	}
	/* Oldest first: queue IDs, and so the names, sort by time. */
	qsort(names, count, sizeof(char *), pickup_name_compare);
	for (size_t i = 0; i < count; i++) {
		pickup_file(dirfd(dir), names[i]);
		free(names[i]);
	}
	free(names);
	closedir(dir);
}
