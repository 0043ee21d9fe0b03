/*
 * qmgr - the queue manager: internal interfaces between its files.
 *
 * One process on one libevent loop. The working directory is
 * queue_directory (or the chroot that is it), so every queue path is
 * relative ("active/QID", "private/local").
 *
 * Ownership of a queue file follows its directory: a file is taken by
 * renaming it into active/, so a scan and a wake-up can never both take
 * it. Only one qmgr works on active/ at a time (it holds flock(LOCK_EX) on
 * the directory), and a file an agent still holds a shared flock() on is
 * retried later, so a recipient is never handed to two agents at once.
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stddef.h>
#include <sys/queue.h>
#include <time.h>

#include "qfile.h"

struct event_base;
struct qmgr_job;

/* Settings read from main.cf once at start. */
struct qmgr_settings {
	long queue_run_delay;      /* seconds between full scans */
	long min_backoff;          /* minimal_backoff_time, seconds */
	long max_backoff;          /* maximal_backoff_time, seconds */
	long max_lifetime;         /* maximal_queue_lifetime, seconds */
	long bounce_lifetime;      /* bounce_queue_lifetime, seconds */
	long dest_limit;           /* default_destination_concurrency_limit */
	long local_dest_limit;     /* local_destination_concurrency_limit */
	long rcpt_limit;           /* default_recipient_limit */
	long process_limit;        /* default_process_limit */
	long active_limit;         /* qmgr_message_active_limit */
	long ipc_timeout;          /* seconds to wait for an agent's reply */
	char *local_transport;     /* transport names that get one recipient */
	char *virtual_transport;   /* per request, without ":nexthop" */
	char *myhostname;
	long delay_warning;        /* delay_warning_time, seconds; 0: off */
	long bounce_size_limit;    /* bytes of original message in a bounce */
};

/* Per-recipient state of an in-memory message. */
struct qmgr_rstate {
	char *reason;      /* last deferral reason, or NULL */
	char dsn[16];      /* RFC 3463 code of that reason */
	char *remote_mta;  /* server whose reply gave the last result, or NULL */
	char *diagnostic;  /* that reply, "451 4.3.0 text", or NULL */
};

struct qmgr_msg {
	char qid[QID_SIZE];
	struct qenv *env;
	int fd;                     /* active/QID, read-write */
	struct qmgr_rstate *rstate; /* env->nrcpt entries */
	size_t jobs;                /* jobs queued or in flight */
	TAILQ_ENTRY(qmgr_msg) link;
};

TAILQ_HEAD(qmgr_msg_list, qmgr_msg);

/* Process-wide state. */
struct qmgr_state {
	struct event_base *base;
	struct qmgr_settings cfg;
	struct qmgr_msg_list msgs;
	size_t nmsgs;
	int draining;              /* SIGUSR1: no new work */
	int backlog;               /* a scan stopped at active_limit */
};

extern struct qmgr_state qmgr;

/*
 * plan.c - pure decisions, unit tested.
 */

/* Seconds until the next retry of a message of age seconds: the age,
 * clamped to [min_backoff, max_backoff], so the interval roughly doubles
 * with each attempt. */
long qmgr_backoff(long age, long min_backoff, long max_backoff);

/* A recipient's route, input to qmgr_plan_batches. */
struct qmgr_route {
	const char *transport;
	const char *nexthop;
};

/* A batch of recipients for one request: indexes into the route array. */
struct qmgr_batch {
	size_t first;   /* offset into the index array of qmgr_plan_batches */
	size_t count;
};

/*
 * Groups n routed recipients into batches of one (transport, nexthop)
 * each, at most limit_of(transport) recipients per batch (at least 1),
 * keeping file order inside a group and ordering groups by their first
 * recipient. Writes the recipient indexes to order_out (n entries) and
 * the batches to batches_out (at most n). Returns the number of batches.
 */
size_t qmgr_plan_batches(const struct qmgr_route *routes, size_t n,
    size_t (*limit_of)(const char *transport, void *ctx), void *ctx,
    size_t *order_out, struct qmgr_batch *batches_out);

/*
 * message.c - in-memory messages.
 */

/*
 * Takes active/QID as work: reads it, checks that no agent holds it,
 * re-reads the statuses, resolves and dispatches the pending recipients.
 * Returns 0 when taken (or finished at once), 1 when an agent still holds
 * the file (the caller retries later), -1 when it is gone or corrupt
 * (logged, and moved to corrupt/ when unparsable).
 */
int qmgr_msg_take(const char *qid);

/* Records that a job of msg has ended; finishes msg when it was the last. */
void qmgr_msg_job_done(struct qmgr_msg *msg);

/* Records a deferral reason for recipient i (reason is copied). */
void qmgr_msg_defer_rcpt(struct qmgr_msg *msg, size_t i, const char *dsn,
    const char *reason);

/* Records the server and reply behind the last result of recipient i,
 * for Remote-MTA and Diagnostic-Code; NULL clears them. */
void qmgr_msg_set_remote(struct qmgr_msg *msg, size_t i, const char *mta,
    const char *diagnostic);

/* Marks recipient i delivered in memory (the agent wrote it to disk). */
void qmgr_msg_sent_rcpt(struct qmgr_msg *msg, size_t i);

/* Frees msg after it left active/ (or was left there on drain). */
void qmgr_msg_free(struct qmgr_msg **msg);

/* Seconds since arrival, with fractions, for delay= in log lines. */
double qmgr_msg_age(const struct qmgr_msg *msg);

/*
 * dispatch.c - transports, destinations, agent connections.
 */

/* Queues a request for recipients idx[0..n-1] of msg (addresses as
 * resolved) to transport and nexthop; takes ownership of nothing. */
void qmgr_dispatch_add(struct qmgr_msg *msg, const char *transport,
    const char *nexthop, const size_t *idx, char *const *addrs, size_t n);

/* Maximum recipients per request for transport (settings based). */
size_t qmgr_dispatch_rcpt_limit(const char *transport, void *unused);

/* Starts queued requests as the concurrency limits allow. */
void qmgr_dispatch_pump(void);

/* Number of requests handed to agents and not yet answered. */
size_t qmgr_dispatch_inflight(void);

/* Drops every request not yet started (drain): their messages stay in
 * active/ for the next qmgr. */
void qmgr_dispatch_drop_queued(void);

/*
 * defer.c - messages that still have pending recipients.
 */

/*
 * Ends the current attempt of msg whose recipients are all answered:
 * removes the file when every recipient is final, bounces the pending
 * ones when the message is past its lifetime, else writes the defer log,
 * sets the next retry time as the mtime and moves it to deferred/.
 * Frees msg.
 */
void qmgr_defer_finish(struct qmgr_msg *msg);

/*
 * bounce.c - delivery status notifications to the sender (report.h):
 * bounces, delay warnings and success notices.
 */

/*
 * Writes one bounce (an RFC 3464 report with Action: failed) to the
 * sender of msg naming the recipients idx[0..n-1] with their DSN codes
 * and reasons, and the Remote-MTA and Diagnostic-Code from msg->rstate,
 * commits it to incoming/ and schedules it for delivery. Returns 0, or
 * -1 with a message in *err_out (caller frees). Callers skip
 * null-sender messages.
 */
int qmgr_bounce_write(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *dsns, char *const *reasons, char **err_out);

/*
 * Bounces recipients idx[0..n-1] of msg: writes the bounce (unless the
 * sender is null or every recipient's NOTIFY excludes FAILURE), then marks
 * them QSTATUS_BOUNCED. On a failed write the recipients are deferred
 * instead. Returns the number marked bounced.
 */
size_t qmgr_bounce_rcpts(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *dsns, char *const *reasons);

/*
 * Sends success notices for the delivered recipients idx[0..n-1] whose
 * NOTIFY includes SUCCESS: one report per action in actions (REPORT_*
 * of report.h, one per recipient), with dsns and texts as status and
 * reason. Nothing is sent for the null sender. Failures are logged.
 */
void qmgr_bounce_success(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *actions, char *const *dsns, char *const *texts);

/*
 * Sends the delay warning of msg (Action: delayed) once, when
 * delay_warning_time is set and the message is older, to the pending
 * recipients whose NOTIFY allows DELAY. The file bounce/QID records that
 * it was sent; qmgr removes it with the message.
 */
void qmgr_bounce_delay_warning(struct qmgr_msg *msg, long age);

/* Removes bounce/QID of a message that left the queue. */
void qmgr_bounce_forget(const char *qid);

/*
 * scan.c - queue directories.
 */

/* Moves incoming/QID to active/ and takes it. Returns as qmgr_msg_take,
 * or -1 when the file is not there (taken already). */
int qmgr_scan_take_incoming(const char *qid);

/* Takes every file in incoming/ while there is room. */
void qmgr_scan_incoming(void);

/* Takes every file in deferred/ whose retry time has come (all of them
 * when flush is 1) while there is room. */
void qmgr_scan_deferred(int flush);

/* Takes the files left in active/ by a previous qmgr. */
void qmgr_scan_recover(void);

/* Removes incoming/.tmp.* files older than a day. */
void qmgr_scan_clean_tmp(void);

/* Retries active/QID in a few seconds (an agent still holds it). */
void qmgr_scan_retry_later(const char *qid);

/* Schedules qmgr_scan_take_incoming(qid) on the next loop turn. */
void qmgr_scan_soon(const char *qid);

/* Called when a message leaves memory: refills from the backlog. */
void qmgr_scan_room(void);

#endif
