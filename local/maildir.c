/*
 * Maildir delivery (https://cr.yp.to/proto/maildir.html): the message is
 * written to tmp/UNIQUE, fsync()ed, renamed into new/UNIQUE, and new/ is
 * fsync()ed, so a message in new/ is always complete and durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver.h"
#include "iox.h"
#include "local.h"
#include "log.h"

/* Per-process part of the unique name; with the PID and the time it
 * keeps two deliveries of one process in one microsecond apart. */
static unsigned long maildir_counter;

int maildir_unique_name(char *out, size_t out_size, const struct timeval *tv,
    pid_t pid, unsigned long counter, const char *host)
{
	struct sbuf sb;
	int rc = 0;

	sbuf_init(&sb, out_size);
	if (sbuf_printf(&sb, "%ld.M%ldP%ldQ%lu.", (long)tv->tv_sec,
	    (long)tv->tv_usec, (long)pid, counter) < 0)
		rc = -1;

	/* '/' would make a path and ':' starts the info part of the name. */
	for (const char *p = host; rc == 0 && *p; p++) {
		if (*p == '/')
			rc = sbuf_puts(&sb, "\\057");
		else if (*p == ':')
			rc = sbuf_puts(&sb, "\\072");
		else
			rc = sbuf_putc(&sb, *p);
	}
	if (rc == 0 && sb.len + 1 <= out_size)
		memcpy(out, sbuf_cstr(&sb), sb.len + 1);
	else
		rc = -1;
	sbuf_free(&sb);
	return rc;
}

/* Creates dir with mode 0700 unless it exists as a directory. */
static int maildir_mkdir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* Creates path and its missing parents, then tmp/, new/ and cur/. */
static int maildir_make_dirs(const char *path, struct local_result *res)
{
	char buf[PATH_MAX];
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	size_t len = strlen(path);

	if (len + 5 >= sizeof(buf)) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "Maildir path is too long: %s", path);
		return -1;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';

	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (maildir_mkdir(buf) < 0) {
			local_result_errno(res, errno, buf);
			return -1;
		}
		*p = '/';
	}
	if (maildir_mkdir(buf) < 0) {
		local_result_errno(res, errno, buf);
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(buf + len, sizeof(buf) - len, "/%s", subdirs[i]);
		if (maildir_mkdir(buf) < 0) {
			local_result_errno(res, errno, buf);
			return -1;
		}
	}
	return 0;
}

/* Writes the added headers and the message to fd and fsync()s it. */
static int maildir_write(const struct local_msg *m, int fd, const char *rcpt)
{
	struct sbuf prefix;
	int rc = -1;

	sbuf_init(&prefix, 4096);
	if (local_delivery_prefix(&prefix, m->env->sender, rcpt) < 0) {
		errno = EMSGSIZE;
		goto out;
	}
	if (iox_write_all(fd, prefix.data, prefix.len) < 0)
		goto out;
	if (local_msg_copy(m, fd) < 0)
		goto out;
	if (fsync(fd) < 0)
		goto out;
	rc = 0;
out:
	sbuf_free(&prefix);
	return rc;
}

static const char *maildir_hostname(void)
{
	static char host[256];

	if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	return host;
}

int maildir_deliver(const struct local_msg *m, const char *path,
    const char *rcpt, struct local_result *res)
{
	char unique[512], tmp_path[PATH_MAX], new_path[PATH_MAX];
	char new_dir[PATH_MAX];
	struct timeval tv;
	int fd, n;

	if (maildir_make_dirs(path, res) < 0)
		return -1;

	gettimeofday(&tv, NULL);
	if (maildir_unique_name(unique, sizeof(unique), &tv, getpid(),
	    ++maildir_counter, maildir_hostname()) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot make a Maildir file name");
		return -1;
	}
	n = snprintf(tmp_path, sizeof(tmp_path), "%s/tmp/%s", path, unique);
	if (n < 0 || (size_t)n >= sizeof(tmp_path)
	    || snprintf(new_path, sizeof(new_path), "%s/new/%s", path, unique)
	    >= (int)sizeof(new_path)
	    || snprintf(new_dir, sizeof(new_dir), "%s/new", path)
	    >= (int)sizeof(new_dir)) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "Maildir path is too long: %s", path);
		return -1;
	}

	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		local_result_errno(res, errno, tmp_path);
		return -1;
	}
	if (maildir_write(m, fd, rcpt) < 0) {
		int err = errno;

		close(fd);
		unlink(tmp_path);
		local_result_errno(res, err, tmp_path);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp_path, new_path) < 0) {
		int err = errno;

		unlink(tmp_path);
		local_result_errno(res, err, new_path);
		return -1;
	}
	if (iox_fsync_dir(new_dir) < 0) {
		/* The rename may not survive a crash: take the file back and
		 * defer, so that the retry delivers it again. */
		int err = errno;

		unlink(new_path);
		local_result_errno(res, err, new_dir);
		return -1;
	}
	local_result_set(res, DELIVER_SENT, "2.0.0", "delivered to maildir");
	return 0;
}
