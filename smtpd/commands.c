/*
 * The SMTP commands (RFC 5321 4.1) and their replies, with enhanced
 * status codes (RFC 3463).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "qfile.h"
#include "resolve.h"
#include "sbuf.h"
#include "smtpd.h"
#include "wakeup.h"

/* Outcome of a command handler, for the session's counters. */
enum cmd_result {
	CMD_OK,      /* success: counted as such */
	CMD_FAILED,  /* error reply sent: counts toward the error limit */
	CMD_REJECTED, /* error reply sent, not counted: the client did no wrong */
	CMD_LATER    /* the outcome is counted when it is known (DATA) */
};

struct command {
	const char *name;
	enum cmd_result (*handle)(struct smtpd_session *sess, const char *args);
	enum smtpd_counter counter;
};

#define HELO_MAX 255

static void helo_set(struct smtpd_session *sess, const char *args)
{
	char clean[HELO_MAX + 1];

	str_sanitize(clean, sizeof(clean), args, strlen(args));
	free(sess->helo);
	sess->helo = xstrdup(clean);
}

static enum cmd_result cmd_ehlo(struct smtpd_session *sess, const char *args)
{
	if (*args == '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: EHLO hostname");
		return CMD_FAILED;
	}
	helo_set(sess, args);
	smtpd_session_reset(sess);
	sess->esmtp = 1;
	if (smtpd_auth_ehlo_prepare(sess))
		return CMD_LATER;
	smtpd_ehlo_finish(sess);
	return CMD_OK;
}

void smtpd_ehlo_finish(struct smtpd_session *sess)
{
	smtpd_reply(sess, "250-%s", smtpd_settings.myhostname);
	smtpd_reply(sess, "250-PIPELINING");
	if (smtpd_settings.message_size_limit > 0)
		smtpd_reply(sess, "250-SIZE %ld",
		    smtpd_settings.message_size_limit);
	else
		smtpd_reply(sess, "250-SIZE");
	if (!smtpd_settings.disable_vrfy)
		smtpd_reply(sess, "250-VRFY");
	if (smtpd_tls_offer(sess))
		smtpd_reply(sess, "250-STARTTLS");
	smtpd_auth_ehlo_lines(sess);
	smtpd_reply(sess, "250-ENHANCEDSTATUSCODES");
	smtpd_reply(sess, "250-DSN");
	smtpd_reply(sess, "250 8BITMIME");
}

static enum cmd_result cmd_helo(struct smtpd_session *sess, const char *args)
{
	if (*args == '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: HELO hostname");
		return CMD_FAILED;
	}
	helo_set(sess, args);
	smtpd_session_reset(sess);
	sess->esmtp = 0;
	smtpd_reply(sess, "250 %s", smtpd_settings.myhostname);
	return CMD_OK;
}

/* Extensions whose parameters MAIL and RCPT accept: those the EHLO
 * reply lists, so none after HELO. */
static int offered_extensions(const struct smtpd_session *sess)
{
	return sess->esmtp ? SMTPD_EXT_DSN : 0;
}

static enum cmd_result cmd_mail(struct smtpd_session *sess, const char *args)
{
	struct smtpd_mail_params params;
	char reply[SMTPD_REPLY_MAX];
	const char *path, *rest;
	char *sender;

	if (sess->helo == NULL) {
		smtpd_reply(sess, "503 5.5.1 Error: send HELO/EHLO first");
		return CMD_FAILED;
	}
	if (sess->env) {
		smtpd_reply(sess, "503 5.5.1 Error: nested MAIL command");
		return CMD_FAILED;
	}
	path = smtpd_path_arg(args, "FROM");
	if (path == NULL || *path == '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return CMD_FAILED;
	}
	if (addr_parse_path(path, 1, 0, &sender, &rest) != ADDR_OK) {
		smtpd_reply(sess, "501 5.1.7 Bad sender address syntax");
		return CMD_FAILED;
	}
	if (smtpd_parse_mail_params(rest, offered_extensions(sess), &params,
	    reply, sizeof(reply)) < 0) {
		free(sender);
		smtpd_reply(sess, "%s", reply);
		return CMD_FAILED;
	}
	if (params.size_given && smtpd_settings.message_size_limit > 0 &&
	    params.size > (unsigned long long)smtpd_settings.message_size_limit) {
		free(sender);
		smtpd_reply(sess, "552 5.3.4 Message size exceeds fixed limit");
		return CMD_FAILED;
	}

	sess->env = qenv_new();
	sess->rcpt_overshoot = 0;
	sess->env->sender = sender;
	if (params.envid[0] != '\0')
		sess->env->envid = xstrdup(params.envid);
	if (params.ret != SMTPD_RET_NONE)
		sess->env->ret = xstrdup(params.ret == SMTPD_RET_HDRS ? "HDRS"
		    : "FULL");
	sess->mail = xmalloc(sizeof(*sess->mail));
	*sess->mail = params;
	smtpd_reply(sess, "250 2.1.0 Ok");
	return CMD_OK;
}

/* Copies the envelope sender, made safe for a log line, into out. */
static void sender_for_log(const struct smtpd_session *sess, char *out,
    size_t size)
{
	const char *s = sess->env ? sess->env->sender : "";

	str_sanitize(out, size, s, strlen(s));
}

/* Logs a rejected recipient in the usual NOQUEUE form. */
static void log_rcpt_reject(struct smtpd_session *sess, const char *reply,
    const char *rcpt)
{
	char from[ADDR_MAX_PATH + 1], to[ADDR_MAX_PATH + 1];

	sender_for_log(sess, from, sizeof(from));
	str_sanitize(to, sizeof(to), rcpt, strlen(rcpt));
	log_info("NOQUEUE: reject: RCPT from %s[%s]: %s; from=<%s> to=<%s> "
	    "proto=%s helo=<%s>", sess->name, sess->addr, reply, from, to,
	    sess->esmtp ? "ESMTP" : "SMTP", sess->helo);
}

/*
 * Decides whether rcpt may be accepted: its resolution, the restriction
 * lists, then whether a local or virtual mailbox exists. Returns 0 with
 * the resolution in *res, or -1 with the complete reply in reply.
 */
static int rcpt_check(struct smtpd_session *sess, const char *rcpt,
    struct resolve_result *res, char *reply, size_t reply_size)
{
	char text[ADDR_MAX_PATH + 1];
	char *ext = addr_externalize(rcpt);
	char *err = NULL;
	int exists;

	str_sanitize(text, sizeof(text), ext, strlen(ext));
	free(ext);
	if (resolve_addr(rcpt, res, &err) < 0) {
		log_warn("cannot resolve recipient <%s>: %s", text, err);
		free(err);
		snprintf(reply, reply_size,
		    "451 4.3.0 <%s>: Temporary lookup failure", text);
		return -1;
	}
	if (smtpd_policy_check_rcpt(sess, rcpt, res, reply, reply_size) !=
	    SMTPD_POLICY_PERMIT)
		return -1;
	if (res->addr_class != ADDR_CLASS_LOCAL &&
	    res->addr_class != ADDR_CLASS_VIRTUAL)
		return 0;

	exists = resolve_recipient_exists(res->recipient, &err);
	if (exists < 0) {
		log_warn("cannot look up recipient <%s>: %s", text, err);
		free(err);
		snprintf(reply, reply_size,
		    "451 4.3.0 <%s>: Temporary lookup failure", text);
		return -1;
	}
	if (exists == 0) {
		snprintf(reply, reply_size, "550 5.1.1 <%s>: Recipient address "
		    "rejected: User unknown in %s", text,
		    res->addr_class == ADDR_CLASS_LOCAL ?
		    "local recipient table" : "virtual mailbox table");
		return -1;
	}
	return 0;
}

/* 1 when addr is already a recipient of env. Letter case is ignored,
 * as the lookup tables ignore it when they find the mailbox. */
static int envelope_has_rcpt(const struct qenv *env, const char *addr)
{
	for (size_t i = 0; i < env->nrcpt; i++)
		if (strcasecmp(env->rcpt[i].addr, addr) == 0)
			return 1;
	return 0;
}

static enum cmd_result cmd_rcpt(struct smtpd_session *sess, const char *args)
{
	struct smtpd_rcpt_params params;
	struct resolve_result res;
	char reply[SMTPD_REPLY_MAX];
	const char *path, *rest;
	char *rcpt;

	if (sess->env == NULL) {
		smtpd_reply(sess, "503 5.5.1 Error: need MAIL command");
		return CMD_FAILED;
	}
	path = smtpd_path_arg(args, "TO");
	if (path == NULL || *path == '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: RCPT TO:<address>");
		return CMD_FAILED;
	}
	if (addr_parse_path(path, 0, 1, &rcpt, &rest) != ADDR_OK) {
		smtpd_reply(sess, "501 5.1.3 Bad recipient address syntax");
		return CMD_FAILED;
	}
	if (smtpd_parse_rcpt_params(rest, offered_extensions(sess), &params,
	    reply, sizeof(reply)) < 0)
		goto reject;
	if (sess->env->nrcpt >= (size_t)smtpd_settings.recipient_limit) {
		/* RFC 5321 4.5.3.1.10: a client that pipelines more
		 * recipients than the limit sends DATA for those accepted, so
		 * these 452 replies must not end the session. */
		free(rcpt);
		smtpd_reply(sess, "452 4.5.3 Error: too many recipients");
		if (sess->rcpt_overshoot++ <
		    smtpd_settings.recipient_overshoot_limit)
			return CMD_REJECTED;
		return CMD_FAILED;
	}
	if (rcpt_check(sess, rcpt, &res, reply, sizeof(reply)) < 0) {
		log_rcpt_reject(sess, reply, rcpt);
		goto reject;
	}

	/* A repeated recipient gets 250 but one copy of the message. */
	if (!envelope_has_rcpt(sess->env, res.recipient))
		qenv_add_rcpt(sess->env, res.recipient,
		    params.orcpt[0] ? params.orcpt : NULL, params.notify);
	free(rcpt);
	smtpd_reply(sess, "250 2.1.5 Ok");
	return CMD_OK;

reject:
	free(rcpt);
	smtpd_reply(sess, "%s", reply);
	return CMD_FAILED;
}

/* RFC 5322 3.3 date in local time, e.g. "Mon, 2 Jun 2025 10:00:00 +0200". */
static void format_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		out[0] = '\0';
}

/* Formats the Received header with from as the text after "from ". */
static char *received_text(struct smtpd_session *sess, const char *from,
    const char *date)
{
	struct qenv *env = sess->env;
	char *text;

	if (env->nrcpt == 1) {
		char *rcpt = addr_externalize(env->rcpt[0].addr);
		char clean[ADDR_MAX_PATH + 1];

		str_sanitize(clean, sizeof(clean), rcpt, strlen(rcpt));
		free(rcpt);
		text = xasprintf("Received: from %s\n\tby %s (%s) "
		    "with %s id %s\n\tfor <%s>; %s\n", from,
		    smtpd_settings.myhostname,
		    smtpd_settings.mail_name, env->protocol, env->qid, clean,
		    date);
	} else {
		text = xasprintf("Received: from %s\n\tby %s (%s) "
		    "with %s id %s;\n\t%s\n", from,
		    smtpd_settings.myhostname,
		    smtpd_settings.mail_name, env->protocol, env->qid, date);
	}
	return text;
}

/* Writes the Received header (RFC 5321 4.4) at the start of the message. */
static int write_received(struct smtpd_session *sess)
{
	struct qenv *env = sess->env;
	const char *tls = smtpd_tls_received_comment(sess);
	char date[64];
	char *text, *from, *tls_line;
	int r;

	format_date((time_t)env->arrival_sec, date, sizeof(date));
	tls_line = tls ? xasprintf("\n\t(using %s)", tls) : xstrdup("");
	if (env->auth_user && smtpd_auth_header_names_user()) {
		/* RFC 3848: the protocol (ESMTPA, ESMTPSA) marks every
		 * authenticated submission; the name only on request. */
		from = xasprintf("%s (%s [%s])%s\n\t(Authenticated sender: %s)",
		    sess->helo, sess->name, sess->addr, tls_line,
		    env->auth_user);
	} else {
		from = xasprintf("%s (%s [%s])%s", sess->helo, sess->name,
		    sess->addr, tls_line);
	}
	free(tls_line);
	text = received_text(sess, from, date);
	free(from);
	r = qwriter_write(sess->writer, text, strlen(text));
	free(text);
	return r;
}

static int data_sink(void *ctx, const char *data, size_t len)
{
	struct smtpd_session *sess = ctx;

	return qwriter_write(sess->writer, data, len);
}

/* Completes the envelope and creates the queue file. */
static int data_open_queue_file(struct smtpd_session *sess)
{
	struct qenv *env = sess->env;
	struct timeval now;
	char *err = NULL;

	gettimeofday(&now, NULL);
	env->arrival_sec = now.tv_sec;
	env->arrival_usec = now.tv_usec;
	env->client_name = xstrdup(sess->name);
	env->client_addr = xstrdup(sess->addr);
	env->helo = xstrdup(sess->helo);
	env->protocol = xstrdup(smtpd_protocol_name(sess));
	if (sess->sasl_user)
		env->auth_user = xstrdup(sess->sasl_user);
	if (sess->tls_summary)
		env->tls = xstrdup(sess->tls_summary);

	sess->writer = qwriter_open(smtpd_settings.queue_dir, env, &err);
	if (sess->writer == NULL) {
		log_error("cannot create a queue file in %s: %s",
		    smtpd_settings.queue_dir, err ? err : "unknown error");
		free(err);
		return -1;
	}
	if (sess->sasl_user)
		log_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s",
		    env->qid, sess->name, sess->addr, sess->sasl_method,
		    sess->sasl_user);
	else
		log_info("%s: client=%s[%s]", env->qid, sess->name,
		    sess->addr);
	if (write_received(sess) < 0) {
		log_error("%s: cannot write the queue file: %s", env->qid,
		    strerror(errno));
		qwriter_abort(&sess->writer);
		return -1;
	}
	return 0;
}

static enum cmd_result cmd_data(struct smtpd_session *sess, const char *args)
{
	if (sess->env == NULL) {
		smtpd_reply(sess, "503 5.5.1 Error: need MAIL command");
		return CMD_FAILED;
	}
	if (sess->env->nrcpt == 0) {
		smtpd_reply(sess, "503 5.5.1 Error: need RCPT command");
		return CMD_FAILED;
	}
	if (*args) {
		smtpd_reply(sess, "501 5.5.4 Syntax: DATA");
		return CMD_FAILED;
	}
	if (data_open_queue_file(sess) < 0) {
		smtpd_reply(sess, "451 4.3.0 Error: queue file write error");
		return CMD_FAILED;
	}
	sess->data = xmalloc(sizeof(*sess->data));
	smtpd_data_init(sess->data, smtpd_settings.normalize_bare_newline,
	    (unsigned long long)smtpd_settings.message_size_limit,
	    (size_t)smtpd_settings.header_size_limit, data_sink, sess);
	smtpd_reply(sess, "354 End data with <CR><LF>.<CR><LF>");
	sess->state = SMTPD_STATE_DATA;
	return CMD_LATER;
}

static void commit_done(struct smtpd_commit_job *job, void *arg)
{
	struct smtpd_session *sess = arg;

	if (job->failed) {
		errno = job->error_no;
		log_error("%s: cannot commit the queue file: %s failed: %m",
		    job->qid, job->failed_step);
	} else if (sess) {
		char from[ADDR_MAX_PATH + 1];

		sender_for_log(sess, from, sizeof(from));
		log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue incoming)",
		    job->qid, from, job->size, sess->env->nrcpt);
	} else {
		log_info("%s: queued, but the client left before the reply",
		    job->qid);
	}
	if (sess == NULL) {
		if (!job->failed)
			wakeup_qmgr(smtpd_settings.queue_dir, job->qid);
		free(job);
		return;
	}

	sess->job = NULL;
	smtpd_session_reset(sess);
	if (job->failed) {
		smtpd_reply(sess, "451 4.3.0 Error: queue file write error");
		sess->state = SMTPD_STATE_COMMAND;
		smtpd_session_error(sess);
	} else {
		smtpd_reply(sess, "250 2.0.0 Ok: queued as %s", job->qid);
		sess->count_ok[SMTPD_CMD_DATA]++;
		if (wakeup_qmgr(smtpd_settings.queue_dir, job->qid) < 0 &&
		    log_ratelimit("smtpd-wakeup", 3, 60))
			log_warn("%s: cannot wake qmgr: %m; it finds the "
			    "message at its next queue scan", job->qid);
	}
	free(job);

	if (sess->state == SMTPD_STATE_CLOSING)
		return;
	if (smtpd_stopping) {
		smtpd_session_close_after(sess,
		    "421 4.3.2 %s Service shutting down",
		    smtpd_settings.myhostname);
		return;
	}
	smtpd_session_resume(sess);
}

/* The reply for a DATA stream that was read to its end but rejected. */
static const char *data_problem_reply(int flags)
{
	if (flags & SMTPD_DATA_BARE_LF)
		return "550 5.5.2 Error: bare <LF> received";
	if (flags & SMTPD_DATA_BARE_CR)
		return "550 5.5.2 Error: bare <CR> received";
	if (flags & SMTPD_DATA_TOO_BIG)
		return "552 5.3.4 Message size exceeds fixed limit";
	if (flags & SMTPD_DATA_HEADER_TOO_BIG)
		return "552 5.3.4 Message header size exceeds fixed limit";
	return "451 4.3.0 Error: queue file write error";
}

void smtpd_data_finished(struct smtpd_session *sess)
{
	struct smtpd_data *d = sess->data;
	struct smtpd_commit_job *job;

	if (d->flags) {
		const char *reply = data_problem_reply(d->flags);
		char from[ADDR_MAX_PATH + 1];

		sender_for_log(sess, from, sizeof(from));
		log_info("%s: reject: DATA from %s[%s]: %s; from=<%s> proto=%s "
		    "helo=<%s>", qwriter_qid(sess->writer), sess->name,
		    sess->addr, reply, from,
		    sess->esmtp ? "ESMTP" : "SMTP", sess->helo);
		smtpd_session_reset(sess);
		sess->state = SMTPD_STATE_COMMAND;
		smtpd_reply(sess, "%s", reply);
		smtpd_session_error(sess);
		return;
	}

	job = xcalloc(1, sizeof(*job));
	job->writer = sess->writer;
	sess->writer = NULL;
	snprintf(job->qid, sizeof(job->qid), "%s", qwriter_qid(job->writer));
	job->size = (long long)qwriter_size(job->writer);
	job->done = commit_done;
	job->arg = sess;
	sess->job = job;
	free(sess->data);
	sess->data = NULL;
	sess->state = SMTPD_STATE_COMMIT;
	bufferevent_disable(sess->bev, EV_READ);
	smtpd_commit_submit(job);
}

static enum cmd_result cmd_rset(struct smtpd_session *sess, const char *args)
{
	if (*args) {
		smtpd_reply(sess, "501 5.5.4 Syntax: RSET");
		return CMD_FAILED;
	}
	smtpd_session_reset(sess);
	smtpd_reply(sess, "250 2.0.0 Ok");
	return CMD_OK;
}

static enum cmd_result cmd_noop(struct smtpd_session *sess, const char *args)
{
	smtpd_reply(sess, "250 2.0.0 Ok");
	return CMD_OK;
}

static enum cmd_result cmd_quit(struct smtpd_session *sess, const char *args)
{
	sess->quit_seen = 1;
	smtpd_session_close_after(sess, "221 2.0.0 Bye");
	return CMD_OK;
}

static enum cmd_result cmd_vrfy(struct smtpd_session *sess, const char *args)
{
	if (smtpd_settings.disable_vrfy) {
		smtpd_reply(sess, "502 5.5.1 VRFY command is disabled");
		return CMD_FAILED;
	}
	if (*args == '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: VRFY address");
		return CMD_FAILED;
	}
	/* RFC 5321 3.5.3: 252 when the address is not verified. */
	smtpd_reply(sess, "252 2.0.0 Not verified; send mail to attempt "
	    "delivery");
	return CMD_OK;
}

static enum cmd_result cmd_help(struct smtpd_session *sess, const char *args)
{
	/* STARTTLS is listed only where EHLO offers it. */
	smtpd_reply(sess, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP%s", smtpd_tls_offer(sess) ? " STARTTLS" : "");
	return CMD_OK;
}

/* auth.c counts the outcome, which may come from authd later. */
static enum cmd_result cmd_auth(struct smtpd_session *sess, const char *args)
{
	smtpd_auth_command(sess, args);
	return CMD_LATER;
}

static enum cmd_result cmd_starttls(struct smtpd_session *sess,
    const char *args)
{
	return smtpd_starttls_command(sess, args) < 0 ? CMD_FAILED : CMD_OK;
}

static const struct command command_table[] = {
	{"EHLO", cmd_ehlo, SMTPD_CMD_EHLO},
	{"HELO", cmd_helo, SMTPD_CMD_HELO},
	{"MAIL", cmd_mail, SMTPD_CMD_MAIL},
	{"RCPT", cmd_rcpt, SMTPD_CMD_RCPT},
	{"DATA", cmd_data, SMTPD_CMD_DATA},
	{"RSET", cmd_rset, SMTPD_CMD_RSET},
	{"NOOP", cmd_noop, SMTPD_CMD_NOOP},
	{"QUIT", cmd_quit, SMTPD_CMD_QUIT},
	{"VRFY", cmd_vrfy, SMTPD_CMD_VRFY},
	{"HELP", cmd_help, SMTPD_CMD_HELP},
	{"AUTH", cmd_auth, SMTPD_CMD_AUTH},
	{"STARTTLS", cmd_starttls, SMTPD_CMD_STARTTLS},
	{NULL, NULL, SMTPD_CMD_UNKNOWN}
};

void smtpd_command(struct smtpd_session *sess, char *line)
{
	const struct command *cmd;
	const char *args;
	size_t verb_len;
	enum cmd_result r;

	if (smtpd_auth_wants_line(sess)) {
		smtpd_auth_line(sess, line);
		return;
	}
	smtpd_cmd_split(line, &verb_len, &args);
	for (cmd = command_table; cmd->name; cmd++)
		if (verb_len == strlen(cmd->name) &&
		    strncasecmp(line, cmd->name, verb_len) == 0)
			break;

	if (sess->count_all[cmd->counter] < 0xffff)
		sess->count_all[cmd->counter]++;
	if (cmd->name == NULL) {
		sess->last_command = "UNKNOWN";
		smtpd_reply(sess, verb_len ?
		    "502 5.5.2 Error: command not recognized" :
		    "500 5.5.2 Error: bad syntax");
		smtpd_session_error(sess);
		return;
	}
	sess->last_command = cmd->name;
	if (smtpd_tls_required(sess, cmd->counter)) {
		smtpd_reply(sess, "530 5.7.0 Must issue a STARTTLS command first");
		smtpd_session_error(sess);
		return;
	}
	r = cmd->handle(sess, args);
	if (r == CMD_OK && sess->count_ok[cmd->counter] < 0xffff)
		sess->count_ok[cmd->counter]++;
	else if (r == CMD_FAILED && sess->state != SMTPD_STATE_CLOSING)
		smtpd_session_error(sess);
}
