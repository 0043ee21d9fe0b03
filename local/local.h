/*
 * local - the local delivery agent: the parts shared by its files.
 *
 * One request at a time (lib/deliver.h): for each recipient, local finds
 * its address class, expands aliases into a new queue file, or appends
 * the message to a Maildir or an mbox file with the effective user and
 * group of the mailbox owner. Every delivery step fills a local_result
 * that becomes the "result" line of the reply.
 */
#ifndef POSTERN_LOCAL_LOCAL_H
#define POSTERN_LOCAL_LOCAL_H

#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

#include "qfile.h"
#include "sbuf.h"

/* The outcome of one recipient, as sent back to qmgr. */
struct local_result {
	char status[8];  /* DELIVER_SENT, DELIVER_DEFER or DELIVER_BOUNCE */
	char dsn[16];    /* RFC 3463 status code, e.g. "5.1.1" */
	char text[512];  /* one-line reason */
};

void local_result_set(struct local_result *res, const char *status,
    const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets a deferral for a failed system call on what: 4.3.1 for a full
 * file system, 4.2.2 for an exceeded quota, else 4.2.0; each with the
 * errno text. */
void local_result_errno(struct local_result *res, int err, const char *what);

/* The message being delivered: the locked queue file and its envelope. */
struct local_msg {
	const char *queue_dir;
	const char *qid;
	int fd;              /* open queue file, O_RDWR, flock(LOCK_SH) held */
	struct qenv *env;
	char *header;        /* message header block, NUL-terminated */
	size_t header_len;
};

/* Size of the buffer for copying the message out of the queue file. */
#define LOCAL_COPY_CHUNK (64 * 1024)

/* message.c */

/* Reads the header block of the message (up to the first empty line, at
 * most header_size_limit bytes) into m->header. Returns 0 or -1 with
 * errno. */
int local_msg_read_header(struct local_msg *m);

/*
 * Scans a header block for loop signs: counts the Received: fields into
 * *received_out and sets *delivered_out to 1 when a Delivered-To: field
 * holds rcpt (case-insensitive, optional angle brackets, folded lines
 * joined). Field names are matched case-insensitively.
 */
void local_header_scan(const char *header, size_t len, const char *rcpt,
    int *received_out, int *delivered_out);

/* Appends "Return-Path: <SENDER>\nDelivered-To: RCPT\n" to out, with both
 * addresses in external (quoted where needed) form. Returns 0 or -1. */
int local_delivery_prefix(struct sbuf *out, const char *sender,
    const char *rcpt);

/*
 * Reads the message bytes from the queue file in chunks of at most
 * LOCAL_COPY_CHUNK and passes each to fn, which returns 0 or -1 with
 * errno. Returns 0, or -1 with errno when fn fails or the read fails
 * (EIO when the file is shorter than its Z record says).
 */
int local_msg_each_chunk(const struct local_msg *m,
    int (*fn)(const char *buf, size_t len, void *arg), void *arg);

/* Copies the message bytes from the queue file to out_fd. Returns 0 or
 * -1 with errno, as local_msg_each_chunk. */
int local_msg_copy(const struct local_msg *m, int out_fd);

/* maildir.c */

/*
 * Writes the unique file name "SECONDS.M<usec>P<pid>Q<counter>.<host>"
 * into out, with '/' and ':' in host written as "\057" and "\072".
 * Returns 0, or -1 when out is too small.
 */
int maildir_unique_name(char *out, size_t out_size, const struct timeval *tv,
    pid_t pid, unsigned long counter, const char *host);

/* Delivers to the Maildir at path (created with tmp/, new/ and cur/ when
 * missing) with the current effective ids. Returns 0 (res is "sent") or
 * -1 with res set. */
int maildir_deliver(const struct local_msg *m, const char *path,
    const char *rcpt, struct local_result *res);

/* mbox.c */

/* Formats the "From SENDER DATE\n" line that starts an mbox message.
 * Returns 0 or -1. */
int mbox_from_line(struct sbuf *out, const char *sender, time_t when);

/* Appends to the mbox file at path under fcntl and flock locks. A new
 * file is created with owner uid:gid, as root when the owner may not
 * create it (a mail spool). Returns 0 (res "sent") or -1 with res set. */
int mbox_deliver(const struct local_msg *m, const char *path, uid_t uid,
    gid_t gid, const char *rcpt, struct local_result *res);

/* users.c */

/* A mailbox and the identity that delivers into it. */
struct local_mailbox {
	char *path;          /* absolute path; caller frees */
	int maildir;         /* 1: Maildir, 0: mbox file */
	uid_t uid;
	gid_t gid;
};

void local_mailbox_free(struct local_mailbox *mb);

/* Records whether local runs as root and the group list to restore;
 * logs once when it does not. */
void local_priv_init(void);
int local_priv_is_root(void);
/* Switches the effective gid, supplementary groups and uid. A no-op when
 * not root. Returns 0 or -1 with errno (privileges restored). */
int local_priv_become(uid_t uid, gid_t gid);
/* Switches back to root; exits when that fails (a broken invariant). */
void local_priv_restore(void);

/*
 * Finds the mailbox of system user name (getpwnam): home_mailbox under
 * the home directory (a trailing '/' means Maildir), else
 * mail_spool_directory/NAME as mbox. Returns 1 found, 0 unknown user,
 * -1 with res set.
 */
int local_system_mailbox(const char *name, struct local_mailbox *mb,
    struct local_result *res);

/*
 * Finds the mailbox of virtual address addr from virtual_mailbox_maps
 * (under virtual_mailbox_base) with the owner from virtual_uid_maps and
 * virtual_gid_maps. Returns 1 found, 0 unknown, -1 with res set.
 */
int local_virtual_mailbox(const char *addr, struct local_mailbox *mb,
    struct local_result *res);

/* Looks up a virtual table with the full address, the address without
 * its extension, then "@domain". Returns as local_maps_lookup. */
int local_virtual_lookup(const char *param, const char *addr,
    char **value_out, struct local_result *res);

/* Delivers the message into mb as its owner. Returns 0 or -1; res set. */
int local_mailbox_deliver(const struct local_msg *m,
    const struct local_mailbox *mb, const char *rcpt,
    struct local_result *res);

/* alias.c */

enum alias_kind {
	ALIAS_ADDRESS,       /* a mail address, completed with myorigin */
	ALIAS_COMMAND,       /* "|command" */
	ALIAS_FILE,          /* "/path" */
	ALIAS_INCLUDE        /* ":include:/path" */
};

struct alias_target {
	enum alias_kind kind;
	char *value;         /* address in internal form, command or path */
};

/*
 * Parses an alias value: targets separated by commas outside double
 * quotes, blanks trimmed, a fully quoted target unquoted, <> around an
 * address dropped, a bare name completed as name@origin. Returns 0 with a
 * malloc'd array in *out (free with alias_targets_free), or -1 with a
 * message in *err_out (caller frees) for an unclosed quote, an empty
 * value or an invalid address.
 */
int alias_parse(const char *value, const char *origin,
    struct alias_target **out, size_t *count_out, char **err_out);
void alias_targets_free(struct alias_target **targets, size_t count);

/*
 * Expands rcpt through the tables named by param ("alias_maps" with the
 * local part as key, "virtual_alias_maps" with the address and
 * "@domain"). Returns 1 when an alias was found and the recipient is
 * final (forwarded or bounced), 0 when there is no alias, -1 with res
 * set to a deferral.
 */
int alias_expand(const struct local_msg *m, const struct qrcpt *r,
    const char *param, struct local_result *res);

/* recipient.c */

/* Delivers message m to recipient r (one of m->env's). Fills res. */
void local_deliver_rcpt(const struct local_msg *m, const struct qrcpt *r,
    struct local_result *res);

/* Delivers r into its own mailbox without alias expansion: the virtual
 * mailbox when is_virtual, else the system user's. Returns 0 when sent,
 * -1 with res set to a deferral or a bounce. */
int local_deliver_mailbox(const struct local_msg *m, const struct qrcpt *r,
    int is_virtual, struct local_result *res);

/* Returns the table list named by the parameter, opened on first use,
 * or NULL with res set to a 4.3.0 deferral when it cannot be opened. */
struct maplist *local_maps(const char *param, struct local_result *res);

/* Looks key up in the tables of param. Returns 1 with *value_out, 0 not
 * found, -1 with res set to a 4.3.0 deferral. */
int local_maps_lookup(const char *param, const char *key, char **value_out,
    struct local_result *res);

/* Copy of the local part of addr, lowercased, with the extension after
 * the first recipient_delimiter character removed when strip is 1. */
char *local_part_key(const char *addr, int strip);

/* request.c */

/* Serves the requests that arrive on the connection conn from qmgr until
 * it closes, max_requests were served, timeout_ms pass without one, or a
 * stop or drain is requested. Returns the number of requests served. */
int local_serve_connection(int conn, int max_requests, int timeout_ms);

#endif
