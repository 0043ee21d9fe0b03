/*
 * Delivery requests from qmgr (lib/deliver.h): reading one, opening and
 * share-locking its queue file, marking delivered recipients, logging
 * and replying with a result per recipient.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "attr.h"
#include "deliver.h"
#include "log.h"
#include "smtp.h"

static void request_free(struct smtp_request *req)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		free(req->rcpts[i].addr);
		free(req->rcpts[i].text);
		free(req->rcpts[i].remote_mta);
		free(req->rcpts[i].remote_reply);
	}
	free(req->rcpts);
	free(req->qid);
	free(req->queue_file);
	free(req->sender);
	free(req->nexthop);
	if (req->qfd >= 0)
		close(req->qfd); /* also releases the flock */
	qenv_free(&req->env);
}

/* 1 when path is "DIR/QID" in a queue folder qmgr delivers from. */
static int request_path_valid(const char *path, const char *qid)
{
	static const char *const dirs[] = {QDIR_ACTIVE, QDIR_INCOMING,
	    QDIR_DEFERRED};
	const char *slash = strchr(path, '/');

	if (slash == NULL || strcmp(slash + 1, qid) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (strlen(dirs[i]) == (size_t)(slash - path)
		    && strncmp(path, dirs[i], (size_t)(slash - path)) == 0)
			return 1;
	return 0;
}

/* Copies the attributes of a request into req. Returns 0 or -1 with a
 * static message. */
static int request_parse(const struct attrs *a, struct smtp_request *req,
    const char **err_out)
{
	const char *qid = attrs_get(a, DELIVER_ATTR_QUEUE_ID);
	const char *path = attrs_get(a, DELIVER_ATTR_QUEUE_FILE);
	const char *sender = attrs_get(a, DELIVER_ATTR_SENDER);
	const char *nexthop = attrs_get(a, DELIVER_ATTR_NEXTHOP);

	if (qid == NULL || !qid_valid(qid)) {
		*err_out = "missing or invalid queue_id";
		return -1;
	}
	if (path == NULL || !request_path_valid(path, qid)) {
		*err_out = "missing or invalid queue_file";
		return -1;
	}
	req->qid = xstrdup(qid);
	req->queue_file = xstrdup(path);
	req->sender = xstrdup(sender != NULL ? sender : "");
	req->nexthop = xstrdup(nexthop != NULL ? nexthop : "");

	for (size_t i = 0; i < a->count; i++) {
		struct smtp_rcpt *r;
		const char *addr;
		size_t index;

		if (strcmp(a->items[i].name, DELIVER_ATTR_RCPT) != 0)
			continue;
		if (deliver_split_index(a->items[i].value, &index, &addr) < 0) {
			*err_out = "malformed rcpt attribute";
			return -1;
		}
		req->rcpts = xrealloc(req->rcpts,
		    (req->nrcpt + 1) * sizeof(*req->rcpts));
		r = &req->rcpts[req->nrcpt++];
		memset(r, 0, sizeof(*r));
		r->index = index;
		r->addr = xstrdup(addr);
	}
	if (req->nrcpt == 0) {
		*err_out = "request without recipients";
		return -1;
	}
	return 0;
}

/* 1 when qmgr has closed its end of the request connection. */
static int request_peer_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char byte;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLRDHUP | POLLERR))
		return 1;
	return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Links each recipient to its queue file record; recipients that do not
 * match or are already final get their result here. */
static void request_match_rcpts(struct smtp_request *req)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];
		struct qrcpt *qr;

		if (r->index >= req->env->nrcpt
		    || strcmp(req->env->rcpt[r->index].addr, r->addr) != 0) {
			r->skip = 1;
			smtp_rcpt_result(r, DELIVER_DEFER, "4.3.0",
			    "recipient %zu does not match the queue file",
			    r->index);
			continue;
		}
		qr = &req->env->rcpt[r->index];
		r->qr = qr;
		if (qr->status == QSTATUS_DELIVERED) {
			r->skip = 1;
			smtp_rcpt_result(r, DELIVER_SENT, "2.0.0",
			    "already delivered");
		} else if (qr->status == QSTATUS_BOUNCED) {
			r->skip = 1;
			smtp_rcpt_result(r, DELIVER_BOUNCE, "5.0.0",
			    "already bounced");
		}
	}
}

/*
 * Opens and share-locks the queue file. Returns 0, 1 when the request
 * must be dropped because qmgr went away, or -1 after setting a deferral
 * on every recipient.
 */
static int request_open_queue_file(struct smtp_request *req, int qmgr_fd)
{
	char *err = NULL;
	int rc = qfile_read(req->queue_file, 1, &req->env, &req->qfd, &err);

	if (rc != 0) {
		char text[400];

		snprintf(text, sizeof(text), "failed to open queue file %s: %s",
		    req->queue_file, rc == -1 ? strerror(errno) : err);
		log_error("%s: %s", req->qid, text);
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.0", text);
		free(err);
		return -1;
	}
	if (flock(req->qfd, LOCK_SH) < 0) {
		log_error("%s: failed to lock %s: %s", req->qid, req->queue_file,
		    strerror(errno));
		smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.0",
		    "failed to lock the queue file");
		return -1;
	}
	if (request_peer_gone(qmgr_fd)) {
		log_warn("%s: qmgr closed the request connection; dropping "
		    "the request", req->qid);
		return 1;
	}
	request_match_rcpts(req);
	return 0;
}

/* Marks sent recipients delivered and logs every result. */
static void request_record(struct smtp_request *req)
{
	struct timeval now;
	double delay = 0;

	gettimeofday(&now, NULL);
	if (req->env != NULL)
		delay = (double)(now.tv_sec - req->env->arrival_sec)
		    + (double)(now.tv_usec - req->env->arrival_usec) / 1e6;

	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];
		char addr[300];

		if (!r->done)
			log_panic("%s: recipient %zu has no result", req->qid,
			    r->index);
		if (!r->skip && strcmp(r->status, DELIVER_SENT) == 0
		    && qfile_set_status(req->qfd, r->qr,
		    QSTATUS_DELIVERED) < 0)
			log_error("%s: failed to mark recipient %zu delivered "
			    "in %s: %s", req->qid, r->index, req->queue_file,
			    strerror(errno));
		str_sanitize(addr, sizeof(addr), r->addr, strlen(r->addr));
		log_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, "
		    "status=%s (%s)", req->qid, addr, req->relay,
		    delay < 0 ? 0 : delay, r->dsn, r->status, r->text);
	}
}

static int request_reply(struct attr_stream *s, struct smtp_request *req,
    int timeout_ms)
{
	struct attrs *a = attrs_new();
	int rc;

	for (size_t i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		attrs_addf(a, DELIVER_ATTR_RESULT, "%zu %s %s %s", r->index,
		    r->status, r->dsn, r->text);
		if (r->remote_mta != NULL)
			attrs_addf(a, DELIVER_ATTR_REMOTE_MTA, "%zu %s",
			    r->index, r->remote_mta);
		if (r->remote_reply != NULL)
			attrs_addf(a, DELIVER_ATTR_REMOTE_REPLY, "%zu %s",
			    r->index, r->remote_reply);
		if (r->dsn_action != NULL)
			attrs_addf(a, DELIVER_ATTR_DSN_ACTION, "%zu %s",
			    r->index, r->dsn_action);
	}
	rc = attr_stream_send(s, a, -1, timeout_ms);
	if (rc < 0)
		log_warn("%s: failed to send the result to qmgr: %s", req->qid,
		    strerror(errno));
	attrs_free(&a);
	return rc;
}

int smtp_request_serve(struct smtp_agent *agent, int fd)
{
	struct attr_stream *s = attr_stream_new(fd);
	struct smtp_request req;
	struct attrs *a = NULL;
	const char *err = NULL;
	int rc = -1;

	memset(&req, 0, sizeof(req));
	req.qfd = -1;
	snprintf(req.relay, sizeof(req.relay), "none");

	int got = attr_stream_recv(s, &a, NULL, agent->ipc_timeout_ms);
	if (got <= 0) {
		if (got < 0)
			log_warn("failed to read a request from qmgr: %s",
			    strerror(errno));
		goto done;
	}
	if (request_parse(a, &req, &err) < 0) {
		log_warn("invalid request from qmgr: %s", err);
		goto done;
	}

	int opened = request_open_queue_file(&req, fd);
	if (opened == 1)
		goto done;
	if (opened == 0)
		smtp_deliver(agent, &req);
	request_record(&req);
	rc = request_reply(s, &req, agent->ipc_timeout_ms);

done:
	attrs_free(&a);
	request_free(&req);
	attr_stream_free(&s);
	return rc;
}
