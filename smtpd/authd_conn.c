/*
 * The connection of one smtpd process to authd (service_conn.h), which
 * carries the requests of every session, matched to their replies by
 * session id (lib/authd_client.h). A call that fails or gets no reply in
 * time ends with a NULL reply, which auth.c turns into a temporary
 * failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "authd_client.h"
#include "config.h"
#include "log.h"
#include "sbuf.h"
#include "service_conn.h"
#include "smtpd.h"

/* Seconds smtpd waits for one reply of authd. authd replies to a failed
 * login only after authd_failure_delay times the failures counted, so
 * this limit stays well above a few such delays. */
#define AUTHD_REPLY_TIMEOUT_SEC 30

_Static_assert(AUTHD_SESSION_MAX <= SERVICE_CALL_KEY_MAX,
    "an authd session id must fit in a call key");

struct smtpd_authd_call {
	struct service_call base;  /* first: the key is the session id */
	smtpd_authd_cb cb;
	void *arg;
};

static char *authd_socket_path(void);
static void authd_handle_record(struct attrs *rec);
static void authd_lost(const char *why, int was_open, int calls_waiting);
static void authd_call_failed(struct service_call *base,
    enum service_call_failure failure);

static const struct service_conn_ops authd_ops = {
	.name = "authd",
	.log_key = "smtpd-authd",
	.connect_note = NULL,
	.socket_path = authd_socket_path,
	.handle_record = authd_handle_record,
	.free_record = authd_attrs_free_wipe,
	.lost = authd_lost,
	.call_failed = authd_call_failed,
};

static struct service_conn authd_conn = {.ops = &authd_ops};

unsigned smtpd_authd_generation(void)
{
	return service_conn_generation(&authd_conn);
}

static char *authd_socket_path(void)
{
	return xasprintf("%s/private/%s", smtpd_settings.queue_dir,
	    config_str("smtpd_sasl_path"));
}

/* Runs c's callback with r and frees c; c is already forgotten. */
static void call_finish(struct smtpd_authd_call *c,
    const struct authd_reply *r)
{
	smtpd_authd_cb cb = c->cb;
	void *arg = c->arg;

	free(c);
	cb(arg, r);
}

static void authd_lost(const char *why, int was_open, int calls_waiting)
{
	if (calls_waiting && log_ratelimit("smtpd-authd", 3, 60))
		log_warn("authd connection failed: %s; pending AUTH "
		    "exchanges get a temporary failure", why);
}

static void authd_call_failed(struct service_call *base,
    enum service_call_failure failure)
{
	struct smtpd_authd_call *c = (struct smtpd_authd_call *)base;

	/* Replies are matched by session id, so a late reply of this
	 * exchange is dropped once the call is gone. */
	if (failure == SERVICE_CALL_TIMEOUT)
		log_warn("authd did not reply within %d s to exchange %s",
		    AUTHD_REPLY_TIMEOUT_SEC, c->base.key);
	call_finish(c, NULL);
}

struct smtpd_authd_call *smtpd_authd_send(struct attrs *req,
    const char *session, smtpd_authd_cb cb, void *arg)
{
	struct smtpd_authd_call *c = xcalloc(1, sizeof(*c));

	c->cb = cb;
	c->arg = arg;
	service_call_start(&authd_conn, &c->base, session,
	    AUTHD_REPLY_TIMEOUT_SEC * 1000, req);
	authd_attrs_free_wipe(&req);
	return c;
}

void smtpd_authd_cancel(struct smtpd_authd_call **call, int send_abort)
{
	struct smtpd_authd_call *c = *call;

	if (c == NULL)
		return;
	if (send_abort) {
		struct attrs *req = authd_request_abort(c->base.key);

		service_conn_write(&authd_conn, req);
		authd_attrs_free_wipe(&req);
	}
	service_call_forget(&c->base);
	free(c);
	*call = NULL;
}

static void authd_handle_record(struct attrs *rec)
{
	struct authd_reply reply;
	const char *err = NULL;
	struct smtpd_authd_call *c;

	if (authd_reply_parse(rec, &reply, &err) < 0) {
		log_warn("invalid reply from authd: %s", err);
		return;
	}
	c = (struct smtpd_authd_call *)service_conn_find(&authd_conn,
	    reply.session);
	if (c) {
		service_call_forget(&c->base);
		call_finish(c, &reply);
	}
	authd_reply_clear(&reply);
}
