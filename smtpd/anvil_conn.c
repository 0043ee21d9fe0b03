/*
 * The connection of one smtpd process to anvil (service_conn.h), which
 * carries the connect and disconnect records of every session
 * (lib/anvil_proto.h). Replies are matched to calls by id.
 *
 * Any failure (no socket, a lost connection, no reply in time) ends the
 * call with a failure, and the caller lets the client in: a missing
 * anvil must never stop mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_proto.h"
#include "attr.h"
#include "log.h"
#include "sbuf.h"
#include "service_conn.h"
#include "smtpd.h"

/* Milliseconds smtpd waits for anvil before it lets a client in
 * uncounted. anvil replies from memory, well under a millisecond when
 * healthy. The wait covers a restart by master
 * (service_restart_delay, 1 s by default). */
#define ANVIL_REPLY_TIMEOUT_MS 2000

struct smtpd_anvil_call {
	struct service_call base;  /* first: the key is the call id */
	char ident[ANVIL_IDENT_MAX + 1];
	smtpd_anvil_cb cb;
	void *arg;
};

static char *anvil_socket_path(void);
static void anvil_handle_record(struct attrs *rec);
static void anvil_lost(const char *why, int was_open, int calls_waiting);
static void anvil_call_failed(struct service_call *base,
    enum service_call_failure failure);

static const struct service_conn_ops anvil_ops = {
	.name = "anvil",
	.log_key = "smtpd-anvil",
	.connect_note = "clients are not limited per address",
	.socket_path = anvil_socket_path,
	.handle_record = anvil_handle_record,
	.free_record = attrs_free,
	.lost = anvil_lost,
	.call_failed = anvil_call_failed,
};

static struct service_conn anvil_conn = {.ops = &anvil_ops};
static unsigned long anvil_next_id;

unsigned smtpd_anvil_generation(void)
{
	return service_conn_generation(&anvil_conn);
}

static char *anvil_socket_path(void)
{
	return xasprintf("%s/%s", smtpd_settings.queue_dir, ANVIL_SOCKET_NAME);
}

/* Runs c's callback and frees c; c is already forgotten. */
static void call_finish(struct smtpd_anvil_call *c, int status, long count,
    long rate)
{
	smtpd_anvil_cb cb = c->cb;
	void *arg = c->arg;

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

static void anvil_lost(const char *why, int was_open, int calls_waiting)
{
	if (was_open && log_ratelimit("smtpd-anvil-lost", 3, 60))
		log_info("lost the connection to anvil (%s); the "
		    "sessions counted on it are no longer counted", why);
	if (calls_waiting)
		anvil_log_failure(why);
}

void smtpd_anvil_disconnect(const char *ident, unsigned generation)
{
	struct attrs *req;

	/* Counts made on an earlier connection ended with it. */
	if (generation != service_conn_generation(&anvil_conn))
		return;
	req = attrs_new();
	attrs_add(req, ANVIL_ATTR_REQUEST, ANVIL_REQ_DISCONNECT);
	attrs_add(req, ANVIL_ATTR_IDENT, ident);
	service_conn_write(&anvil_conn, req);
	attrs_free(&req);
}

/* Forgets c. anvil may still count its connect, so a disconnect
 * follows it; anvil handles records of one socket in order. */
static void call_abandon(struct smtpd_anvil_call *c)
{
	smtpd_anvil_disconnect(c->ident, service_conn_generation(&anvil_conn));
	service_call_forget(&c->base);
	free(c);
}

static void anvil_call_failed(struct service_call *base,
    enum service_call_failure failure)
{
	struct smtpd_anvil_call *c = (struct smtpd_anvil_call *)base;
	smtpd_anvil_cb cb = c->cb;
	void *cb_arg = c->arg;

	if (failure == SERVICE_CALL_LOST) {
		call_finish(c, -1, 0, 0);
		return;
	}
	anvil_log_failure("no reply within the timeout");
	call_abandon(c);
	cb(cb_arg, -1, 0, 0);
}

struct smtpd_anvil_call *smtpd_anvil_connect(const char *ident,
    smtpd_anvil_cb cb, void *arg)
{
	struct smtpd_anvil_call *c = xcalloc(1, sizeof(*c));
	struct attrs *req = attrs_new();
	char id[32];

	snprintf(c->ident, sizeof(c->ident), "%s", ident);
	snprintf(id, sizeof(id), "%lu", ++anvil_next_id);
	c->cb = cb;
	c->arg = arg;

	attrs_add(req, ANVIL_ATTR_REQUEST, ANVIL_REQ_CONNECT);
	attrs_add(req, ANVIL_ATTR_ID, id);
	attrs_add(req, ANVIL_ATTR_IDENT, c->ident);
	service_call_start(&anvil_conn, &c->base, id, ANVIL_REPLY_TIMEOUT_MS,
	    req);
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

static void anvil_handle_record(struct attrs *rec)
{
	const char *status = attrs_get(rec, ANVIL_ATTR_STATUS);
	const char *id = attrs_get(rec, ANVIL_ATTR_ID);
	struct smtpd_anvil_call *c;

	/* NULL when the call timed out or its session ended. */
	c = (struct smtpd_anvil_call *)service_conn_find(&anvil_conn,
	    id ? id : "");
	if (c == NULL)
		return;
	service_call_forget(&c->base);
	if (status == NULL || strcmp(status, ANVIL_STATUS_OK) != 0) {
		anvil_log_failure(attrs_get(rec, ANVIL_ATTR_REASON) ?
		    attrs_get(rec, ANVIL_ATTR_REASON) : "invalid reply");
		call_finish(c, -1, 0, 0);
		return;
	}
	call_finish(c, 0, attrs_get_long(rec, ANVIL_ATTR_COUNT, 0),
	    attrs_get_long(rec, ANVIL_ATTR_RATE, 0));
}
