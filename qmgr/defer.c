/*
 * defer - the end of a delivery attempt: removing a finished message,
 * bouncing an expired one, or moving it to deferred/ with its next retry
 * time as the file's mtime and its reasons in defer/QID.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "sbuf.h"

static size_t defer_count_pending(const struct qmgr_msg *msg)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->env->nrcpt; i++)
		if (msg->env->rcpt[i].status == QSTATUS_PENDING)
			n++;
	return n;
}

static void defer_remove(struct qmgr_msg *msg)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/%s", QDIR_ACTIVE, msg->qid);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("%s: cannot remove %s: %s", msg->qid, path,
		    strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", QDIR_DEFER_LOG, msg->qid);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: cannot remove %s: %s", msg->qid, path,
		    strerror(errno));
	qmgr_bounce_forget(msg->qid);
	log_info("%s: removed", msg->qid);
}

/* Bounces every pending recipient of a message past its lifetime. */
static void defer_expire(struct qmgr_msg *msg, long age)
{
	size_t n = msg->env->nrcpt, np = 0;
	size_t *idx = xcalloc(n, sizeof(*idx));
	char **dsns = xcalloc(n, sizeof(*dsns));
	char **reasons = xcalloc(n, sizeof(*reasons));

	for (size_t i = 0; i < n; i++) {
		struct qmgr_rstate *rs = &msg->rstate[i];

		if (msg->env->rcpt[i].status != QSTATUS_PENDING)
			continue;
		idx[np] = i;
		dsns[np] = xstrdup(rs->reason ? rs->dsn : "4.4.7");
		reasons[np] = xasprintf("message expired after %ld s in the "
		    "queue; last reason: %s", age,
		    rs->reason ? rs->reason : "none recorded");
		log_info("%s: to=<%s>, delay=%ld, dsn=%s, status=expired (%s)",
		    msg->qid, msg->env->rcpt[i].addr, age, dsns[np],
		    reasons[np]);
		np++;
	}
	qmgr_bounce_rcpts(msg, idx, np, dsns, reasons);
	for (size_t k = 0; k < np; k++) {
		free(dsns[k]);
		free(reasons[k]);
	}
	free(idx);
	free(dsns);
	free(reasons);
}

/* Writes defer/QID, sets the retry time and renames to deferred/. */
static void defer_to_deferred(struct qmgr_msg *msg, long age)
{
	size_t n = msg->env->nrcpt;
	char **reasons = xcalloc(n ? n : 1, sizeof(*reasons));
	char from[64], to[64];
	struct timespec times[2];
	time_t now = time(NULL);
	long wait = qmgr_backoff(age, qmgr.cfg.min_backoff,
	    qmgr.cfg.max_backoff);

	for (size_t i = 0; i < n; i++) {
		if (msg->env->rcpt[i].status != QSTATUS_PENDING)
			continue;
		reasons[i] = msg->rstate[i].reason ? msg->rstate[i].reason
		    : (char *)"delivery was not attempted";
	}
	qmgr_bounce_delay_warning(msg, age);
	if (qfile_defer_log_write(".", msg->qid, msg->env, reasons) < 0)
		log_warn("%s: cannot write %s/%s: %s", msg->qid,
		    QDIR_DEFER_LOG, msg->qid, strerror(errno));
	free(reasons);

	times[0].tv_sec = now;
	times[0].tv_nsec = 0;
	times[1].tv_sec = now + wait;
	times[1].tv_nsec = 0;
	if (futimens(msg->fd, times) < 0)
		log_warn("%s: cannot set the retry time: %s", msg->qid,
		    strerror(errno));

	snprintf(from, sizeof(from), "%s/%s", QDIR_ACTIVE, msg->qid);
	snprintf(to, sizeof(to), "%s/%s", QDIR_DEFERRED, msg->qid);
	if (rename(from, to) < 0) {
		/* Left in active/, the file is taken again by the next
		 * qmgr start; nothing is lost. */
		log_error("%s: cannot move %s to %s/: %s", msg->qid, from,
		    QDIR_DEFERRED, strerror(errno));
		return;
	}
	log_info("%s: deferred, next attempt in %ld s", msg->qid, wait);
}

void qmgr_defer_finish(struct qmgr_msg *msg)
{
	long age = (long)time(NULL) - msg->env->arrival_sec;
	long lifetime = msg->env->sender[0] ? qmgr.cfg.max_lifetime
	    : qmgr.cfg.bounce_lifetime;

	if (defer_count_pending(msg) == 0) {
		defer_remove(msg);
		qmgr_msg_free(&msg);
		return;
	}
	if (qmgr.draining) {
		/* The next qmgr takes the file from active/. */
		qmgr_msg_free(&msg);
		return;
	}
	if (age >= lifetime) {
		defer_expire(msg, age);
		if (defer_count_pending(msg) == 0) {
			defer_remove(msg);
			qmgr_msg_free(&msg);
			return;
		}
	}
	defer_to_deferred(msg, age);
	qmgr_msg_free(&msg);
}
