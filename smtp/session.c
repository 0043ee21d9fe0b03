/*
 * Sessions: connecting to the next hop, the greeting, EHLO or HELO with
 * the capabilities, RSET before reuse, and QUIT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "deliver.h"
#include "iox.h"
#include "log.h"
#include "smtp.h"

/* Outcome of greeting one server address. */
enum session_outcome {
	SESSION_READY,   /* EHLO or HELO accepted */
	SESSION_RETRY,   /* temporary failure: try the next address */
	SESSION_FINAL,   /* permanent failure: results set on every recipient */
	SESSION_NO_TLS   /* TLS failed at level may: reconnect without it */
};

unsigned smtp_ehlo_parse(const struct smtp_reply *r,
    unsigned long long *size_out)
{
	const char *line = sbuf_cstr(&r->lines);
	unsigned caps = 0;
	int first = 1;

	*size_out = 0;
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		char word[32];
		size_t wlen = strcspn(line, " \n");

		/* The first line names the server; keywords start later. */
		if (!first && wlen > 0 && wlen < sizeof(word)) {
			memcpy(word, line, wlen);
			word[wlen] = '\0';
			if (strcasecmp(word, "PIPELINING") == 0)
				caps |= SMTP_CAP_PIPELINING;
			else if (strcasecmp(word, "8BITMIME") == 0)
				caps |= SMTP_CAP_8BITMIME;
			else if (strcasecmp(word, "ENHANCEDSTATUSCODES") == 0)
				caps |= SMTP_CAP_ENHANCEDSTATUSCODES;
			else if (strcasecmp(word, "STARTTLS") == 0)
				caps |= SMTP_CAP_STARTTLS;
			else if (strcasecmp(word, "DSN") == 0)
				caps |= SMTP_CAP_DSN;
			else if (strcasecmp(word, "SIZE") == 0) {
				caps |= SMTP_CAP_SIZE;
				/* "SIZE" alone or "SIZE 0" means no fixed limit
				 * (RFC 1870 section 4). */
				if (wlen < len)
					*size_out = strtoull(line + wlen + 1,
					    NULL, 10);
			}
		}
		first = 0;
		line += len;
		if (*line == '\n')
			line++;
	}
	return caps;
}

void smtp_fail_io(struct smtp_conn *c, struct smtp_request *req,
    const char *stage)
{
	const char *dsn = "4.4.2";
	char text[600];

	switch (c->io_error) {
	case SMTP_IO_TIMEOUT:
		snprintf(text, sizeof(text),
		    "conversation with %s timed out while %s", c->peer, stage);
		break;
	case SMTP_IO_PROTO:
		dsn = "4.5.0";
		snprintf(text, sizeof(text),
		    "malformed reply from %s while %s: %s", c->peer, stage,
		    c->io_detail);
		break;
	default:
		snprintf(text, sizeof(text),
		    "lost connection with %s while %s", c->peer, stage);
		break;
	}
	log_warn("%s: %s", req->qid, text);
	smtp_request_fail_rest(req, DELIVER_DEFER, dsn, text);
}

/* Sets "host NAME[ADDR] said: ..." as the result of every recipient
 * without one, deferred for 4xx and bounced for 5xx. */
static void session_fail_reply(struct smtp_conn *c, struct smtp_request *req,
    const struct smtp_reply *r, const char *context)
{
	char dsn[16];
	char text[SMTP_REPLY_MAX_TEXT + 400];

	smtp_reply_dsn(r, dsn, sizeof(dsn));
	snprintf(text, sizeof(text), "host %s said: %s (%s)", c->peer,
	    sbuf_cstr(&r->text), context);
	smtp_request_fail_rest(req, r->code >= 500 ? DELIVER_BOUNCE
	    : DELIVER_DEFER, dsn, text);
}

/* Sends one command line and reads its reply. Returns 0 or -1 (I/O). */
static int session_command(struct smtp_conn *c, const char *cmd,
    struct smtp_reply *r, int timeout_ms)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "%s\r\n", cmd);

	if (n < 0 || (size_t)n >= sizeof(line))
		log_panic("SMTP command longer than %zu bytes", sizeof(line));
	if (smtp_conn_write(c, line, (size_t)n, timeout_ms) < 0)
		return -1;
	return smtp_conn_read_reply(c, r, timeout_ms);
}

/* Runs LHLO, which has no HELO fallback (RFC 2033 section 4.1). */
static enum session_outcome session_lhlo(struct smtp_agent *agent,
    struct smtp_conn *c, struct smtp_request *req, struct smtp_reply *r)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "LHLO %s", agent->helo_name);
	if (session_command(c, cmd, r, agent->timeouts.helo) < 0) {
		smtp_fail_io(c, req, "performing the LHLO handshake");
		return SESSION_RETRY;
	}
	if (r->code / 100 == 2) {
		c->caps = smtp_ehlo_parse(r, &c->size_limit);
		return SESSION_READY;
	}
	session_fail_reply(c, req, r, "in reply to LHLO command");
	return r->code >= 500 ? SESSION_FINAL : SESSION_RETRY;
}

/* Runs EHLO, or HELO when EHLO gets a 5xx reply. */
static enum session_outcome session_helo(struct smtp_agent *agent,
    struct smtp_conn *c, struct smtp_request *req, struct smtp_reply *r)
{
	char cmd[300];

	if (agent->lmtp)
		return session_lhlo(agent, c, req, r);
	snprintf(cmd, sizeof(cmd), "EHLO %s", agent->helo_name);
	if (session_command(c, cmd, r, agent->timeouts.helo) < 0) {
		smtp_fail_io(c, req, "performing the EHLO handshake");
		return SESSION_RETRY;
	}
	if (r->code / 100 == 2) {
		c->caps = smtp_ehlo_parse(r, &c->size_limit);
		return SESSION_READY;
	}
	if (r->code / 100 == 4) {
		session_fail_reply(c, req, r, "in reply to EHLO command");
		return SESSION_RETRY;
	}

	snprintf(cmd, sizeof(cmd), "HELO %s", agent->helo_name);
	if (session_command(c, cmd, r, agent->timeouts.helo) < 0) {
		smtp_fail_io(c, req, "performing the HELO handshake");
		return SESSION_RETRY;
	}
	if (r->code / 100 == 2) {
		c->caps = 0;
		return SESSION_READY;
	}
	session_fail_reply(c, req, r, "in reply to HELO command");
	return r->code >= 500 ? SESSION_FINAL : SESSION_RETRY;
}

/* Sends STARTTLS when the TLS policy calls for it, then EHLO again. */
static enum session_outcome session_tls(struct smtp_agent *agent,
    struct smtp_conn *c, struct smtp_request *req, struct smtp_reply *r)
{
	int rc = smtp_tls_starttls(agent, c, req);

	if (rc == -2)
		return SESSION_NO_TLS;
	if (rc < 0)
		return SESSION_RETRY;
	if (rc == 0)
		return SESSION_READY;
	return session_helo(agent, c, req, r);
}

/* Reads the greeting, then sends EHLO or HELO, and STARTTLS. */
static enum session_outcome session_greet(struct smtp_agent *agent,
    struct smtp_conn *c, struct smtp_request *req)
{
	struct smtp_reply r;
	enum session_outcome outcome;

	smtp_reply_init(&r);
	if (smtp_conn_read_reply(c, &r, agent->timeouts.helo) < 0) {
		smtp_fail_io(c, req, "receiving the initial server greeting");
		outcome = SESSION_RETRY;
	} else if (r.code / 100 != 2) {
		log_warn("%s: host %s rejected the session in its greeting: "
		    "%s", req->qid, c->peer, sbuf_cstr(&r.text));
		session_fail_reply(c, req, &r, "in reply to the greeting");
		outcome = r.code >= 500 ? SESSION_FINAL : SESSION_RETRY;
	} else {
		outcome = session_helo(agent, c, req, &r);
		if (outcome == SESSION_READY && !c->unix_socket)
			outcome = session_tls(agent, c, req, &r);
		if (outcome == SESSION_READY &&
		    smtp_auth_login(agent, c, req, &r) < 0)
			outcome = SESSION_FINAL;
	}
	smtp_reply_free(&r);
	return outcome;
}

/* Clears every recipient result set by a failed attempt, so the next
 * address starts afresh. */
static void session_clear_results(struct smtp_request *req)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		if (req->rcpts[i].skip)
			continue;
		req->rcpts[i].done = 0;
		free(req->rcpts[i].text);
		req->rcpts[i].text = NULL;
	}
}

/* Connects to one server address (on the port of nh) and greets it,
 * without STARTTLS when no_tls is 1. Returns the session or NULL with
 * results set; *final_out is 1 when no other address may help, and
 * *connected_out is 1 when the TCP connection was established. */
static struct smtp_conn *session_try_addr(struct smtp_agent *agent,
    struct smtp_request *req, const struct smtp_nexthop *nh,
    const struct smtp_target *target, int no_tls, int *final_out,
    int *connected_out)
{
	struct smtp_conn *c;
	enum session_outcome outcome;
	char *err = NULL;
	int fd;

	*final_out = 0;
	*connected_out = 0;
	session_clear_results(req);
	fd = iox_tcp_connect(target->addr, nh->port, agent->timeouts.connect,
	    agent->bind_address, &err);
	if (fd < 0) {
		char text[600];

		snprintf(text, sizeof(text), "connect to %s[%s]:%s: %s",
		    target->host, target->addr, nh->port, strerror(errno));
		log_warn("%s: %s", req->qid, text);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.4.1", text);
		free(err);
		return NULL;
	}
	*connected_out = 1;

	c = smtp_conn_new(fd);
	c->no_tls = no_tls;
	c->nexthop = xstrdup(req->nexthop);
	c->host = xstrdup(target->host);
	snprintf(c->addr, sizeof(c->addr), "%s", target->addr);
	snprintf(c->port, sizeof(c->port), "%s", nh->port);
	snprintf(c->peer, sizeof(c->peer), "%s[%s]", target->host,
	    target->addr);
	snprintf(c->relay, sizeof(c->relay), "%s:%s", c->peer, nh->port);

	outcome = session_greet(agent, c, req);
	if (outcome == SESSION_NO_TLS) {
		smtp_conn_free(&c);
		return session_try_addr(agent, req, nh, target, 1, final_out,
		    connected_out);
	}
	if (outcome == SESSION_READY)
		return c;
	if (outcome == SESSION_FINAL)
		*final_out = 1;
	smtp_session_quit(agent, &c);
	return NULL;
}

/* Connects to the LMTP server at the UNIX socket path and greets it.
 * Returns the session or NULL with results set. */
static struct smtp_conn *session_try_unix(struct smtp_agent *agent,
    struct smtp_request *req, const char *path)
{
	struct smtp_conn *c;
	int fd;

	/* NOTE: a blocking connect, not bounded by smtp_connect_timeout; a
	 * UNIX socket connect waits only while the listen queue is full. */
	fd = iox_unix_connect(path, 0);
	if (fd < 0) {
		char text[600];

		snprintf(text, sizeof(text), "connect to unix:%s: %s", path,
		    strerror(errno));
		log_warn("%s: %s", req->qid, text);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.4.1", text);
		return NULL;
	}

	c = smtp_conn_new(fd);
	c->unix_socket = 1;
	c->nexthop = xstrdup(req->nexthop);
	c->host = xstrdup(path);
	snprintf(c->peer, sizeof(c->peer), "unix:%s", path);
	snprintf(c->relay, sizeof(c->relay), "unix:%s", path);
	if (session_greet(agent, c, req) == SESSION_READY)
		return c;
	smtp_session_quit(agent, &c);
	return NULL;
}

/* Tries the server addresses of nh until one session is ready. */
static struct smtp_conn *session_open_nexthop(struct smtp_agent *agent,
    struct smtp_request *req, const struct smtp_nexthop *nh)
{
	struct smtp_target_list targets;
	struct smtp_conn *c = NULL;
	const char *dsn = NULL;
	char *err = NULL;
	long sessions = 0;

	if (smtp_route_lookup(nh, &agent->self, agent->mx_address_limit,
	    &targets, &dsn, &err) < 0) {
		log_warn("%s: %s", req->qid, err);
		smtp_request_fail_rest(req, dsn[0] == '5' ? DELIVER_BOUNCE
		    : DELIVER_DEFER, dsn, err);
		free(err);
		return NULL;
	}

	/* A refused connection costs the server nothing, so only
	 * established ones count against smtp_mx_session_limit. */
	for (size_t i = 0; i < targets.count && c == NULL; i++) {
		int final = 0;
		int connected = 0;

		c = session_try_addr(agent, req, nh, &targets.items[i], 0,
		    &final, &connected);
		sessions += connected;
		if (final || (c == NULL && agent->mx_session_limit > 0 &&
		    sessions >= agent->mx_session_limit))
			break;
	}
	smtp_target_list_free(&targets);
	return c;
}

/* Opens a session with the LMTP next hop of req. */
static struct smtp_conn *session_open_lmtp(struct smtp_agent *agent,
    struct smtp_request *req)
{
	struct smtp_lmtp_hop hop;
	struct smtp_conn *c;
	char *err = NULL;

	if (smtp_lmtp_hop_parse(req->nexthop, &hop, &err) < 0) {
		log_warn("%s: %s", req->qid, err);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.5", err);
		free(err);
		return NULL;
	}
	if (hop.unix_path != NULL)
		c = session_try_unix(agent, req, hop.unix_path);
	else
		c = session_open_nexthop(agent, req, &hop.inet);
	smtp_lmtp_hop_free(&hop);
	return c;
}

struct smtp_conn *smtp_session_open(struct smtp_agent *agent,
    struct smtp_request *req)
{
	struct smtp_nexthop nh;
	struct smtp_conn *c;
	const char *domain = req->nrcpt > 0 ? addr_domain(req->rcpts[0].addr)
	    : NULL;
	char *err = NULL;

	if (agent->lmtp)
		return session_open_lmtp(agent, req);
	if (smtp_nexthop_parse(req->nexthop, domain, &nh, &err) < 0) {
		log_warn("%s: %s", req->qid, err);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.5", err);
		free(err);
		return NULL;
	}
	c = session_open_nexthop(agent, req, &nh);
	smtp_nexthop_free(&nh);
	return c;
}

int smtp_session_reset(struct smtp_agent *agent, struct smtp_conn *c)
{
	struct smtp_reply r;
	int ok;

	smtp_reply_init(&r);
	ok = session_command(c, "RSET", &r, agent->timeouts.helo) == 0
	    && r.code / 100 == 2;
	if (!ok && c->io_error == SMTP_IO_OK)
		log_warn("host %s rejected RSET: %s", c->peer,
		    sbuf_cstr(&r.text));
	smtp_reply_free(&r);
	return ok ? 0 : -1;
}

void smtp_session_quit(struct smtp_agent *agent, struct smtp_conn **cp)
{
	struct smtp_conn *c = *cp;
	struct smtp_reply r;

	if (c == NULL)
		return;
	/* A session that failed at the I/O level gets no QUIT: the peer
	 * is gone or out of step with us. */
	if (c->io_error == SMTP_IO_OK) {
		smtp_reply_init(&r);
		(void)session_command(c, "QUIT", &r, agent->timeouts.quit);
		smtp_reply_free(&r);
	}
	smtp_conn_free(cp);
}
