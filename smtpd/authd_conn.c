/*
 * The connection of one smtpd process to authd: a non-blocking UNIX
 * socket on the event loop that carries the requests of every session,
 * matched to their replies by session id (lib/authd_client.h).
 *
 * The connection is opened on the first request and reopened after it
 * is lost. master keeps authd's listening socket open, so a connect
 * succeeds even while authd restarts. The request then waits in the
 * backlog, and the per-request timer turns a long wait into a temporary
 * failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "authd_client.h"
#include "config.h"
#include "log.h"
#include "sbuf.h"
#include "smtpd.h"

/* Seconds smtpd waits for one reply of authd. authd replies to a failed
 * login only after authd_failure_delay times the failures counted, so
 * this limit stays well above a few such delays. */
#define AUTHD_REPLY_TIMEOUT_SEC 30

struct smtpd_authd_call {
	struct smtpd_authd_call *prev, *next;
	char session[AUTHD_SESSION_MAX + 1];
	smtpd_authd_cb cb;
	void *arg;
	struct event *timer;
};

static struct bufferevent *authd_bev;
static struct attr_decoder *authd_decoder;
static struct smtpd_authd_call *call_list;
static unsigned authd_generation;
static struct event *fail_event;  /* runs failures outside of a call */

static void authd_read_cb(struct bufferevent *bev, void *arg);
static void authd_event_cb(struct bufferevent *bev, short what, void *arg);

unsigned smtpd_authd_generation(void)
{
	return authd_generation;
}

static void call_unlink(struct smtpd_authd_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		call_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->timer)
		event_free(c->timer);
	c->prev = c->next = NULL;
	c->timer = NULL;
}

/* Runs c's callback with r and frees c. */
static void call_finish(struct smtpd_authd_call *c,
    const struct authd_reply *r)
{
	smtpd_authd_cb cb = c->cb;
	void *arg = c->arg;

	call_unlink(c);
	free(c);
	cb(arg, r);
}

/* Closes the connection and fails every call still waiting. */
static void authd_disconnect(const char *why)
{
	if (authd_bev) {
		bufferevent_free(authd_bev);
		authd_bev = NULL;
		authd_generation++;
	}
	attr_decoder_free(&authd_decoder);
	if (call_list && log_ratelimit("smtpd-authd", 3, 60))
		log_warn("authd connection failed: %s; pending AUTH "
		    "exchanges get a temporary failure", why);
	while (call_list)
		call_finish(call_list, NULL);
}

static void fail_event_cb(evutil_socket_t fd, short what, void *arg)
{
	authd_disconnect("cannot connect to authd");
}

static int authd_connect(void)
{
	struct sockaddr_un sun;
	const char *queue_dir = smtpd_settings.queue_dir;
	int n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s",
	    queue_dir, config_str("smtpd_sasl_path"));
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		log_error("authd socket path under %s is too long", queue_dir);
		return -1;
	}
	authd_bev = bufferevent_socket_new(smtpd_event_base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (authd_bev == NULL)
		return -1;
	bufferevent_setcb(authd_bev, authd_read_cb, NULL, authd_event_cb, NULL);
	if (bufferevent_socket_connect(authd_bev, (struct sockaddr *)&sun,
	    sizeof(sun)) < 0) {
		if (log_ratelimit("smtpd-authd-connect", 3, 60))
			log_warn("cannot connect to authd at %s: %m",
			    sun.sun_path);
		bufferevent_free(authd_bev);
		authd_bev = NULL;
		return -1;
	}
	authd_decoder = attr_decoder_new();
	bufferevent_enable(authd_bev, EV_READ);
	return 0;
}

/* Encodes req into the output buffer and wipes the copies that held
 * its payload. */
static int authd_write(struct attrs *req)
{
	struct sbuf out;
	int r;

	sbuf_init(&out, ATTR_MAX_RECORD);
	r = attrs_encode(req, &out);
	if (r == 0)
		r = bufferevent_write(authd_bev, out.data, out.len);
	if (out.data)
		explicit_bzero(out.data, out.len);
	sbuf_free(&out);
	return r;
}

static void call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_authd_call *c = arg;

	log_warn("authd did not reply within %d s to exchange %s",
	    AUTHD_REPLY_TIMEOUT_SEC, c->session);
	/* Replies are matched by session id, so a late reply of this
	 * exchange is dropped once the call is gone. */
	call_finish(c, NULL);
}

struct smtpd_authd_call *smtpd_authd_send(struct attrs *req,
    const char *session, smtpd_authd_cb cb, void *arg)
{
	struct smtpd_authd_call *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {AUTHD_REPLY_TIMEOUT_SEC, 0};

	snprintf(c->session, sizeof(c->session), "%s", session);
	c->cb = cb;
	c->arg = arg;
	c->timer = evtimer_new(smtpd_event_base, call_timeout_cb, c);
	evtimer_add(c->timer, &tv);
	c->next = call_list;
	if (call_list)
		call_list->prev = c;
	call_list = c;

	if ((authd_bev == NULL && authd_connect() < 0) ||
	    authd_write(req) < 0) {
		/* The callback must not run before the caller has stored
		 * the call, so the failure runs from the loop. */
		if (fail_event == NULL)
			fail_event = event_new(smtpd_event_base, -1, 0,
			    fail_event_cb, NULL);
		event_active(fail_event, 0, 0);
	}
	authd_attrs_free_wipe(&req);
	return c;
}

void smtpd_authd_cancel(struct smtpd_authd_call **call, int send_abort)
{
	struct smtpd_authd_call *c = *call;

	if (c == NULL)
		return;
	if (send_abort && authd_bev) {
		struct attrs *req = authd_request_abort(c->session);

		authd_write(req);
		authd_attrs_free_wipe(&req);
	}
	call_unlink(c);
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
	for (c = call_list; c; c = c->next)
		if (strcmp(c->session, reply.session) == 0)
			break;
	if (c)
		call_finish(c, &reply);
	authd_reply_clear(&reply);
}

static void authd_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;

	while (authd_bev == bev && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		struct attrs *rec = NULL;
		const char *err = NULL;
		size_t used = 0;
		int r = attr_decoder_feed(authd_decoder, v.iov_base, v.iov_len,
		    &used, &rec, &err);

		if (r < 0) {
			log_warn("malformed record from authd: %s", err);
			authd_disconnect("malformed record");
			return;
		}
		evbuffer_drain(in, r == 1 ? used : v.iov_len);
		if (r == 1) {
			authd_handle_record(rec);
			authd_attrs_free_wipe(&rec);
		}
	}
}

static void authd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		authd_disconnect("authd closed the connection");
	else
		authd_disconnect(strerror(errno ? errno : EIO));
}
