/*
 * The connection of one smtpd process to a private service: the
 * socket, the record decoder, the calls waiting for replies and their
 * timers. service_conn.h states the contract.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"
#include "service_conn.h"
#include "smtpd.h"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

unsigned service_conn_generation(const struct service_conn *conn)
{
	return conn->generation;
}

void service_call_forget(struct service_call *c)
{
	struct service_conn *conn = c->conn;

	if (c->prev)
		c->prev->next = c->next;
	else if (conn->calls == c)
		conn->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->timer)
		event_free(c->timer);
	c->prev = c->next = NULL;
	c->timer = NULL;
}

struct service_call *service_conn_find(struct service_conn *conn,
    const char *key)
{
	struct service_call *c;

	for (c = conn->calls; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

/* Closes the connection and fails every call still waiting. */
static void conn_disconnect(struct service_conn *conn, const char *why)
{
	int was_open = conn->bev != NULL;

	if (conn->bev) {
		bufferevent_free(conn->bev);
		conn->bev = NULL;
		conn->generation++;
	}
	attr_decoder_free(&conn->decoder);
	conn->ops->lost(why, was_open, conn->calls != NULL);
	while (conn->calls) {
		struct service_call *c = conn->calls;

		service_call_forget(c);
		conn->ops->call_failed(c, SERVICE_CALL_LOST);
	}
}

static void fail_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct service_conn *conn = arg;
	char why[64];

	snprintf(why, sizeof(why), "cannot connect to %s", conn->ops->name);
	conn_disconnect(conn, why);
}

static int conn_connect(struct service_conn *conn)
{
	const struct service_conn_ops *ops = conn->ops;
	char *path = ops->socket_path();
	int fd = iox_unix_connect(path, 1);

	if (fd < 0) {
		char key[64];

		snprintf(key, sizeof(key), "%s-connect", ops->log_key);
		if (log_ratelimit(key, 3, 60))
			log_warn("cannot connect to %s at %s: %m%s%s", ops->name,
			    path, ops->connect_note ? "; " : "",
			    ops->connect_note ? ops->connect_note : "");
		free(path);
		return -1;
	}
	free(path);
	conn->bev = bufferevent_socket_new(smtpd_event_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
	conn->decoder = attr_decoder_new();
	bufferevent_enable(conn->bev, EV_READ);
	return 0;
}

/* Encodes req into the output buffer and wipes the copy that held its
 * payload. */
static int conn_write(struct service_conn *conn, struct attrs *req)
{
	struct sbuf out;
	int r;

	sbuf_init(&out, ATTR_MAX_RECORD);
	r = attrs_encode(req, &out);
	if (r == 0)
		r = bufferevent_write(conn->bev, out.data, out.len);
	if (out.data)
		explicit_bzero(out.data, out.len);
	sbuf_free(&out);
	return r;
}

int service_conn_write(struct service_conn *conn, struct attrs *req)
{
	if (conn->bev == NULL)
		return -1;
	return conn_write(conn, req);
}

static void call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct service_call *c = arg;
	struct service_conn *conn = c->conn;

	service_call_forget(c);
	conn->ops->call_failed(c, SERVICE_CALL_TIMEOUT);
}

void service_call_start(struct service_conn *conn, struct service_call *c,
    const char *key, int timeout_ms, struct attrs *req)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	snprintf(c->key, sizeof(c->key), "%s", key);
	c->conn = conn;
	c->prev = NULL;
	c->timer = evtimer_new(smtpd_event_base, call_timeout_cb, c);
	evtimer_add(c->timer, &tv);
	c->next = conn->calls;
	if (conn->calls)
		conn->calls->prev = c;
	conn->calls = c;

	if ((conn->bev == NULL && conn_connect(conn) < 0) ||
	    conn_write(conn, req) < 0) {
		/* The callback must not run before the caller has stored
		 * the call, so the failure runs from the loop. */
		if (conn->fail_event == NULL)
			conn->fail_event = event_new(smtpd_event_base, -1, 0,
			    fail_event_cb, conn);
		event_active(conn->fail_event, 0, 0);
	}
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct service_conn *conn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;

	while (conn->bev == bev && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		struct attrs *rec = NULL;
		const char *err = NULL;
		size_t used = 0;
		int r = attr_decoder_feed(conn->decoder, v.iov_base, v.iov_len,
		    &used, &rec, &err);

		if (r < 0) {
			log_warn("malformed record from %s: %s", conn->ops->name,
			    err);
			conn_disconnect(conn, "malformed record");
			return;
		}
		evbuffer_drain(in, r == 1 ? used : v.iov_len);
		if (r == 1) {
			conn->ops->handle_record(rec);
			conn->ops->free_record(&rec);
		}
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct service_conn *conn = arg;
	char why[64];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		snprintf(why, sizeof(why), "%s closed the connection",
		    conn->ops->name);
		conn_disconnect(conn, why);
	} else {
		conn_disconnect(conn, strerror(errno ? errno : EIO));
	}
}
