/*
 * Per-client connection limits: before the banner, anvil counts the new
 * connection under "SERVICE:ADDRESS" and returns the client's open
 * connections and its connections in the current anvil_rate_time_unit.
 * Over smtpd_client_connection_count_limit or
 * smtpd_client_connection_rate_limit the client gets 421 and the
 * session closes. As in Postfix, refused connections count towards the
 * rate too, so a client that keeps retrying stays refused.
 *
 * The check fails open: without an answer from anvil the client is let
 * in, and anvil_conn.c logs why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil_proto.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "smtpd.h"

void smtpd_limits_init(void)
{
	struct smtpd_settings *s = &smtpd_settings;
	const char *exceptions = config_str("smtpd_client_event_limit_exceptions");
	char *err = NULL;

	s->client_count_limit = config_int("smtpd_client_connection_count_limit");
	s->client_rate_limit = config_int("smtpd_client_connection_rate_limit");
	if (s->client_count_limit < 0 || s->client_rate_limit < 0)
		log_fatal("invalid smtpd_client_connection_count_limit %ld or "
		    "smtpd_client_connection_rate_limit %ld: use 0 (no limit) "
		    "or a positive number", s->client_count_limit,
		    s->client_rate_limit);
	/* TODO: Postfix also takes host names and "!" here; only addresses,
	 * networks, /file/name and type:table entries are supported. */
	if (exceptions[strspn(exceptions, " \t,")] == '\0')
		return;
	s->limit_exceptions = cidr_list_parse(exceptions, &err);
	if (s->limit_exceptions == NULL)
		log_fatal("invalid smtpd_client_event_limit_exceptions: %s; use "
		    "addresses and networks as in mynetworks",
		    err ? err : "parse error");
}

static void limits_ident(const struct smtpd_session *sess, char *ident,
    size_t size)
{
	snprintf(ident, size, "%s:%s", smtpd_settings.service_name, sess->addr);
}

/* Returns the 421 text when count or rate is over its limit, else NULL,
 * and logs the refusal. */
static const char *limits_exceeded(const struct smtpd_session *sess,
    long count, long rate)
{
	const struct smtpd_settings *s = &smtpd_settings;

	if (s->client_count_limit > 0 && count > s->client_count_limit) {
		if (log_ratelimit("smtpd-client-count-limit", 5, 60))
			log_warn("connection count limit %ld exceeded: %ld from "
			    "%s[%s] for service %s", s->client_count_limit,
			    count, sess->name, sess->addr, s->service_name);
		return "too many connections from";
	}
	if (s->client_rate_limit > 0 && rate > s->client_rate_limit) {
		if (log_ratelimit("smtpd-client-rate-limit", 5, 60))
			log_warn("connection rate limit %ld exceeded: %ld from "
			    "%s[%s] for service %s", s->client_rate_limit,
			    rate, sess->name, sess->addr, s->service_name);
		return "too many connection attempts from";
	}
	return NULL;
}

static void limits_reply_cb(void *arg, int status, long count, long rate)
{
	struct smtpd_session *sess = arg;
	const char *refusal;

	sess->anvil_call = NULL;
	if (status < 0) {
		smtpd_session_banner(sess);
		return;
	}
	sess->anvil_counted = 1;
	sess->anvil_generation = smtpd_anvil_generation();
	refusal = limits_exceeded(sess, count, rate);
	if (refusal == NULL) {
		smtpd_session_banner(sess);
		return;
	}
	smtpd_session_close_after(sess, "421 4.7.0 %s Error: %s %s",
	    smtpd_settings.myhostname, refusal, sess->addr);
}

int smtpd_limits_start(struct smtpd_session *sess)
{
	char ident[ANVIL_IDENT_MAX + 1];

	if (smtpd_settings.client_count_limit == 0 &&
	    smtpd_settings.client_rate_limit == 0)
		return 0;
	/* A table that cannot be read exempts no one. */
	if (cidr_list_match_str(smtpd_settings.limit_exceptions,
	    sess->addr) == 1)
		return 0;

	/* No banner yet and no input read until anvil replies. */
	sess->state = SMTPD_STATE_LOOKUP;
	bufferevent_disable(sess->bev, EV_READ);
	limits_ident(sess, ident, sizeof(ident));
	sess->anvil_call = smtpd_anvil_connect(ident, limits_reply_cb, sess);
	return 1;
}

void smtpd_limits_session_end(struct smtpd_session *sess)
{
	char ident[ANVIL_IDENT_MAX + 1];

	smtpd_anvil_cancel(&sess->anvil_call);
	if (!sess->anvil_counted)
		return;
	limits_ident(sess, ident, sizeof(ident));
	smtpd_anvil_disconnect(ident, sess->anvil_generation);
	sess->anvil_counted = 0;
}
