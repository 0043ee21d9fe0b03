/*
 * wakeup - telling qmgr that there is work, over public/qmgr.
 *
 * A wake-up is one short line on a new connection: "W QUEUEID\n" for a
 * newly committed message, "W\n" to scan incoming/, "F\n" to retry every
 * deferred message now (postern flush). qmgr also scans on a timer, so a
 * lost wake-up only delays mail.
 */
#ifndef POSTERN_WAKEUP_H
#define POSTERN_WAKEUP_H

#define QMGR_SOCKET_NAME "public/qmgr"

/* Sends "W QID\n" (or "W\n" when qid is NULL) without blocking. Returns 0,
 * or -1 with errno when qmgr is not reachable; callers log and go on. */
int wakeup_qmgr(const char *queue_dir, const char *qid);

/* Sends "F\n". Returns 0 or -1 with errno. */
int wakeup_qmgr_flush(const char *queue_dir);

#endif
