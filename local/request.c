/*
 * The request from qmgr (lib/deliver.h): open and lock the queue file,
 * deliver each recipient, mark the delivered ones in the file, reply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "deliver.h"
#include "local.h"
#include "log.h"
#include "qfile.h"
#include "service.h"

/* Milliseconds to wait for qmgr to take the reply. */
#define LOCAL_REPLY_TIMEOUT_MS 60000

/* One recipient of the request and its outcome. */
struct local_item {
	size_t index;
	const char *addr;
	struct local_result res;
};

/* 1 when qmgr has closed its end: a delivery now would be handed out a
 * second time by the next qmgr, so the request is dropped. */
static int local_peer_closed(int conn)
{
	struct pollfd p = {.fd = conn, .events = POLLIN | POLLRDHUP};
	char byte;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLRDHUP | POLLERR))
		return 1;
	return recv(conn, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* 1 when path is "DIR/QID" with a plain directory name and qid. */
static int local_queue_file_valid(const char *path, const char *qid)
{
	const char *slash = strchr(path, '/');

	if (slash == NULL || slash == path || strcmp(slash + 1, qid) != 0)
		return 0;
	for (const char *p = path; p < slash; p++)
		if (!(*p >= 'a' && *p <= 'z'))
			return 0;
	return 1;
}

static void local_defer_all(struct local_item *items, size_t count,
    const char *dsn, const char *text)
{
	for (size_t i = 0; i < count; i++)
		local_result_set(&items[i].res, DELIVER_DEFER, dsn, "%s", text);
}

/* Delivers every item of the request to the message in m. */
static void local_deliver_items(struct local_msg *m, struct local_item *items,
    size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct local_item *it = &items[i];
		struct qrcpt *r;

		if (it->index >= m->env->nrcpt
		    || strcmp(m->env->rcpt[it->index].addr, it->addr) != 0) {
			local_result_set(&it->res, DELIVER_DEFER, "4.3.0",
			    "recipient %zu %s is not in queue file %s", it->index,
			    it->addr, m->qid);
			continue;
		}
		r = &m->env->rcpt[it->index];
		if (r->status != QSTATUS_PENDING) {
			/* A delivered recipient must never be delivered again. */
			local_result_set(&it->res, DELIVER_SENT, "2.0.0",
			    "already final in the queue file (status %c)",
			    r->status);
			continue;
		}

		local_deliver_rcpt(m, r, &it->res);
		if (strcmp(it->res.status, DELIVER_SENT) == 0
		    && qfile_set_status(m->fd, r, QSTATUS_DELIVERED) < 0)
			log_error("%s: delivered to %s but cannot mark it "
			    "delivered in the queue file: %s", m->qid, r->addr,
			    strerror(errno));
		log_debug("%s: to=<%s>, relay=local, status=%s (%s %s)", m->qid,
		    r->addr, it->res.status, it->res.dsn, it->res.text);
	}
}

/*
 * Opens and locks the queue file and delivers. Returns 0 when a reply
 * is due (results in items), -1 when the request is dropped because
 * qmgr has gone.
 */
static int local_process(int conn, const char *qid, const char *file,
    struct local_item *items, size_t count)
{
	struct local_msg m = {.queue_dir = config_str("queue_directory"),
	    .qid = qid, .fd = -1};
	char *path = xasprintf("%s/%s", m.queue_dir, file);
	char *err = NULL, *text;
	int rc = 0;

	switch (qfile_read(path, 1, &m.env, &m.fd, &err)) {
	case 0:
		break;
	case -2:
		text = xasprintf("malformed queue file %s: %s", file,
		    err ? err : "parse error");
		log_error("%s: %s", qid, text);
		local_defer_all(items, count, "4.3.0", text);
		free(text);
		goto out;
	default:
		text = xasprintf("cannot open queue file %s: %s", file,
		    strerror(errno));
		log_error("%s: %s", qid, text);
		local_defer_all(items, count, "4.3.0", text);
		free(text);
		goto out;
	}

	if (flock(m.fd, LOCK_SH) < 0) {
		text = xasprintf("cannot lock queue file %s: %s", file,
		    strerror(errno));
		local_defer_all(items, count, "4.3.0", text);
		free(text);
		goto out;
	}
	if (local_peer_closed(conn)) {
		log_warn("%s: qmgr closed the connection; request dropped", qid);
		rc = -1;
		goto out;
	}
	if (local_msg_read_header(&m) < 0) {
		text = xasprintf("cannot read queue file %s: %s", file,
		    strerror(errno));
		local_defer_all(items, count, "4.3.0", text);
		free(text);
		goto out;
	}
	local_deliver_items(&m, items, count);
out:
	if (m.fd >= 0)
		close(m.fd);
	qenv_free(&m.env);
	free(m.header);
	free(err);
	free(path);
	return rc;
}

/* Collects the rcpt attributes and returns their count. Malformed ones
 * are logged and skipped, because no result line can name them. */
static size_t local_collect_rcpts(const struct attrs *req,
    struct local_item **items_out)
{
	struct local_item *items = xcalloc(req->count + 1, sizeof(*items));
	size_t count = 0;

	for (size_t i = 0; i < req->count; i++) {
		const struct attr_item *a = &req->items[i];
		size_t index;
		const char *addr;

		if (strcmp(a->name, DELIVER_ATTR_RCPT) != 0)
			continue;
		if (deliver_split_index(a->value, &index, &addr) < 0) {
			log_warn("malformed rcpt attribute in request; skipped");
			continue;
		}
		items[count].index = index;
		items[count].addr = addr;
		count++;
	}
	*items_out = items;
	return count;
}

static int local_reply(struct attr_stream *s, const char *qid,
    const struct local_item *items, size_t count)
{
	struct attrs *reply = attrs_new();
	int rc;

	for (size_t i = 0; i < count; i++)
		attrs_addf(reply, DELIVER_ATTR_RESULT, "%zu %s %s %s",
		    items[i].index, items[i].res.status, items[i].res.dsn,
		    items[i].res.text);
	rc = attr_stream_send(s, reply, -1, LOCAL_REPLY_TIMEOUT_MS);
	if (rc < 0)
		log_warn("%s: cannot send the reply to qmgr: %s", qid,
		    strerror(errno));
	attrs_free(&reply);
	return rc;
}

/* Handles one request. Returns 0, or -1 when the connection is unusable. */
static int local_serve_request(struct attr_stream *s, const struct attrs *req)
{
	const char *qid = attrs_get(req, DELIVER_ATTR_QUEUE_ID);
	const char *file = attrs_get(req, DELIVER_ATTR_QUEUE_FILE);
	struct local_item *items;
	size_t count = local_collect_rcpts(req, &items);
	int rc = 0;

	if (qid == NULL || !qid_valid(qid) || file == NULL
	    || !local_queue_file_valid(file, qid)) {
		log_warn("request with a missing or invalid queue_id or "
		    "queue_file; deferring its %zu recipients", count);
		local_defer_all(items, count, "4.3.0",
		    "invalid delivery request");
		qid = qid && qid_valid(qid) ? qid : "NOQUEUE";
	} else if (local_process(attr_stream_fd(s), qid, file, items,
	    count) < 0) {
		free(items);
		return -1;
	}
	rc = local_reply(s, qid, items, count);
	free(items);
	return rc;
}

int local_serve_connection(int conn, int max_requests, int timeout_ms)
{
	struct attr_stream *s = attr_stream_new(conn);
	int served = 0;

	/* A drain lets the request that is already on its way be served. */
	while (served < max_requests && !service_stop_requested
	    && !(served > 0 && service_drain_requested)) {
		struct attrs *req = NULL;
		int rc = attr_stream_recv(s, &req, NULL, timeout_ms);

		if (rc == 0)
			break;
		if (rc < 0) {
			if (errno != ETIMEDOUT)
				log_warn("cannot read a request from qmgr: %s",
				    strerror(errno));
			break;
		}
		served++;
		rc = local_serve_request(s, req);
		attrs_free(&req);
		if (rc < 0)
			break;
	}
	attr_stream_free(&s);
	return served;
}
