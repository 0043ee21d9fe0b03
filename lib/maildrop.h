/*
 * maildrop - the file that sendmail writes into $queue_directory/maildrop/
 * and the pickup service turns into a queue file.
 *
 * Any local user who may run sendmail can put any bytes into maildrop/,
 * so pickup treats every file as untrusted input and checks each record
 * and limit below. The submitter is the file's owner (st_uid), never a
 * value inside the file.
 *
 * sendmail writes maildrop/.tmp.ID (mode 0600), fsync()s it, sets the
 * mode to MAILDROP_MODE_READY and renames it to maildrop/ID, where ID has
 * the form of a queue ID. pickup ignores names that start with '.'. The
 * file is text with one record per line, then the message:
 *
 *   POSTERN-MAILDROP 1
 *   S <sender in external form; empty for the null sender>
 *   E <DSN ENVID, xtext>                                   (optional)
 *   J <DSN RET: FULL or HDRS>                              (optional)
 *   N <DSN NOTIFY of every recipient: NEVER, or SUCCESS,
 *      FAILURE and DELAY joined by commas>                 (optional)
 *   R <recipient in external form>     one per recipient, at least one
 *   M
 *   <message bytes with LF line ends, up to the end of the file>
 *
 * Records come in the order above; each occurs at most once except R.
 */
#ifndef POSTERN_MAILDROP_H
#define POSTERN_MAILDROP_H

#define MAILDROP_MAGIC "POSTERN-MAILDROP 1"
/* Maximum length of one envelope record, with its LF, in bytes. An
 * address is at most 256 bytes (RFC 5321 4.5.3.1.3). */
#define MAILDROP_MAX_RECORD 1024
/* Maximum recipients of one submission. */
#define MAILDROP_MAX_RCPT 10000
/* Mode of a complete file: the owner and pickup (which runs as
 * mail_owner, so "other") may read it; the postdrop group, which every
 * sendmail process has, may not. */
#define MAILDROP_MODE_READY 0604
/* Prefix of a file that sendmail is still writing. */
#define MAILDROP_TMP_PREFIX ".tmp."
/* Socket that wakes pickup: any line, for example "W\n". */
#define PICKUP_SOCKET_NAME "public/pickup"

#endif
