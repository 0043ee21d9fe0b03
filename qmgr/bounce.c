/*
 * bounce - plain-text non-delivery messages, queued as new files from the
 * null sender to the original sender.
 *
 * TODO: send RFC 3464 delivery status reports (multipart/report) instead
 * of plain text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "qmgr.h"
#include "sbuf.h"

/* Bytes of the original message searched for the end of its header. */
#define BOUNCE_MAX_HEADER (64 * 1024)

/* Appends the header of the original message (LF line ends). */
static void bounce_add_orig_header(struct qmgr_msg *msg, struct sbuf *out)
{
	size_t want = (size_t)msg->env->msg_size, len;
	char *buf, *end;
	ssize_t got;

	if (want > BOUNCE_MAX_HEADER)
		want = BOUNCE_MAX_HEADER;
	buf = xmalloc(want + 1);
	got = pread(msg->fd, buf, want, msg->env->msg_offset);
	if (got < 0) {
		sbuf_printf(out, "(the original header could not be read: %s)\n",
		    strerror(errno));
		free(buf);
		return;
	}
	buf[got] = '\0';
	len = (size_t)got;
	end = strstr(buf, "\n\n");
	if (end != NULL)
		len = (size_t)(end - buf) + 1;
	sbuf_append(out, buf, len);
	if (end == NULL && (size_t)got == BOUNCE_MAX_HEADER)
		sbuf_puts(out, "(header truncated)\n");
	else if (len > 0 && buf[len - 1] != '\n')
		sbuf_putc(out, '\n');
	free(buf);
}

static void bounce_compose(struct qmgr_msg *msg, const char *bqid,
    const size_t *idx, size_t n, char *const *dsns, char *const *reasons,
    struct sbuf *out)
{
	const char *host = qmgr.cfg.myhostname;
	char date[64], *to = addr_externalize(msg->env->sender);
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	sbuf_printf(out, "Date: %s\n", date);
	sbuf_printf(out, "From: MAILER-DAEMON@%s (Mail Delivery System)\n",
	    host);
	sbuf_printf(out, "To: <%s>\n", to);
	sbuf_puts(out, "Subject: Undelivered Mail Returned to Sender\n");
	sbuf_printf(out, "Message-ID: <%s@%s>\n", bqid, host);
	sbuf_puts(out, "Auto-Submitted: auto-replied\n");
	sbuf_puts(out, "MIME-Version: 1.0\n");
	sbuf_puts(out, "Content-Type: text/plain; charset=us-ascii\n\n");

	sbuf_printf(out, "This is the mail system at host %s.\n\n", host);
	sbuf_printf(out, "Your message with queue ID %s could not be "
	    "delivered to the\nfollowing recipients:\n\n", msg->qid);
	for (size_t k = 0; k < n; k++) {
		char *rcpt = addr_externalize(msg->env->rcpt[idx[k]].addr);

		sbuf_printf(out, "<%s>: %s %s\n", rcpt, dsns[k], reasons[k]);
		free(rcpt);
	}
	sbuf_puts(out, "\n--- Header of the original message ---\n\n");
	bounce_add_orig_header(msg, out);
	free(to);
}

int qmgr_bounce_write(struct qmgr_msg *msg, const size_t *idx, size_t n,
    char *const *dsns, char *const *reasons, char **err_out)
{
	struct qenv *env = qenv_new();
	struct qwriter *w;
	struct sbuf body;
	char bqid[QID_SIZE];
	int rc = -1;

	env->sender = xstrdup("");
	env->protocol = xstrdup("LOCAL");
	qenv_add_rcpt(env, msg->env->sender, NULL, 0);
	w = qwriter_open(".", env, err_out);
	if (w == NULL)
		goto out;
	snprintf(bqid, sizeof(bqid), "%s", qwriter_qid(w));

	sbuf_init(&body, 0);
	bounce_compose(msg, bqid, idx, n, dsns, reasons, &body);
	if (qwriter_write(w, body.data, body.len) < 0) {
		*err_out = xasprintf("cannot write the bounce file: %s",
		    strerror(errno));
		qwriter_abort(&w);
		sbuf_free(&body);
		goto out;
	}
	sbuf_free(&body);
	if (qwriter_commit(&w, err_out) < 0)
		goto out;
	log_info("%s: sender non-delivery notification: %s", msg->qid, bqid);
	qmgr_scan_soon(bqid);
	rc = 0;
out:
	qenv_free(&env);
	return rc;
}

/* 1 when recipient r asked for failure notices (RFC 3461 NOTIFY). */
static int bounce_wanted(const struct qrcpt *r)
{
	if (r->notify & QNOTIFY_NEVER)
		return 0;
	return r->notify == 0 || (r->notify & QNOTIFY_FAILURE);
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
	size_t *widx = xcalloc(n, sizeof(*widx)), nw = 0, marked = 0;
	char **wdsn = xcalloc(n, sizeof(*wdsn));
	char **wreason = xcalloc(n, sizeof(*wreason));
	char *err = NULL;

	for (size_t k = 0; k < n; k++) {
		if (!bounce_wanted(&msg->env->rcpt[idx[k]]))
			continue;
		widx[nw] = idx[k];
		wdsn[nw] = dsns[k];
		wreason[nw] = reasons[k];
		nw++;
	}

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
