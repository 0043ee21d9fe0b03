/*
 * bounce - delivery status notifications (RFC 3464, built by report.c),
 * queued as new files from the null sender to the original sender.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "report.h"
#include "sbuf.h"

/* Bytes of the original message searched for the end of its header;
 * Postfix's default header_size_limit. */
#define BOUNCE_MAX_HEADER 102400

/*
 * Reads the original message of msg into *buf_out (caller frees): the
 * header block when *headers_only is set, else the whole message. A
 * message over limit bytes falls back to its header, and *headers_only
 * is set then. Returns 0 or -1 with a message in *err_out.
 */
static int bounce_read_original(struct qmgr_msg *msg, int *headers_only,
    long limit, char **buf_out, size_t *len_out, char **err_out)
{
	size_t want = (size_t)msg->env->msg_size;
	char *buf;
	ssize_t got;

	if (limit >= 0 && msg->env->msg_size > (off_t)limit)
		*headers_only = 1;
	if (*headers_only && want > BOUNCE_MAX_HEADER)
		want = BOUNCE_MAX_HEADER;
	buf = xmalloc(want + 1);
	got = pread(msg->fd, buf, want, msg->env->msg_offset);
	if (got < 0) {
		*err_out = xasprintf("cannot read the original message: %s",
		    strerror(errno));
		free(buf);
		return -1;
	}
	*len_out = (size_t)got;
	if (*headers_only)
		*len_out = report_header_len(buf, (size_t)got);
	*buf_out = buf;
	return 0;
}

/* Fills the recipient lines of a report from msg; strings stay owned by
 * msg and the callers' arrays. */
static struct report_rcpt *bounce_rcpts(struct qmgr_msg *msg,
    const size_t *idx, size_t n, char *const *dsns, char *const *reasons,
    time_t now)
{
	struct report_rcpt *rr = xcalloc(n ? n : 1, sizeof(*rr));

	for (size_t k = 0; k < n; k++) {
		const struct qrcpt *r = &msg->env->rcpt[idx[k]];
		const struct qmgr_rstate *rs = &msg->rstate[idx[k]];

		rr[k].addr = r->addr;
		rr[k].orcpt = r->orcpt;
		rr[k].status = dsns[k];
		rr[k].reason = reasons[k];
		rr[k].remote_mta = rs->remote_mta;
		rr[k].diagnostic = rs->diagnostic;
		rr[k].last_attempt = now;
	}
	return rr;
}

/*
 * Builds a report with action about recipients idx[0..n-1] of msg and
 * commits it to incoming/. Returns 0, or -1 with a message in *err_out.
 */
static int bounce_queue(struct qmgr_msg *msg, const char *action,
    const size_t *idx, size_t n, char *const *dsns, char *const *reasons,
    char **err_out)
{
	struct report rep = {0};
	struct qenv *env = qenv_new();
	struct qwriter *w = NULL;
	struct sbuf body;
	char *original = NULL;
	int rc = -1;

	rep.action = action;
	rep.headers_only = strcmp(action, REPORT_FAILED) != 0
	    || (msg->env->ret != NULL && strcmp(msg->env->ret, "HDRS") == 0);
	if (bounce_read_original(msg, &rep.headers_only,
	    qmgr.cfg.bounce_size_limit, &original, &rep.original_len,
	    err_out) < 0)
		goto out;

	env->sender = xstrdup("");
	env->protocol = xstrdup("LOCAL");
	qenv_add_rcpt(env, msg->env->sender, NULL, 0);
	w = qwriter_open(".", env, err_out);
	if (w == NULL)
		goto out;

	rep.myhostname = qmgr.cfg.myhostname;
	rep.qid = msg->qid;
	rep.report_qid = qwriter_qid(w);
	rep.sender = msg->env->sender;
	rep.envid = msg->env->envid;
	rep.arrival = msg->env->arrival_sec;
	rep.now = time(NULL);
	if (strcmp(action, REPORT_DELAYED) == 0)
		rep.retry_until = rep.arrival + qmgr.cfg.max_lifetime;
	rep.rcpts = bounce_rcpts(msg, idx, n, dsns, reasons, rep.now);
	rep.nrcpt = n;
	rep.original = original;

	sbuf_init(&body, 0);
	report_build(&rep, &body);
	free((void *)rep.rcpts);
	if (qwriter_write(w, body.data, body.len) < 0) {
		*err_out = xasprintf("cannot write the report file: %s",
		    strerror(errno));
		qwriter_abort(&w);
		sbuf_free(&body);
		goto out;
	}
	sbuf_free(&body);
	if (qwriter_commit(&w, err_out) < 0)
		goto out;
	qmgr_scan_soon(env->qid);
	log_info("%s: sender %s notification: %s", msg->qid,
	    strcmp(action, REPORT_FAILED) == 0 ? "non-delivery"
	    : strcmp(action, REPORT_DELAYED) == 0 ? "delay" : "delivery status",
	    env->qid);
	rc = 0;
out:
	free(original);
	qenv_free(&env);
	return rc;
}

int qmgr_bounce_write(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *dsns, char *const *reasons, char **err_out)
{
	return bounce_queue(msg, REPORT_FAILED, idx, n, dsns, reasons,
	    err_out);
}

/* 1 when recipient r requested notices of kind flag (RFC 3461 NOTIFY).
 * Without NOTIFY, failures and delays are reported, as RFC 3461
 * section 4.1 allows. */
static int bounce_wanted(const struct qrcpt *r, int flag)
{
	if (r->notify & QNOTIFY_NEVER)
		return 0;
	if (r->notify == 0)
		return flag != QNOTIFY_SUCCESS;
	return (r->notify & flag) != 0;
}

static void bounce_mark(struct qmgr_msg *msg, size_t i, const char *dsn)
{
	struct qrcpt *r = &msg->env->rcpt[i];

	if (qfile_set_status(msg->fd, r, QSTATUS_BOUNCED) < 0) {
		char *why = xasprintf("cannot record the bounce: %s",
		    strerror(errno));

		log_error("%s: to=<%s>: %s", msg->qid, r->addr, why);
		qmgr_msg_defer_rcpt(msg, i, dsn, why);
		free(why);
		return;
	}
	r->status = QSTATUS_BOUNCED;
	free(msg->rstate[i].reason);
	msg->rstate[i].reason = NULL;
}

size_t qmgr_bounce_rcpts(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *dsns, char *const *reasons)
{
	size_t *widx = xcalloc(n ? n : 1, sizeof(*widx)), nw = 0, marked = 0;
	char **wdsn = xcalloc(n ? n : 1, sizeof(*wdsn));
	char **wreason = xcalloc(n ? n : 1, sizeof(*wreason));
	char *err = NULL;

	for (size_t k = 0; k < n; k++) {
		if (!bounce_wanted(&msg->env->rcpt[idx[k]], QNOTIFY_FAILURE))
			continue;
		widx[nw] = idx[k];
		wdsn[nw] = dsns[k];
		wreason[nw] = reasons[k];
		nw++;
	}

	/* A notification about a notification could loop between two
	 * systems, so null-sender mail never gets one. */
	if (msg->env->sender[0] == '\0') {
		log_info("%s: no bounce for a message from the null sender",
		    msg->qid);
	} else if (nw > 0 && qmgr_bounce_write(msg, widx, nw, wdsn, wreason,
	    &err) < 0) {
		char *why = xasprintf("bounce message not queued: %s",
		    err ? err : "unknown error");

		log_error("%s: %s", msg->qid, why);
		for (size_t k = 0; k < n; k++)
			qmgr_msg_defer_rcpt(msg, idx[k], "4.3.0", why);
		free(why);
		goto out;
	}

	for (size_t k = 0; k < n; k++) {
		bounce_mark(msg, idx[k], dsns[k]);
		if (msg->env->rcpt[idx[k]].status == QSTATUS_BOUNCED)
			marked++;
	}
out:
	free(err);
	free(widx);
	free(wdsn);
	free(wreason);
	return marked;
}

void qmgr_bounce_success(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *actions, char *const *dsns, char *const *texts)
{
	static const char *const kinds[] = {REPORT_DELIVERED, REPORT_RELAYED,
	    REPORT_EXPANDED};
	size_t *widx = xcalloc(n ? n : 1, sizeof(*widx));
	char **wdsn = xcalloc(n ? n : 1, sizeof(*wdsn));
	char **wtext = xcalloc(n ? n : 1, sizeof(*wtext));

	for (size_t a = 0; a < sizeof(kinds) / sizeof(kinds[0]); a++) {
		size_t nw = 0;
		char *err = NULL;

		for (size_t k = 0; k < n; k++) {
			if (strcmp(actions[k], kinds[a]) != 0
			    || !bounce_wanted(&msg->env->rcpt[idx[k]],
			    QNOTIFY_SUCCESS))
				continue;
			widx[nw] = idx[k];
			wdsn[nw] = dsns[k];
			wtext[nw] = texts[k];
			nw++;
		}
		if (nw == 0 || msg->env->sender[0] == '\0')
			continue;
		if (bounce_queue(msg, kinds[a], widx, nw, wdsn, wtext,
		    &err) < 0) {
			/* The recipients are delivered already; a lost
			 * success notice is logged and not retried. */
			log_error("%s: success notification not queued: %s",
			    msg->qid, err ? err : "unknown error");
		}
		free(err);
	}
	free(widx);
	free(wdsn);
	free(wtext);
}

/* Path of the file that records a sent delay warning. */
static void bounce_warned_path(const char *qid, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", QDIR_BOUNCE, qid);
}

void qmgr_bounce_delay_warning(struct qmgr_msg *msg, long age)
{
	size_t n = msg->env->nrcpt, nw = 0;
	size_t *widx;
	char **wdsn, **wreason, path[64], *err = NULL;
	int fd;

	if (qmgr.cfg.delay_warning <= 0 || age < qmgr.cfg.delay_warning
	    || msg->env->sender[0] == '\0')
		return;
	bounce_warned_path(msg->qid, path, sizeof(path));
	if (access(path, F_OK) == 0)
		return;

	widx = xcalloc(n ? n : 1, sizeof(*widx));
	wdsn = xcalloc(n ? n : 1, sizeof(*wdsn));
	wreason = xcalloc(n ? n : 1, sizeof(*wreason));
	for (size_t i = 0; i < n; i++) {
		struct qmgr_rstate *rs = &msg->rstate[i];

		if (msg->env->rcpt[i].status != QSTATUS_PENDING
		    || !bounce_wanted(&msg->env->rcpt[i], QNOTIFY_DELAY))
			continue;
		widx[nw] = i;
		wdsn[nw] = rs->reason ? rs->dsn : (char *)"4.0.0";
		wreason[nw] = rs->reason ? rs->reason
		    : (char *)"delivery was not attempted yet";
		nw++;
	}
	if (nw > 0 && bounce_queue(msg, REPORT_DELAYED, widx, nw, wdsn,
	    wreason, &err) < 0) {
		/* Tried again at the next deferral. */
		log_error("%s: delay warning not queued: %s", msg->qid,
		    err ? err : "unknown error");
	} else if (nw > 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			log_warn("%s: cannot create %s, so the delay warning "
			    "may be sent again: %s", msg->qid, path,
			    strerror(errno));
		else
			close(fd);
	}
	free(err);
	free(widx);
	free(wdsn);
	free(wreason);
}

void qmgr_bounce_forget(const char *qid)
{
	char path[64];

	bounce_warned_path(qid, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: cannot remove %s: %s", qid, path,
		    strerror(errno));
}
