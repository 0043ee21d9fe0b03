/*
 * mbox delivery: the message is appended to one file, after a "From "
 * line, with body lines that start with "From " written as ">From ", and
 * an empty line at the end. The file is locked with fcntl() and flock(),
 * because mail readers use one or the other. A failed append is cut off
 * again so that the mailbox keeps its old contents.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "deliver.h"
#include "iox.h"
#include "local.h"
#include "log.h"

/* How long to wait for another program's mailbox lock, in milliseconds. */
#define MBOX_LOCK_WAIT_MS 30000
#define MBOX_LOCK_STEP_MS 100

int mbox_from_line(struct sbuf *out, const char *sender, time_t when)
{
	char date[64];
	struct tm tm;
	char *ext;
	int rc;

	/* The asctime() layout that mbox readers expect. */
	localtime_r(&when, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	ext = sender[0] ? addr_externalize(sender) : xstrdup("MAILER-DAEMON");
	rc = sbuf_printf(out, "From %s %s\n", ext, date);
	free(ext);
	return rc;
}

/* Takes both locks, retrying for up to MBOX_LOCK_WAIT_MS. */
static int mbox_lock(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int waited = 0;

	while (fcntl(fd, F_SETLK, &fl) < 0) {
		if ((errno != EACCES && errno != EAGAIN)
		    || waited >= MBOX_LOCK_WAIT_MS)
			return -1;
		usleep(MBOX_LOCK_STEP_MS * 1000);
		waited += MBOX_LOCK_STEP_MS;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || waited >= MBOX_LOCK_WAIT_MS) {
			int err = errno;

			fl.l_type = F_UNLCK;
			fcntl(fd, F_SETLK, &fl);
			errno = err;
			return -1;
		}
		usleep(MBOX_LOCK_STEP_MS * 1000);
		waited += MBOX_LOCK_STEP_MS;
	}
	return 0;
}

static void mbox_unlock(int fd)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};

	flock(fd, LOCK_UN);
	fcntl(fd, F_SETLK, &fl);
}

/*
 * Opens the mailbox for appending as the current effective user. When
 * that user may not create it (a mail spool writable only by root or
 * group mail), local creates it as root and gives it to uid:gid.
 */
static int mbox_open(const char *path, uid_t uid, gid_t gid)
{
	int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
	int fd = open(path, flags | O_CREAT, 0600);
	int err;

	if (fd >= 0 || errno != EACCES || !local_priv_is_root())
		return fd;
	if (access(path, F_OK) == 0 || errno != ENOENT) {
		errno = EACCES;
		return -1;
	}

	local_priv_restore();
	fd = open(path, flags | O_CREAT | O_EXCL, 0600);
	if (fd >= 0 && fchown(fd, uid, gid) < 0) {
		err = errno;
		close(fd);
		unlink(path);
		errno = err;
		fd = -1;
	}
	err = errno;
	if (local_priv_become(uid, gid) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	errno = err;
	return fd;
}

/* Refuses what a mailbox must not be: not a regular file, a file with
 * other hard links, or (as root) a file of another user. */
static int mbox_check_file(int fd, uid_t uid, struct local_result *res,
    const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		local_result_errno(res, errno, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1
	    || (local_priv_is_root() && st.st_uid != uid)) {
		local_result_set(res, DELIVER_DEFER, "4.2.0",
		    "cannot deliver: %s is not a regular file with one link "
		    "owned by the recipient", path);
		return -1;
	}
	return 0;
}

/* Writes out when it holds more than a chunk, or always when flush. */
static int mbox_flush(int fd, struct sbuf *out, int flush)
{
	if (!flush && out->len < LOCAL_COPY_CHUNK)
		return 0;
	if (out->len > 0 && iox_write_all(fd, out->data, out->len) < 0)
		return -1;
	sbuf_reset(out);
	return 0;
}

/* Appends the message to out/fd with ">From " quoting; ends it with a
 * newline (when missing) and the empty line that separates messages. */
static int mbox_copy_quoted(const struct local_msg *m, int fd,
    struct sbuf *out)
{
	char *buf = xmalloc(LOCAL_COPY_CHUNK + 8);
	off_t done = 0, size = m->env->msg_size;
	size_t carry = 0;
	int bol = 1, last_nl = 1, rc = -1;

	while (done < size || carry > 0) {
		size_t want = size - done < LOCAL_COPY_CHUNK
		    ? (size_t)(size - done) : LOCAL_COPY_CHUNK;
		ssize_t n = 0;
		size_t len, i = 0;

		if (want > 0) {
			n = pread(m->fd, buf + carry, want,
			    m->env->msg_offset + done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				errno = n < 0 ? errno : EIO;
				goto out;
			}
			done += n;
		}
		len = carry + (size_t)n;
		carry = 0;

		while (i < len) {
			const char *nl;
			size_t span;

			/* A line start too short to tell waits for more bytes. */
			if (bol && len - i < 5 && done < size) {
				carry = len - i;
				memmove(buf, buf + i, carry);
				break;
			}
			if (bol && len - i >= 5 && memcmp(buf + i, "From ", 5) == 0
			    && sbuf_putc(out, '>') < 0)
				goto out;
			nl = memchr(buf + i, '\n', len - i);
			span = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
			if (sbuf_append(out, buf + i, span) < 0
			    || mbox_flush(fd, out, 0) < 0)
				goto out;
			bol = nl != NULL;
			last_nl = bol;
			i += span;
		}
	}
	if (!last_nl && sbuf_putc(out, '\n') < 0)
		goto out;
	if (sbuf_putc(out, '\n') < 0 || mbox_flush(fd, out, 1) < 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Writes the whole entry at the end of the locked file and fsync()s. */
static int mbox_append(const struct local_msg *m, int fd, const char *rcpt)
{
	struct sbuf out;
	int rc = -1;

	/* Room for a chunk plus the longest line piece appended to it. */
	sbuf_init(&out, 2 * LOCAL_COPY_CHUNK + 8);
	if (mbox_from_line(&out, m->env->sender, time(NULL)) < 0
	    || local_delivery_prefix(&out, m->env->sender, rcpt) < 0) {
		errno = EMSGSIZE;
		goto out;
	}
	if (mbox_copy_quoted(m, fd, &out) < 0)
		goto out;
	if (fsync(fd) < 0)
		goto out;
	rc = 0;
out:
	sbuf_free(&out);
	return rc;
}

int mbox_deliver(const struct local_msg *m, const char *path, uid_t uid,
    gid_t gid, const char *rcpt, struct local_result *res)
{
	struct stat st;
	int fd, rc = -1;

	fd = mbox_open(path, uid, gid);
	if (fd < 0) {
		local_result_errno(res, errno, path);
		return -1;
	}
	if (mbox_check_file(fd, uid, res, path) < 0)
		goto out;
	if (mbox_lock(fd) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.2.0",
		    "cannot lock mailbox %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		local_result_errno(res, errno, path);
		goto unlock;
	}
	if (mbox_append(m, fd, rcpt) < 0) {
		int err = errno;

		if (ftruncate(fd, st.st_size) < 0)
			log_error("%s: cannot truncate mailbox %s back to %lld "
			    "bytes after a failed delivery: %s", m->qid, path,
			    (long long)st.st_size, strerror(errno));
		local_result_errno(res, err, path);
		goto unlock;
	}
	local_result_set(res, DELIVER_SENT, "2.0.0", "delivered to mailbox");
	rc = 0;
unlock:
	mbox_unlock(fd);
out:
	close(fd);
	return rc;
}
