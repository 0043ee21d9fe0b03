/*
 * qfile - queue IDs and queue files.
 *
 * A queue file is written by one writer (smtpd, or qmgr for a bounce, or
 * local for an alias expansion) under the temporary name
 * incoming/.tmp.QUEUEID, fsync()ed, renamed to incoming/QUEUEID, and the
 * directory fsync()ed; only then is the message accepted. The file is
 * text with one record per line, then the message:
 *
 *   POSTERN-QUEUE 1
 *   Z <message offset, 12 digits> <message size, 12 digits>
 *   I <queue id>
 *   T <arrival: seconds>.<microseconds>
 *   S <sender, empty for the null sender>
 *   C <client host name>      A <client address>    H <HELO name>
 *   P <protocol: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, LOCAL>
 *   U <authenticated user>    L <TLS summary>       (optional)
 *   E <DSN ENVID>             J <DSN RET: FULL or HDRS>  (optional)
 *   R <status> <recipient>    one per recipient, in order, then optionally
 *   O <ORCPT of the recipient above>  N <NOTIFY of the recipient above>
 *   M
 *   <message bytes up to the end of the file>
 *
 * The message is stored with LF line ends (the Received header already
 * prepended). The Z record has fixed width so the writer can fill it in
 * place once the size is known. Each recipient's status is one byte at a
 * fixed offset: '-' pending, 'D' delivered (or forwarded), 'B' failed with
 * a bounce already queued. Status updates are one pwrite() plus
 * fdatasync(), so a recipient marked 'D' is never delivered again.
 *
 * Envelope values are single lines; the writer rejects a value holding
 * CR, LF or NUL.
 */
#ifndef POSTERN_QFILE_H
#define POSTERN_QFILE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Queue ID: 9 hex digits of seconds, 5 of microseconds, 4 of PID and 4
 * of a per-process counter, uppercase: sortable by arrival and unique. */
#define QID_LEN 22
#define QID_SIZE (QID_LEN + 1)

/* Writes a new queue ID into out. Thread-safe. */
void qid_new(char out[QID_SIZE]);
/* 1 when s has the form of a queue ID (and so is safe as a file name). */
int qid_valid(const char *s);

#define QSTATUS_PENDING '-'
#define QSTATUS_DELIVERED 'D'
#define QSTATUS_BOUNCED 'B'

/* DSN NOTIFY flags (RFC 3461); 0 means not given. */
#define QNOTIFY_NEVER 1
#define QNOTIFY_SUCCESS 2
#define QNOTIFY_FAILURE 4
#define QNOTIFY_DELAY 8

struct qrcpt {
	char *addr;        /* internal (unquoted) form */
	char *orcpt;       /* DSN ORCPT, or NULL */
	int notify;        /* QNOTIFY_* bits */
	char status;       /* QSTATUS_* */
	off_t status_off;  /* file offset of the status byte (reader only) */
};

struct qenv {
	char qid[QID_SIZE];
	long arrival_sec;
	long arrival_usec;
	char *sender;      /* "" for the null sender */
	char *client_name; /* may be NULL */
	char *client_addr;
	char *helo;
	char *protocol;
	char *auth_user;
	char *tls;
	char *envid;
	char *ret;
	struct qrcpt *rcpt;
	size_t nrcpt;
	off_t msg_offset;  /* reader: where the message starts */
	off_t msg_size;    /* reader: message bytes */
};

/* Allocates an empty envelope; strings are set with xstrdup by callers. */
struct qenv *qenv_new(void);
void qenv_add_rcpt(struct qenv *env, const char *addr, const char *orcpt,
    int notify);
void qenv_free(struct qenv **env);

/* Writer. */
struct qwriter;

/*
 * Creates incoming/.tmp.QID in queue_dir (mode 0600) and writes the
 * envelope of env. env->qid is used when set, else a new one is made and
 * stored into env->qid; an arrival_sec of 0 is set to the current time.
 * Returns the writer, or NULL with errno and a
 * message in *err_out (caller frees).
 */
struct qwriter *qwriter_open(const char *queue_dir, struct qenv *env,
    char **err_out);
/* Appends message bytes (LF line ends). Returns 0 or -1 with errno. */
int qwriter_write(struct qwriter *w, const void *data, size_t len);
/* Bytes of message written so far. */
off_t qwriter_size(const struct qwriter *w);
/* Fills in the Z record and fsync()s the file. Returns 0 or -1 with errno.
 * May be called from a worker thread. */
int qwriter_sync(struct qwriter *w);
/* Renames the file to incoming/QID. Does not sync the directory, so that
 * one qfile_sync_dir() can cover several renames. Returns 0 or -1. */
int qwriter_rename(struct qwriter *w);
/* qwriter_sync + qwriter_rename + qfile_sync_dir(incoming); frees w on
 * success and on failure (a failed commit removes the temporary file). */
int qwriter_commit(struct qwriter **w, char **err_out);
/* Removes the temporary file (unless renamed) and frees w. */
void qwriter_abort(struct qwriter **w);
/* Frees a writer after a successful qwriter_rename. */
void qwriter_free(struct qwriter **w);
const char *qwriter_qid(const struct qwriter *w);

/* fsync()s the directory queue_dir/subdir. Returns 0 or -1 with errno. */
int qfile_sync_dir(const char *queue_dir, const char *subdir);

/*
 * Opens and parses the queue file at path (O_RDWR when writable is 1,
 * else O_RDONLY). Returns 0 with the envelope in *env_out and the open
 * descriptor in *fd_out (positioned anywhere; use pread or lseek to
 * env->msg_offset), -1 with errno when the file cannot be opened (ENOENT
 * and friends), or -2 when it is not a well-formed queue file (message in
 * *err_out, caller frees), so the caller can move it to corrupt/.
 */
int qfile_read(const char *path, int writable, struct qenv **env_out,
    int *fd_out, char **err_out);

/* Sets the status byte of recipient r (from qfile_read on fd) and
 * fdatasync()s. Returns 0 or -1 with errno. */
int qfile_set_status(int fd, struct qrcpt *r, char status);

/* Queue subdirectories, created by qfile_make_dirs. */
#define QDIR_INCOMING "incoming"
#define QDIR_ACTIVE "active"
#define QDIR_DEFERRED "deferred"
#define QDIR_HOLD "hold"
#define QDIR_CORRUPT "corrupt"
#define QDIR_BOUNCE "bounce"
#define QDIR_DEFER_LOG "defer"     /* per-message deferral reasons */
#define QDIR_MAILDROP "maildrop"
#define QDIR_PRIVATE "private"
#define QDIR_PUBLIC "public"
#define QDIR_PID "pid"

/* Creates the queue tree with the modes and owner Postern needs (owner
 * applied only when running as root). Returns 0 or -1 with a message. */
int qfile_make_dirs(const char *queue_dir, uid_t owner, gid_t group,
    char **err_out);

/*
 * Per-message deferral reasons live in defer/QID, one line per
 * recipient: "<index> <reason>". qmgr writes them, `postern queue` reads
 * them. Both return 0 or -1 with errno.
 */
int qfile_defer_log_write(const char *queue_dir, const char *qid,
    const struct qenv *env, char *const *reasons);
/* Reads reasons into a malloc'd array of env->nrcpt strings (NULL where
 * none, all NULL when the file does not exist); caller frees each and
 * the array. */
int qfile_defer_log_read(const char *queue_dir, const char *qid,
    size_t nrcpt, char ***reasons_out);

#endif
