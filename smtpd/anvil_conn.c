/*
 * The connection of one smtpd process to anvil: a non-blocking UNIX
 * socket on the event loop that carries the connect and disconnect
 * records of every session (lib/anvil_proto.h). Replies are matched to
 * calls by id.
 *
 * Any failure (no socket, a lost connection, no reply in time) ends the
 * call with a failure, and the caller lets the client in: a missing
 * anvil must never stop mail. master keeps anvil's listening socket
 * open while anvil restarts, so a request sent then waits in the
 * backlog for the new process or for the reply timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil_proto.h"
#include "attr.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"
#include "smtpd.h"

/* Milliseconds smtpd waits for anvil before it lets a client in
 * uncounted. anvil replies from memory, well under a millisecond when
 * healthy. The wait covers a restart by master
 * (service_restart_delay, 1 s by default). */
#define ANVIL_REPLY_TIMEOUT_MS 2000

struct smtpd_anvil_call {
	struct smtpd_anvil_call *prev, *next;
	unsigned long id;
	char ident[ANVIL_IDENT_MAX + 1];
	smtpd_anvil_cb cb;
	void *arg;
	struct event *timer;
};

static struct bufferevent *anvil_bev;
static struct attr_decoder *anvil_decoder;
static struct smtpd_anvil_call *call_list;
static unsigned anvil_generation;
static unsigned long anvil_next_id;
static struct event *fail_event;  /* runs failures outside of a call */

static void anvil_read_cb(struct bufferevent *bev, void *arg);
static void anvil_event_cb(struct bufferevent *bev, short what, void *arg);

unsigned smtpd_anvil_generation(void)
{
	return anvil_generation;
}

static void call_unlink(struct smtpd_anvil_call *c)
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

/* Runs c's callback and frees c. */
static void call_finish(struct smtpd_anvil_call *c, int status, long count,
    long rate)
{
	smtpd_anvil_cb cb = c->cb;
	void *arg = c->arg;

	call_unlink(c);
	free(c);
	cb(arg, status, count, rate);
}

static void anvil_log_failure(const char *why)
{
	if (log_ratelimit("smtpd-anvil", 3, 60))
		log_warn("anvil failed: %s; clients are not limited by "
		    "smtpd_client_connection_count_limit or "
		    "smtpd_client_connection_rate_limit until it is back", why);
}

/* Closes the connection and fails every call still waiting. */
static void anvil_disconnect(const char *why)
{
	if (anvil_bev) {
		bufferevent_free(anvil_bev);
		anvil_bev = NULL;
		anvil_generation++;
		if (log_ratelimit("smtpd-anvil-lost", 3, 60))
			log_info("lost the connection to anvil (%s); the "
			    "sessions counted on it are no longer counted", why);
	}
	attr_decoder_free(&anvil_decoder);
	if (call_list)
		anvil_log_failure(why);
	while (call_list)
		call_finish(call_list, -1, 0, 0);
}

static void fail_event_cb(evutil_socket_t fd, short what, void *arg)
{
	anvil_disconnect("cannot connect to anvil");
}

static int anvil_connect(void)
{
	char *path = xasprintf("%s/%s", smtpd_settings.queue_dir,
	    ANVIL_SOCKET_NAME);
	int fd = iox_unix_connect(path, 1);

	if (fd < 0) {
		if (log_ratelimit("smtpd-anvil-connect", 3, 60))
			log_warn("cannot connect to anvil at %s: %m; clients are "
			    "not limited per address", path);
		free(path);
		return -1;
	}
	free(path);
	anvil_bev = bufferevent_socket_new(smtpd_event_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (anvil_bev == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(anvil_bev, anvil_read_cb, NULL, anvil_event_cb, NULL);
	anvil_decoder = attr_decoder_new();
	bufferevent_enable(anvil_bev, EV_READ);
	return 0;
}

static int anvil_write(struct attrs *req)
{
	struct sbuf out;
	int r;

	sbuf_init(&out, ATTR_MAX_RECORD);
	r = attrs_encode(req, &out);
	if (r == 0)
		r = bufferevent_write(anvil_bev, out.data, out.len);
	sbuf_free(&out);
	return r;
}

void smtpd_anvil_disconnect(const char *ident, unsigned generation)
{
	struct attrs *req;

	/* Counts made on an earlier connection ended with it. */
	if (anvil_bev == NULL || generation != anvil_generation)
		return;
	req = attrs_new();
	attrs_add(req, ANVIL_ATTR_REQUEST, ANVIL_REQ_DISCONNECT);
	attrs_add(req, ANVIL_ATTR_IDENT, ident);
	anvil_write(req);
	attrs_free(&req);
}

/* Forgets c. anvil may still count its connect, so a disconnect
 * follows it; anvil handles records of one socket in order. */
static void call_abandon(struct smtpd_anvil_call *c)
{
	smtpd_anvil_disconnect(c->ident, anvil_generation);
	call_unlink(c);
	free(c);
}

static void call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_anvil_call *c = arg;
	smtpd_anvil_cb cb = c->cb;
	void *cb_arg = c->arg;

	anvil_log_failure("no reply within the timeout");
	call_abandon(c);
	cb(cb_arg, -1, 0, 0);
}

struct smtpd_anvil_call *smtpd_anvil_connect(const char *ident,
    smtpd_anvil_cb cb, void *arg)
{
	struct smtpd_anvil_call *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {ANVIL_REPLY_TIMEOUT_MS / 1000,
	    (ANVIL_REPLY_TIMEOUT_MS % 1000) * 1000};
	struct attrs *req = attrs_new();

	snprintf(c->ident, sizeof(c->ident), "%s", ident);
	c->id = ++anvil_next_id;
	c->cb = cb;
	c->arg = arg;
	c->timer = evtimer_new(smtpd_event_base, call_timeout_cb, c);
	evtimer_add(c->timer, &tv);
	c->next = call_list;
	if (call_list)
		call_list->prev = c;
	call_list = c;

	attrs_add(req, ANVIL_ATTR_REQUEST, ANVIL_REQ_CONNECT);
	attrs_addf(req, ANVIL_ATTR_ID, "%lu", c->id);
	attrs_add(req, ANVIL_ATTR_IDENT, c->ident);
	if ((anvil_bev == NULL && anvil_connect() < 0) ||
	    anvil_write(req) < 0) {
		/* The callback must not run before the caller has stored
		 * the call, so the failure runs from the loop. */
		if (fail_event == NULL)
			fail_event = event_new(smtpd_event_base, -1, 0,
			    fail_event_cb, NULL);
		event_active(fail_event, 0, 0);
	}
	attrs_free(&req);
	return c;
}

void smtpd_anvil_cancel(struct smtpd_anvil_call **call)
{
	if (*call == NULL)
		return;
	call_abandon(*call);
	*call = NULL;
}

static void anvil_handle_record(const struct attrs *rec)
{
	const char *status = attrs_get(rec, ANVIL_ATTR_STATUS);
	long id = attrs_get_long(rec, ANVIL_ATTR_ID, -1);
	struct smtpd_anvil_call *c;

	for (c = call_list; c; c = c->next)
		if ((long)c->id == id)
			break;
	if (c == NULL)
		return;  /* the call timed out or its session ended */
	if (status == NULL || strcmp(status, ANVIL_STATUS_OK) != 0) {
		anvil_log_failure(attrs_get(rec, ANVIL_ATTR_REASON) ?
		    attrs_get(rec, ANVIL_ATTR_REASON) : "invalid reply");
		call_finish(c, -1, 0, 0);
		return;
	}
	call_finish(c, 0, attrs_get_long(rec, ANVIL_ATTR_COUNT, 0),
	    attrs_get_long(rec, ANVIL_ATTR_RATE, 0));
}

static void anvil_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;

	while (anvil_bev == bev && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		struct attrs *rec = NULL;
		const char *err = NULL;
		size_t used = 0;
		int r = attr_decoder_feed(anvil_decoder, v.iov_base, v.iov_len,
		    &used, &rec, &err);

		if (r < 0) {
			log_warn("malformed record from anvil: %s", err);
			anvil_disconnect("malformed record");
			return;
		}
		evbuffer_drain(in, r == 1 ? used : v.iov_len);
		if (r == 1) {
			anvil_handle_record(rec);
			attrs_free(&rec);
		}
	}
}

static void anvil_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_EOF)
		anvil_disconnect("anvil closed the connection");
	else
		anvil_disconnect(strerror(errno ? errno : EIO));
}
