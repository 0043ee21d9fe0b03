/*
 * One smtpd connection to anvil: decodes records, updates the counters
 * and writes replies in request order. The connection's id keys the
 * counts it made, which end when it closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil.h"
#include "anvil_proto.h"
#include "attr.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"

/* Bytes of unread replies after which anvil gives up on a caller. */
#define CONN_OUTPUT_MAX (1024 * 1024)

struct anvil_conn {
	struct bufferevent *bev;
	struct attr_decoder *decoder;
	unsigned long id;
};

struct anvil_table *anvil_counts;

static size_t conn_total;
static unsigned long conn_next_id = 1;

size_t anvil_conn_count(void)
{
	return conn_total;
}

static void conn_free(struct anvil_conn *c)
{
	anvil_table_drop_caller(anvil_counts, c->id);
	attr_decoder_free(&c->decoder);
	bufferevent_free(c->bev);
	free(c);
	conn_total--;
}

static void conn_send(struct anvil_conn *c, struct attrs *reply)
{
	struct sbuf out;

	sbuf_init(&out, ATTR_MAX_RECORD);
	if (attrs_encode(reply, &out) == 0)
		bufferevent_write(c->bev, out.data, out.len);
	sbuf_free(&out);
}

static void conn_connect(struct anvil_conn *c, const struct attrs *req,
    const char *ident)
{
	const char *id = attrs_get(req, ANVIL_ATTR_ID);
	struct attrs *reply = attrs_new();
	long count = 0, rate = 0;

	attrs_add(reply, ANVIL_ATTR_ID, id ? id : "");
	if (anvil_table_connect(anvil_counts, ident, c->id, iox_now_ms(),
	    &count, &rate) < 0) {
		if (log_ratelimit("anvil-full", 3, 60))
			log_warn("table full with %zu clients; not counting %s",
			    anvil_table_size(anvil_counts), ident);
		attrs_add(reply, ANVIL_ATTR_STATUS, ANVIL_STATUS_FAIL);
		attrs_add(reply, ANVIL_ATTR_REASON, "table full");
	} else {
		attrs_add(reply, ANVIL_ATTR_STATUS, ANVIL_STATUS_OK);
		attrs_add_long(reply, ANVIL_ATTR_COUNT, count);
		attrs_add_long(reply, ANVIL_ATTR_RATE, rate);
	}
	conn_send(c, reply);
	attrs_free(&reply);
}

/* Handles one record. Returns 0, or -1 when the caller breaks the
 * protocol and the connection should close. */
static int conn_handle(struct anvil_conn *c, const struct attrs *req)
{
	const char *request = attrs_get(req, ANVIL_ATTR_REQUEST);
	const char *ident = attrs_get(req, ANVIL_ATTR_IDENT);

	if (request == NULL || ident == NULL ||
	    strlen(ident) > ANVIL_IDENT_MAX) {
		log_warn("connection %lu: record without a request or with a "
		    "missing or over-long ident", c->id);
		return -1;
	}
	if (strcmp(request, ANVIL_REQ_CONNECT) == 0) {
		conn_connect(c, req, ident);
		return 0;
	}
	if (strcmp(request, ANVIL_REQ_DISCONNECT) == 0) {
		anvil_table_disconnect(anvil_counts, ident, c->id);
		return 0;
	}
	log_warn("connection %lu: unknown request \"%.40s\"", c->id, request);
	return -1;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct anvil_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		struct attrs *rec = NULL;
		const char *err = NULL;
		size_t used = 0;
		int r = attr_decoder_feed(c->decoder, v.iov_base, v.iov_len,
		    &used, &rec, &err);

		if (r < 0) {
			log_warn("connection %lu: malformed record: %s", c->id,
			    err);
			conn_free(c);
			return;
		}
		evbuffer_drain(in, r == 1 ? used : v.iov_len);
		if (r == 1) {
			int rc = conn_handle(c, rec);

			attrs_free(&rec);
			if (rc < 0) {
				conn_free(c);
				return;
			}
		}
	}
	if (evbuffer_get_length(bufferevent_get_output(bev)) > CONN_OUTPUT_MAX) {
		log_warn("closing connection %lu: the caller does not read its "
		    "replies", c->id);
		conn_free(c);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

void anvil_conn_new(struct event_base *base, int fd)
{
	struct anvil_conn *c = xcalloc(1, sizeof(*c));

	iox_set_nonblock(fd, 1);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("cannot create a bufferevent for a caller");
		close(fd);
		free(c);
		return;
	}
	c->decoder = attr_decoder_new();
	c->id = conn_next_id++;
	conn_total++;
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
}
