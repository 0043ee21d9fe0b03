/*
 * SMTP AUTH (RFC 4954). smtpd checks the command and its syntax itself
 * and passes the SASL exchange to authd (authd_conn.c), the only
 * process that reads the password database. While authd works on a request the session waits in
 * SMTPD_STATE_AUTH with reading disabled, and other sessions go on.
 *
 * AUTH payloads are never logged: a log line names the mechanism, the
 * client and, after success, the user.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "authd_client.h"
#include "config.h"
#include "log.h"
#include "sbuf.h"
#include "smtpd.h"

/* Seconds a mechanism list from authd is reused. */
#define MECHANISMS_CACHE_SEC 300

struct smtpd_auth {
	struct smtpd_session *sess;
	struct smtpd_authd_call *call;        /* request waiting for authd */
	char id[AUTHD_SESSION_MAX + 1];       /* exchange id at authd */
	char mechanism[AUTHD_MECHANISM_MAX + 1];
	int ehlo;            /* fetching the mechanism list for EHLO */
	int awaiting_client; /* 334 sent: the next line is a response */
};

static struct {
	int enable;
	int tls_only;
	int broken_clients;
	int authenticated_header;
} auth_settings;

/* Mechanism lists from authd, index 1 for sessions with TLS. */
static struct {
	char *list;
	unsigned generation;
	time_t fetched;
} mech_cache[2];

static unsigned exchange_counter;

void smtpd_auth_init(void)
{
	auth_settings.enable = config_bool("smtpd_sasl_auth_enable");
	auth_settings.tls_only = config_bool("smtpd_tls_auth_only");
	auth_settings.broken_clients = config_bool("broken_sasl_auth_clients");
	auth_settings.authenticated_header =
	    config_bool("smtpd_sasl_authenticated_header");
}

const char *smtpd_protocol_name(const struct smtpd_session *sess)
{
	if (!sess->esmtp)
		return "SMTP";
	if (sess->tls_active)
		return sess->sasl_user ? "ESMTPSA" : "ESMTPS";
	return sess->sasl_user ? "ESMTPA" : "ESMTP";
}

int smtpd_auth_header_names_user(void)
{
	return auth_settings.authenticated_header;
}

/* 1 when AUTH may be used in this session at all. */
static int auth_allowed(const struct smtpd_session *sess)
{
	return auth_settings.enable &&
	    (sess->tls_active || !auth_settings.tls_only);
}

static const char *mech_cached(const struct smtpd_session *sess)
{
	int enc = sess->tls_active ? 1 : 0;

	if (mech_cache[enc].list == NULL ||
	    mech_cache[enc].generation != smtpd_authd_generation() ||
	    time(NULL) - mech_cache[enc].fetched > MECHANISMS_CACHE_SEC)
		return NULL;
	return mech_cache[enc].list;
}

/* Copies list into out without NTLM, which is never offered. */
static void mech_filter(const char *list, struct sbuf *out)
{
	size_t n;
	char **names = str_split(list, " ", &n);

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(names[i], "NTLM") == 0)
			continue;
		if (out->len)
			sbuf_putc(out, ' ');
		sbuf_puts(out, names[i]);
	}
	free(names);
}

static struct smtpd_auth *auth_new(struct smtpd_session *sess)
{
	struct smtpd_auth *a = xcalloc(1, sizeof(*a));

	a->sess = sess;
	snprintf(a->id, sizeof(a->id), "s%u.%u", sess->id, ++exchange_counter);
	sess->auth = a;
	return a;
}

static void auth_free(struct smtpd_session *sess, int send_abort)
{
	struct smtpd_auth *a = sess->auth;

	if (a == NULL)
		return;
	smtpd_authd_cancel(&a->call, send_abort);
	free(a);
	sess->auth = NULL;
}

/* Stops reading while authd works on a request of the session. */
static void auth_wait(struct smtpd_session *sess)
{
	sess->state = SMTPD_STATE_AUTH;
	bufferevent_disable(sess->bev, EV_READ);
}

static void mechanisms_cb(void *arg, const struct authd_reply *r)
{
	struct smtpd_session *sess = arg;
	int enc = sess->tls_active ? 1 : 0;

	sess->auth->call = NULL;
	auth_free(sess, 0);
	if (r && r->result == AUTHD_RESULT_OK && r->mechanisms) {
		struct sbuf list;

		sbuf_init(&list, 1024);
		mech_filter(r->mechanisms, &list);
		free(mech_cache[enc].list);
		mech_cache[enc].list = xstrdup(list.data ? list.data : "");
		mech_cache[enc].generation = smtpd_authd_generation();
		mech_cache[enc].fetched = time(NULL);
		sbuf_free(&list);
	} else if (log_ratelimit("smtpd-authd-mechanisms", 3, 60)) {
		log_warn("no mechanism list from authd; AUTH is not offered "
		    "to %s[%s]", sess->name, sess->addr);
	}
	if (sess->state == SMTPD_STATE_CLOSING)
		return;
	smtpd_ehlo_finish(sess);
	if (sess->count_ok[SMTPD_CMD_EHLO] < 0xffff)
		sess->count_ok[SMTPD_CMD_EHLO]++;
	smtpd_session_resume(sess);
}

int smtpd_auth_ehlo_prepare(struct smtpd_session *sess)
{
	struct smtpd_auth *a;

	if (!auth_allowed(sess) || sess->sasl_user || mech_cached(sess))
		return 0;
	a = auth_new(sess);
	a->ehlo = 1;
	a->call = smtpd_authd_send(authd_request_mechanisms(a->id,
	    sess->tls_active), a->id, mechanisms_cb, sess);
	auth_wait(sess);
	return 1;
}

void smtpd_auth_ehlo_lines(struct smtpd_session *sess)
{
	const char *list;

	/* RFC 4954 4: AUTH is not offered again after a successful one. */
	if (!auth_allowed(sess) || sess->sasl_user)
		return;
	list = mech_cached(sess);
	if (list == NULL || *list == '\0')
		return;
	smtpd_reply(sess, "250-AUTH %s", list);
	if (auth_settings.broken_clients)
		smtpd_reply(sess, "250-AUTH=%s", list);
}

/* 1 when s is base64 (RFC 4648 section 4) with padding, or empty. */
int smtpd_base64_valid(const char *s)
{
	size_t len = strlen(s), pad = 0;

	if (len % 4 != 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '=') {
			if (i < len - 2)
				return 0;
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return 0;
	}
	return 1;
}

/* Ends the exchange with a failure reply and counts the error. */
static void auth_fail(struct smtpd_session *sess, int send_abort,
    const char *reply)
{
	int waited = sess->state == SMTPD_STATE_AUTH;

	auth_free(sess, send_abort);
	smtpd_reply(sess, "%s", reply);
	if (waited)
		sess->state = SMTPD_STATE_COMMAND;
	/* Called from the command reader itself, the session goes on
	 * reading by itself; after waiting for authd it must resume. */
	if (!smtpd_session_error(sess) && waited)
		smtpd_session_resume(sess);
}

static void auth_success(struct smtpd_session *sess, const char *user)
{
	char clean[256];

	str_sanitize(clean, sizeof(clean), user, strlen(user));
	sess->sasl_user = xstrdup(clean);
	sess->sasl_method = xstrdup(sess->auth->mechanism);
	log_info("%s[%s]: sasl_method=%s, sasl_username=%s", sess->name,
	    sess->addr, sess->sasl_method, sess->sasl_user);
	auth_free(sess, 0);
	if (sess->count_ok[SMTPD_CMD_AUTH] < 0xffff)
		sess->count_ok[SMTPD_CMD_AUTH]++;
	smtpd_reply(sess, "235 2.7.0 Authentication successful");
	smtpd_session_resume(sess);
}

static void exchange_cb(void *arg, const struct authd_reply *r)
{
	struct smtpd_session *sess = arg;
	struct smtpd_auth *a = sess->auth;

	a->call = NULL;
	if (sess->state == SMTPD_STATE_CLOSING) {
		auth_free(sess, 0);
		return;
	}
	if (r == NULL) {
		log_warn("%s[%s]: SASL %s authentication failed: authd "
		    "unavailable", sess->name, sess->addr, a->mechanism);
		auth_fail(sess, 0, "454 4.7.0 Temporary authentication failure");
		return;
	}
	switch (r->result) {
	case AUTHD_RESULT_CONTINUE:
		a->awaiting_client = 1;
		smtpd_reply(sess, "334 %s", r->challenge ? r->challenge : "");
		smtpd_session_resume(sess);
		return;
	case AUTHD_RESULT_OK:
		auth_success(sess, r->user ? r->user : "");
		return;
	default:
		log_warn("%s[%s]: SASL %s authentication failed: %s",
		    sess->name, sess->addr, a->mechanism,
		    r->reason ? r->reason : authd_failure_name(r->failure));
		auth_fail(sess, 0, authd_failure_smtp_reply(r));
		return;
	}
}

/* Checks whether AUTH may start now. Returns NULL, or the reply. */
static const char *auth_precheck(const struct smtpd_session *sess)
{
	if (!auth_settings.enable)
		return "503 5.5.1 Error: authentication not enabled";
	if (!sess->esmtp)
		return "503 5.5.1 Error: send EHLO first";
	if (sess->sasl_user)
		return "503 5.5.1 Error: already authenticated";
	if (sess->env)
		return "503 5.5.1 Error: MAIL transaction in progress";
	if (!auth_allowed(sess))
		return "538 5.7.11 Encryption required for requested "
		    "authentication mechanism";
	return NULL;
}

/* Checks the mechanism against the list offered, when one is known. */
static int mechanism_offered(const struct smtpd_session *sess,
    const char *mech)
{
	const char *list = mech_cached(sess);
	size_t n;
	char **names;
	int found = 0;

	if (strcasecmp(mech, "NTLM") == 0)
		return 0;
	if (list == NULL)
		return 1;  /* authd decides */
	names = str_split(list, " ", &n);
	for (size_t i = 0; i < n && !found; i++)
		found = strcasecmp(names[i], mech) == 0;
	free(names);
	return found;
}

void smtpd_auth_command(struct smtpd_session *sess, const char *args)
{
	const char *reply = auth_precheck(sess);
	char mech[AUTHD_MECHANISM_MAX + 2];
	const char *initial = NULL;
	size_t mech_len = strcspn(args, " \t");
	struct smtpd_auth *a;

	if (reply)
		goto fail;
	initial = args + mech_len;
	initial += strspn(initial, " \t");
	if (mech_len == 0 || strpbrk(initial, " \t")) {
		reply = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
		goto fail;
	}
	if (mech_len > AUTHD_MECHANISM_MAX) {
		reply = "504 5.5.4 Error: unsupported authentication mechanism";
		goto fail;
	}
	memcpy(mech, args, mech_len);
	mech[mech_len] = '\0';
	if (!mechanism_offered(sess, mech)) {
		reply = "504 5.5.4 Error: unsupported authentication mechanism";
		goto fail;
	}
	if (*initial == '\0') {
		initial = NULL;
	} else if (strcmp(initial, "*") == 0) {
		reply = "501 5.7.0 Error: authentication cancelled";
		goto fail;
	} else if (strcmp(initial, "=") != 0 && !smtpd_base64_valid(initial)) {
		reply = "501 5.5.2 Error: invalid base64 data";
		goto fail;
	}

	a = auth_new(sess);
	for (size_t i = 0; i <= mech_len; i++)
		a->mechanism[i] = (char)toupper((unsigned char)mech[i]);
	a->call = smtpd_authd_send(authd_request_start(a->id, a->mechanism,
	    initial, sess->addr, sess->tls_active), a->id, exchange_cb, sess);
	auth_wait(sess);
	return;

fail:
	smtpd_reply(sess, "%s", reply);
	smtpd_session_error(sess);
}

int smtpd_auth_wants_line(const struct smtpd_session *sess)
{
	return sess->auth != NULL && sess->auth->awaiting_client;
}

void smtpd_auth_line(struct smtpd_session *sess, const char *line)
{
	struct smtpd_auth *a = sess->auth;

	a->awaiting_client = 0;
	/* RFC 4954 4: "*" cancels the exchange. */
	if (strcmp(line, "*") == 0) {
		auth_fail(sess, 1, "501 5.7.0 Error: authentication cancelled");
		return;
	}
	if (!smtpd_base64_valid(line)) {
		auth_fail(sess, 1, "501 5.5.2 Error: invalid base64 data");
		return;
	}
	a->call = smtpd_authd_send(authd_request_step(a->id, line), a->id,
	    exchange_cb, sess);
	auth_wait(sess);
}

void smtpd_auth_line_too_long(struct smtpd_session *sess)
{
	sess->auth->awaiting_client = 0;
	auth_fail(sess, 1, "500 5.5.6 Authentication exchange line is too long");
}

void smtpd_auth_session_free(struct smtpd_session *sess)
{
	auth_free(sess, 1);
	free(sess->sasl_user);
	free(sess->sasl_method);
	sess->sasl_user = sess->sasl_method = NULL;
}
