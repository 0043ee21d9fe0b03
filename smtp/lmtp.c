/*
 * LMTP mode (RFC 2033): next hops of the form "unix:PATH" and
 * "inet:HOST:PORT", and the replies after the end of data, one for each
 * recipient that RCPT accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "netaddr.h"
#include "smtp.h"

/* No port is assigned to LMTP over TCP (RFC 2033 section 5); Postfix
 * and Dovecot use 24 by convention. */
#define LMTP_DEFAULT_PORT "24"

/* 1 when s is a decimal port number in 1..65535. */
static int lmtp_port_valid(const char *s)
{
	long value = 0;

	if (*s == '\0' || strlen(s) > 5)
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		value = value * 10 + (*p - '0');
	}
	return value >= 1 && value <= 65535;
}

/* Parses "host", "host:port", "[host]" or "[host]:port" into out->inet. */
static int lmtp_hop_parse_inet(const char *text, struct smtp_lmtp_hop *out,
    char **err_out)
{
	char *host = NULL;
	char *port = NULL;
	int bracketed = 0;

	if (hostport_split(text, &host, &port, &bracketed) < 0) {
		*err_out = xasprintf("malformed LMTP next hop \"%s\"", text);
		return -1;
	}
	if (host == NULL || *host == '\0') {
		*err_out = xasprintf("LMTP next hop \"%s\" has no host", text);
		goto fail;
	}
	if (port != NULL && !lmtp_port_valid(port)) {
		*err_out = xasprintf("LMTP next hop \"%s\" has an invalid port",
		    text);
		goto fail;
	}
	out->inet.host = host;
	snprintf(out->inet.port, sizeof(out->inet.port), "%s",
	    port != NULL ? port : LMTP_DEFAULT_PORT);
	/* LMTP never looks up MX records, with or without brackets. */
	out->inet.bracketed = 1;
	free(port);
	return 0;

fail:
	free(host);
	free(port);
	return -1;
}

int smtp_lmtp_hop_parse(const char *text, struct smtp_lmtp_hop *out,
    char **err_out)
{
	memset(out, 0, sizeof(*out));
	if (text == NULL || *text == '\0') {
		*err_out = xstrdup("empty LMTP next hop: give the transport "
		    "as lmtp:unix:PATH or lmtp:inet:HOST:PORT");
		return -1;
	}
	if (strncmp(text, "unix:", 5) == 0) {
		if (text[5] == '\0') {
			*err_out = xasprintf("LMTP next hop \"%s\" has no "
			    "socket path", text);
			return -1;
		}
		out->unix_path = xstrdup(text + 5);
		return 0;
	}
	if (strncmp(text, "inet:", 5) == 0)
		text += 5;
	return lmtp_hop_parse_inet(text, out, err_out);
}

void smtp_lmtp_hop_free(struct smtp_lmtp_hop *hop)
{
	free(hop->unix_path);
	hop->unix_path = NULL;
	smtp_nexthop_free(&hop->inet);
}

/* Sets the result of r from its reply after the end of data. */
static void lmtp_rcpt_reply(const struct smtp_conn *c, struct smtp_rcpt *r,
    const struct smtp_reply *reply)
{
	char dsn[16];

	smtp_reply_dsn(reply, dsn, sizeof(dsn));
	if (reply->code / 100 == 2) {
		smtp_rcpt_result(r, DELIVER_SENT, dsn, "%s",
		    sbuf_cstr(&reply->text));
		/* A server that offers DSN got the NOTIFY request and
		 * sends the success notice itself (RFC 3461). */
		r->dsn_action = (c->caps & SMTP_CAP_DSN) ? "none"
		    : "delivered";
		return;
	}
	smtp_rcpt_result(r, reply->code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER,
	    dsn, "host %s said: %s (in reply to end of DATA command)",
	    c->peer, sbuf_cstr(&reply->text));
	free(r->remote_mta);
	free(r->remote_reply);
	r->remote_mta = xstrdup(c->host);
	r->remote_reply = xstrdup(sbuf_cstr(&reply->text));
}

int smtp_lmtp_data_replies(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		/* The server replies for exactly the recipients it
		 * accepted, in RCPT order (RFC 2033 section 4.2). */
		if (r->skip || !r->accepted)
			continue;
		if (smtp_conn_read_reply(c, reply,
		    agent->timeouts.data_done) < 0) {
			smtp_fail_io(c, req, "sending end of data -- message "
			    "may be sent more than once");
			return 0;
		}
		lmtp_rcpt_reply(c, r, reply);
	}
	return 1;
}
