/*
 * Mail transactions: MAIL, RCPT and DATA, pipelined when the server
 * offers PIPELINING (RFC 2920), with a result per recipient.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "deliver.h"
#include "log.h"
#include "smtp.h"

/* RFC 3461 4.2: at most 500 characters of ORCPT value. */
#define TRANS_MAX_ORCPT 500

/* Appends s as RFC 3461 section 4 xtext. */
static void trans_xtext(struct sbuf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			sbuf_printf(out, "+%02X", *p);
		else
			sbuf_putc(out, (char)*p);
	}
}

/* Appends the RET and ENVID parameters (RFC 3461 4.3, 4.4), which qmgr
 * stored as received, for a server that offers DSN. */
static void trans_mail_dsn(const struct smtp_conn *c,
    const struct smtp_request *req, struct sbuf *out)
{
	if (!(c->caps & SMTP_CAP_DSN))
		return;
	if (req->env->ret != NULL && req->env->ret[0] != '\0')
		sbuf_printf(out, " RET=%s", req->env->ret);
	if (req->env->envid != NULL && req->env->envid[0] != '\0')
		sbuf_printf(out, " ENVID=%s", req->env->envid);
}

/* Appends "MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME] [RET= ENVID=]\r\n". */
static void trans_mail_command(const struct smtp_conn *c,
    const struct smtp_request *req, struct sbuf *out)
{
	char *sender = addr_externalize(req->sender);

	sbuf_printf(out, "MAIL FROM:<%s>", sender);
	if (c->caps & SMTP_CAP_SIZE)
		sbuf_printf(out, " SIZE=%lld", (long long)req->env->msg_size);
	/* NOTE: BODY=8BITMIME is declared whenever the server offers it,
	 * and an 8-bit message goes unchanged to a server that does not
	 * (no conversion to 7 bits, RFC 6152 section 3). */
	if (c->caps & SMTP_CAP_8BITMIME)
		sbuf_puts(out, " BODY=8BITMIME");
	trans_mail_dsn(c, req, out);
	sbuf_puts(out, "\r\n");
	free(sender);
}

/* Appends the NOTIFY and ORCPT parameters (RFC 3461 4.1, 4.2) of r for a
 * server that offers DSN. smtpd stores ORCPT as received; an alias
 * expansion in local stores the bare original address, sent here as
 * rfc822 xtext. */
static void trans_rcpt_dsn(const struct smtp_conn *c,
    const struct smtp_rcpt *r, struct sbuf *out)
{
	static const struct {
		int bit;
		const char *name;
	} notify[] = {{QNOTIFY_SUCCESS, "SUCCESS"},
	    {QNOTIFY_FAILURE, "FAILURE"}, {QNOTIFY_DELAY, "DELAY"}};
	const struct qrcpt *qr = r->qr;
	const char *sep = "=";

	if (!(c->caps & SMTP_CAP_DSN) || qr == NULL)
		return;
	if (qr->notify & QNOTIFY_NEVER) {
		sbuf_puts(out, " NOTIFY=NEVER");
	} else if (qr->notify != 0) {
		sbuf_puts(out, " NOTIFY");
		for (size_t i = 0; i < sizeof(notify) / sizeof(notify[0]); i++) {
			if (!(qr->notify & notify[i].bit))
				continue;
			sbuf_printf(out, "%s%s", sep, notify[i].name);
			sep = ",";
		}
	}
	if (qr->orcpt == NULL || qr->orcpt[0] == '\0')
		return;
	if (strchr(qr->orcpt, ';') != NULL) {
		sbuf_printf(out, " ORCPT=%s", qr->orcpt);
	} else if (strlen(qr->orcpt) * 3 + 7 <= TRANS_MAX_ORCPT) {
		sbuf_puts(out, " ORCPT=rfc822;");
		trans_xtext(out, qr->orcpt);
	}
}

static void trans_rcpt_command(const struct smtp_conn *c,
    const struct smtp_rcpt *r, struct sbuf *out)
{
	char *rcpt = addr_externalize(r->addr);

	sbuf_printf(out, "RCPT TO:<%s>", rcpt);
	trans_rcpt_dsn(c, r, out);
	sbuf_puts(out, "\r\n");
	free(rcpt);
}

/* Sets the result of r from a non-2xx reply to command. */
static void trans_reply_result(const struct smtp_conn *c,
    struct smtp_rcpt *r, const struct smtp_reply *reply, const char *command)
{
	char dsn[16];

	if (r->done)
		return;
	smtp_reply_dsn(reply, dsn, sizeof(dsn));
	smtp_rcpt_result(r, reply->code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER,
	    dsn, "host %s said: %s (in reply to %s command)", c->peer,
	    sbuf_cstr(&reply->text), command);
	r->remote_mta = xstrdup(c->host);
	r->remote_reply = xstrdup(sbuf_cstr(&reply->text));
}

/* Applies a reply to every recipient still in the transaction. */
static void trans_reply_all(const struct smtp_conn *c,
    struct smtp_request *req, const struct smtp_reply *reply,
    const char *command, int accepted_only)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		if (r->skip || r->done || (accepted_only && !r->accepted))
			continue;
		trans_reply_result(c, r, reply, command);
	}
}

/* Records the RCPT reply for r. Returns 1 when r was accepted. */
static int trans_rcpt_reply(const struct smtp_conn *c, struct smtp_rcpt *r,
    const struct smtp_reply *reply)
{
	if (reply->code / 100 == 2) {
		r->accepted = 1;
		return 1;
	}
	trans_reply_result(c, r, reply, "RCPT TO");
	return 0;
}

/* Ends a transaction that sent no message. Returns what
 * smtp_transaction returns. */
static int trans_abort(struct smtp_agent *agent, struct smtp_conn *c)
{
	return smtp_session_reset(agent, c) == 0;
}

/* Sends the message after 354 and applies the final reply. */
static int trans_send_body(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply)
{
	char dsn[16];

	if (smtp_body_send(agent, c, req) < 0) {
		smtp_fail_io(c, req, "sending message body");
		return 0;
	}
	if (agent->lmtp)
		return smtp_lmtp_data_replies(agent, c, req, reply);
	if (smtp_conn_read_reply(c, reply, agent->timeouts.data_done) < 0) {
		smtp_fail_io(c, req, "sending end of data -- message may be "
		    "sent more than once");
		return 0;
	}
	if (reply->code / 100 != 2) {
		trans_reply_all(c, req, reply, "end of DATA", 1);
		return 1;
	}

	smtp_reply_dsn(reply, dsn, sizeof(dsn));
	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		if (r->skip || r->done || !r->accepted)
			continue;
		smtp_rcpt_result(r, DELIVER_SENT, dsn, "%s",
		    sbuf_cstr(&reply->text));
		/* A server that offers DSN got the NOTIFY request, so it
		 * sends the success notice itself (RFC 3461). */
		r->dsn_action = (c->caps & SMTP_CAP_DSN) ? "none" : "relayed";
	}
	return 1;
}

/* Handles the DATA reply once the recipients are known. */
static int trans_after_data(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply, size_t accepted)
{
	if (reply->code == 354 && accepted == 0) {
		/* Only a pipelining server can get here: it took DATA
		 * although it rejected every recipient. Ending the data
		 * would send an empty message, so the session is dropped. */
		log_warn("%s: host %s accepted DATA without recipients",
		    req->qid, c->peer);
		return 0;
	}
	if (accepted == 0)
		return trans_abort(agent, c);
	if (reply->code != 354) {
		trans_reply_all(c, req, reply, "DATA", 1);
		return trans_abort(agent, c);
	}
	return trans_send_body(agent, c, req, reply);
}

/* MAIL, RCPTs and DATA in one write, then the replies in order. */
static int trans_pipelined(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply)
{
	struct sbuf batch;
	size_t accepted = 0;
	int mail_ok;

	/* The default cap: a command must never be cut short, or the
	 * replies would no longer match the commands. */
	sbuf_init(&batch, 0);
	trans_mail_command(c, req, &batch);
	for (size_t i = 0; i < req->nrcpt; i++)
		if (!req->rcpts[i].skip)
			trans_rcpt_command(c, &req->rcpts[i], &batch);
	sbuf_puts(&batch, "DATA\r\n");
	if (smtp_conn_write(c, batch.data, batch.len, agent->timeouts.mail) < 0) {
		sbuf_free(&batch);
		smtp_fail_io(c, req, "sending MAIL FROM");
		return 0;
	}
	sbuf_free(&batch);

	if (smtp_conn_read_reply(c, reply, agent->timeouts.mail) < 0) {
		smtp_fail_io(c, req, "sending MAIL FROM");
		return 0;
	}
	mail_ok = reply->code / 100 == 2;
	if (!mail_ok)
		trans_reply_all(c, req, reply, "MAIL FROM", 0);

	for (size_t i = 0; i < req->nrcpt; i++) {
		if (req->rcpts[i].skip)
			continue;
		if (smtp_conn_read_reply(c, reply, agent->timeouts.rcpt) < 0) {
			smtp_fail_io(c, req, "sending RCPT TO");
			return 0;
		}
		if (mail_ok)
			accepted += trans_rcpt_reply(c, &req->rcpts[i], reply);
	}

	if (smtp_conn_read_reply(c, reply, agent->timeouts.data_init) < 0) {
		smtp_fail_io(c, req, "sending DATA");
		return 0;
	}
	return trans_after_data(agent, c, req, reply, accepted);
}

/* Sends one command from buf and reads its reply. Returns 0 or -1. */
static int trans_command(struct smtp_conn *c, struct sbuf *buf,
    struct smtp_reply *reply, int timeout_ms)
{
	int rc = smtp_conn_write(c, buf->data, buf->len, timeout_ms);

	sbuf_reset(buf);
	if (rc < 0)
		return -1;
	return smtp_conn_read_reply(c, reply, timeout_ms);
}

/* One command at a time, for servers without PIPELINING. */
static int trans_stepwise(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply)
{
	struct sbuf cmd;
	size_t accepted = 0;
	int rc = 0;

	sbuf_init(&cmd, 0);
	trans_mail_command(c, req, &cmd);
	if (trans_command(c, &cmd, reply, agent->timeouts.mail) < 0) {
		smtp_fail_io(c, req, "sending MAIL FROM");
		goto done;
	}
	if (reply->code / 100 != 2) {
		trans_reply_all(c, req, reply, "MAIL FROM", 0);
		rc = trans_abort(agent, c);
		goto done;
	}

	for (size_t i = 0; i < req->nrcpt; i++) {
		if (req->rcpts[i].skip)
			continue;
		trans_rcpt_command(c, &req->rcpts[i], &cmd);
		if (trans_command(c, &cmd, reply, agent->timeouts.rcpt) < 0) {
			smtp_fail_io(c, req, "sending RCPT TO");
			goto done;
		}
		accepted += trans_rcpt_reply(c, &req->rcpts[i], reply);
	}
	if (accepted == 0) {
		rc = trans_abort(agent, c);
		goto done;
	}

	sbuf_puts(&cmd, "DATA\r\n");
	if (trans_command(c, &cmd, reply, agent->timeouts.data_init) < 0) {
		smtp_fail_io(c, req, "sending DATA");
		goto done;
	}
	rc = trans_after_data(agent, c, req, reply, accepted);

done:
	sbuf_free(&cmd);
	return rc;
}

int smtp_transaction(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req)
{
	struct smtp_reply reply;
	int rc;

	for (size_t i = 0; i < req->nrcpt; i++)
		req->rcpts[i].accepted = 0;

	if (c->size_limit > 0
	    && (unsigned long long)req->env->msg_size > c->size_limit) {
		char text[600];

		snprintf(text, sizeof(text),
		    "message size %lld exceeds size limit %llu of server %s",
		    (long long)req->env->msg_size, c->size_limit, c->peer);
		smtp_request_fail_rest(req, DELIVER_BOUNCE, "5.3.4", text);
		return 1;
	}

	smtp_reply_init(&reply);
	if (c->caps & SMTP_CAP_PIPELINING)
		rc = trans_pipelined(agent, c, req, &reply);
	else
		rc = trans_stepwise(agent, c, req, &reply);
	smtp_reply_free(&reply);
	return rc;
}
