/*
 * STARTTLS (RFC 3207) for the delivery agent, through tlsproxy.
 *
 * The level comes from smtp_tls_policy_maps for the next hop, else from
 * smtp_tls_security_level. After STARTTLS is accepted the agent hands
 * its socket to tlsproxy (tlsproxy_start(), which blocks) and goes on
 * over the returned UNIX connection, which carries plaintext.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "deliver.h"
#include "log.h"
#include "smtp.h"
#include "tlsproxy_client.h"

/* Time allowed for tlsproxy's reply beyond the handshake deadline that
 * it enforces itself (tlsproxy_timeout). */
#define TLS_REPLY_SLACK_MS 5000

/* Defers every recipient without a result, with dsn 4.7.5. */
static void tls_defer(struct smtp_request *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tls_defer(struct smtp_request *req, const char *fmt, ...)
{
	char text[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", req->qid, text);
	smtp_request_fail_rest(req, DELIVER_DEFER, "4.7.5", text);
}

/* The smtp_tls_policy_maps key: the next hop as qmgr gave it, else the
 * recipient domain that an empty next hop stands for. */
static const char *tls_policy_key(const struct smtp_request *req)
{
	if (req->nexthop != NULL && req->nexthop[0] != '\0')
		return req->nexthop;
	if (req->nrcpt > 0 && addr_domain(req->rcpts[0].addr) != NULL)
		return addr_domain(req->rcpts[0].addr);
	return "";
}

/* Hands c's socket to tlsproxy. Returns 0 with c->fd replaced; -2 at
 * level may when it failed; else -1 with the recipients deferred. */
static int tls_handshake(struct smtp_conn *c, struct smtp_request *req,
    const struct tls_policy *policy)
{
	struct tlsproxy_request treq = {0};
	struct tls_summary s;
	const char *trust;
	int timeout_ms = (int)config_time("tlsproxy_timeout") * 1000 +
	    TLS_REPLY_SLACK_MS;
	int fd;

	treq.role = "client";
	treq.service = "smtp";
	treq.peer = c->relay;
	treq.server_name = c->host;
	treq.security_level = tls_level_name(policy->level);
	treq.match = policy->match;
	treq.ca_file = config_str("smtp_tls_CAfile");
	treq.protocols = policy->protocols;
	treq.ciphers = policy->ciphers;

	/* Bytes the server sent after its 220 are not part of TLS. */
	sbuf_reset(&c->in);
	fd = tlsproxy_start(".", &treq, c->fd, timeout_ms, &s);
	c->fd = fd;
	if (fd < 0) {
		/* tlsproxy closed the TCP connection: no QUIT is possible. */
		c->io_error = SMTP_IO_LOST;
		snprintf(c->io_detail, sizeof(c->io_detail), "%.*s",
		    (int)sizeof(c->io_detail) - 1, s.reason);
		if (policy->level == TLS_LEVEL_MAY) {
			log_info("%s: TLS with host %s failed: %s; retrying "
			    "without TLS", req->qid, c->peer, s.reason);
			return -2;
		}
		tls_defer(req, "TLS with host %s failed: %s", c->peer, s.reason);
		return -1;
	}

	snprintf(c->tls, sizeof(c->tls), "%s with cipher %s (%d/%d bits)",
	    s.protocol, s.cipher, s.cipher_bits, s.cipher_alg_bits);
	trust = s.verified ? "Verified" : "Untrusted";
	log_info("%s: %s TLS connection established to %s: %s%s", req->qid,
	    trust, c->relay, c->tls, s.resumed ? " (resumed)" : "");
	return 0;
}

int smtp_tls_starttls(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req)
{
	struct tls_policy policy;
	struct smtp_reply r;
	char *err = NULL;
	int rc;

	if (tls_policy_lookup(tls_policy_key(req), &policy, &err) < 0) {
		log_warn("%s: %s", req->qid, err);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.5", err);
		free(err);
		return -1;
	}
	if (policy.level == TLS_LEVEL_NONE ||
	    (policy.level == TLS_LEVEL_MAY && c->no_tls))
		return 0;
	if (!(c->caps & SMTP_CAP_STARTTLS)) {
		if (policy.level == TLS_LEVEL_MAY)
			return 0;
		tls_defer(req, "TLS is required, but was not offered by host "
		    "%s", c->peer);
		return -1;
	}

	smtp_reply_init(&r);
	if (smtp_conn_write(c, "STARTTLS\r\n", 10, agent->timeouts.helo) < 0 ||
	    smtp_conn_read_reply(c, &r, agent->timeouts.helo) < 0) {
		smtp_reply_free(&r);
		smtp_fail_io(c, req, "sending STARTTLS");
		return -1;
	}
	if (r.code != 220) {
		if (policy.level == TLS_LEVEL_MAY) {
			log_info("%s: host %s rejected STARTTLS: %s; continuing "
			    "without TLS", req->qid, c->peer,
			    sbuf_cstr(&r.text));
			smtp_reply_free(&r);
			return 0;
		}
		tls_defer(req, "TLS is required, but host %s refused to start "
		    "TLS: %s", c->peer, sbuf_cstr(&r.text));
		smtp_reply_free(&r);
		return -1;
	}
	smtp_reply_free(&r);

	rc = tls_handshake(c, req, &policy);
	return rc < 0 ? rc : 1;
}
