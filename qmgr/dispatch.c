/*
 * dispatch - requests to the delivery agents.
 *
 * Each request (a job) carries recipients of one message for one
 * (transport, next hop) destination. Jobs wait in their destination's
 * FIFO until the destination has fewer than its concurrency limit in
 * flight and the transport fewer than default_process_limit. A job opens
 * a non-blocking connection to private/TRANSPORT, sends one attr record
 * (lib/deliver.h) and reads one reply, with ipc_timeout as the limit.
 * Nothing here blocks the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "deliver.h"
#include "iox.h"
#include "log.h"
#include "qmgr.h"
#include "report.h"
#include "sbuf.h"

/* Seconds a transport stays suspended after a failed connection or a
 * reply timeout; its requests are deferred meanwhile. */
#define DISPATCH_SUSPEND_SECONDS 5
/* Milliseconds to wait when an agent's listen queue is full. */
#define DISPATCH_HOLD_MS 500
#define DISPATCH_HASH_SIZE 1024

struct qmgr_dest;

struct qmgr_transport {
	char *name;
	size_t active;             /* requests in flight */
	time_t suspended_until;
	char *suspend_reason;
	int held;                  /* listen queue full: wait for the timer */
	struct event *hold_ev;
	TAILQ_HEAD(, qmgr_dest) waiting; /* destinations with queued jobs */
	struct qmgr_transport *next;
};

struct qmgr_dest {
	struct qmgr_transport *tr;
	char *nexthop;
	size_t active;
	size_t limit;
	int listed;                /* in tr->waiting */
	TAILQ_HEAD(, qmgr_job) queue;
	TAILQ_ENTRY(qmgr_dest) wait_link;
	struct qmgr_dest *hash_next;
};

struct qmgr_job {
	struct qmgr_msg *msg;
	struct qmgr_dest *dest;
	size_t n;
	size_t *idx;               /* recipient positions in the queue file */
	char **addrs;              /* resolved addresses */
	char *answered;            /* per recipient: a result was applied */
	struct bufferevent *bev;
	struct attr_decoder *dec;
	TAILQ_ENTRY(qmgr_job) link;
};

static struct qmgr_transport *transports;
static struct qmgr_dest *dest_hash[DISPATCH_HASH_SIZE];
static size_t inflight;

size_t qmgr_dispatch_inflight(void)
{
	return inflight;
}

static int transport_is_local(const char *name)
{
	return strcmp(name, "local") == 0
	    || strcmp(name, qmgr.cfg.local_transport) == 0
	    || strcmp(name, qmgr.cfg.virtual_transport) == 0;
}

size_t qmgr_dispatch_rcpt_limit(const char *transport, void *unused)
{
	(void)unused;
	if (transport_is_local(transport))
		return 1;
	return qmgr.cfg.rcpt_limit > 0 ? (size_t)qmgr.cfg.rcpt_limit : 1;
}

static struct qmgr_transport *transport_get(const char *name)
{
	struct qmgr_transport *tr;

	for (tr = transports; tr != NULL; tr = tr->next)
		if (strcmp(tr->name, name) == 0)
			return tr;
	tr = xcalloc(1, sizeof(*tr));
	tr->name = xstrdup(name);
	TAILQ_INIT(&tr->waiting);
	tr->next = transports;
	transports = tr;
	return tr;
}

static unsigned dest_hash_of(const char *transport, const char *nexthop)
{
	unsigned h = 5381;

	for (const char *p = transport; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h = h * 33;
	for (const char *p = nexthop; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % DISPATCH_HASH_SIZE;
}

static struct qmgr_dest *dest_get(struct qmgr_transport *tr,
    const char *nexthop)
{
	unsigned h = dest_hash_of(tr->name, nexthop);
	struct qmgr_dest *d;
	long limit;

	for (d = dest_hash[h]; d != NULL; d = d->hash_next)
		if (d->tr == tr && strcmp(d->nexthop, nexthop) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->tr = tr;
	d->nexthop = xstrdup(nexthop);
	limit = transport_is_local(tr->name) ? qmgr.cfg.local_dest_limit
	    : qmgr.cfg.dest_limit;
	d->limit = limit > 0 ? (size_t)limit : 1;
	TAILQ_INIT(&d->queue);
	d->hash_next = dest_hash[h];
	dest_hash[h] = d;
	return d;
}

/* Frees d when nothing refers to it any more. */
static void dest_release(struct qmgr_dest *d)
{
	unsigned h;
	struct qmgr_dest **pp;

	if (d->active > 0 || !TAILQ_EMPTY(&d->queue))
		return;
	if (d->listed) {
		TAILQ_REMOVE(&d->tr->waiting, d, wait_link);
		d->listed = 0;
	}
	h = dest_hash_of(d->tr->name, d->nexthop);
	for (pp = &dest_hash[h]; *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == d) {
			*pp = d->hash_next;
			break;
		}
	}
	free(d->nexthop);
	free(d);
}

static void job_free(struct qmgr_job **jobp)
{
	struct qmgr_job *job = *jobp;

	if (job == NULL)
		return;
	*jobp = NULL;
	if (job->bev != NULL)
		bufferevent_free(job->bev);
	attr_decoder_free(&job->dec);
	for (size_t k = 0; k < job->n; k++)
		free(job->addrs[k]);
	free(job->addrs);
	free(job->idx);
	free(job->answered);
	free(job);
}

static void job_log(struct qmgr_job *job, size_t k, const char *dsn,
    const char *status, const char *text)
{
	const char *nexthop = job->dest->nexthop;

	log_info("%s: to=<%s>, relay=%s%s%s, delay=%.2f, dsn=%s, status=%s "
	    "(%s)", job->msg->qid, job->addrs[k], job->dest->tr->name,
	    *nexthop ? ":" : "", nexthop, qmgr_msg_age(job->msg), dsn,
	    status, text);
}

/* Defers every recipient of job that has no result yet. */
static void job_defer_rest(struct qmgr_job *job, const char *reason)
{
	for (size_t k = 0; k < job->n; k++) {
		if (job->answered[k])
			continue;
		job->answered[k] = 1;
		job_log(job, k, "4.3.0", "deferred", reason);
		qmgr_msg_defer_rcpt(job->msg, job->idx[k], "4.3.0", reason);
	}
}

/*
 * Ends a job: releases its slot (when it had one), frees it and calls
 * qmgr_msg_job_done(). The message may be freed there, so callers must
 * not touch it afterwards.
 */
static void job_end(struct qmgr_job *job, int had_slot)
{
	struct qmgr_msg *msg = job->msg;
	struct qmgr_dest *d = job->dest;

	if (had_slot) {
		d->active--;
		d->tr->active--;
		inflight--;
	}
	job_free(&job);
	dest_release(d);
	qmgr_msg_job_done(msg);
}

static void dest_enqueue(struct qmgr_dest *d, struct qmgr_job *job,
    int at_head)
{
	if (at_head)
		TAILQ_INSERT_HEAD(&d->queue, job, link);
	else
		TAILQ_INSERT_TAIL(&d->queue, job, link);
	if (!d->listed) {
		TAILQ_INSERT_TAIL(&d->tr->waiting, d, wait_link);
		d->listed = 1;
	}
}

static int transport_suspended(struct qmgr_transport *tr)
{
	return tr->suspend_reason != NULL && time(NULL) < tr->suspended_until;
}

/* Removes and returns the first queued job of tr, releasing the waiting
 * destinations it finds empty on the way. Returns NULL when none is left. */
static struct qmgr_job *transport_take_queued(struct qmgr_transport *tr)
{
	struct qmgr_dest *d;

	while ((d = TAILQ_FIRST(&tr->waiting)) != NULL) {
		struct qmgr_job *job = TAILQ_FIRST(&d->queue);

		if (job != NULL) {
			TAILQ_REMOVE(&d->queue, job, link);
			return job;
		}
		TAILQ_REMOVE(&tr->waiting, d, wait_link);
		d->listed = 0;
		dest_release(d);
	}
	return NULL;
}

/* Defers every queued job of tr with its suspension reason. */
static void transport_defer_queued(struct qmgr_transport *tr)
{
	struct qmgr_job *job;

	while ((job = transport_take_queued(tr)) != NULL) {
		job_defer_rest(job, tr->suspend_reason);
		job_end(job, 0);
	}
}

static void transport_suspend(struct qmgr_transport *tr, const char *why)
{
	free(tr->suspend_reason);
	tr->suspend_reason = xasprintf("delivery temporarily suspended: %s",
	    why);
	tr->suspended_until = time(NULL) + DISPATCH_SUSPEND_SECONDS;
	log_warn("transport %s suspended for %d s: %s", tr->name,
	    DISPATCH_SUSPEND_SECONDS, why);
	transport_defer_queued(tr);
}

void qmgr_dispatch_add(struct qmgr_msg *msg, const char *transport,
    const char *nexthop, const size_t *idx, char *const *addrs, size_t n)
{
	struct qmgr_transport *tr = transport_get(transport);
	struct qmgr_dest *d = dest_get(tr, nexthop);
	struct qmgr_job *job = xcalloc(1, sizeof(*job));

	job->msg = msg;
	job->dest = d;
	job->n = n;
	job->idx = xcalloc(n, sizeof(*job->idx));
	job->addrs = xcalloc(n, sizeof(*job->addrs));
	job->answered = xcalloc(n, 1);
	for (size_t k = 0; k < n; k++) {
		job->idx[k] = idx[k];
		job->addrs[k] = xstrdup(addrs[k]);
	}
	msg->jobs++;

	/* A suspended transport gets no new work until its pause is over;
	 * the caller holds a job count, so the message is not finished here. */
	if (transport_suspended(tr)) {
		job_defer_rest(job, tr->suspend_reason);
		job_free(&job);
		dest_release(d);
		msg->jobs--;
		return;
	}
	dest_enqueue(d, job, 0);
}

/* Optional attributes of a reply (lib/deliver.h) per request recipient
 * k, as pointers into the reply. */
struct job_details {
	const char **mta;
	const char **reply;
	const char **action;
};

/* Recipients collected from a reply for bounces and success notices. */
struct job_outcomes {
	size_t *bidx, nb;
	char **bdsn, **btext;
	size_t *sidx, ns;
	char **saction, **sdsn, **stext;
};

/* Position in job of the recipient with queue file index, or job->n. */
static size_t job_find(const struct qmgr_job *job, size_t index)
{
	size_t k;

	for (k = 0; k < job->n; k++)
		if (job->idx[k] == index)
			break;
	return k;
}

static void job_read_details(const struct qmgr_job *job,
    const struct attrs *reply, struct job_details *det)
{
	for (size_t i = 0; i < reply->count; i++) {
		const char *name = reply->items[i].name, *rest;
		const char **slot;
		size_t index, k;

		if (strcmp(name, DELIVER_ATTR_REMOTE_MTA) == 0)
			slot = det->mta;
		else if (strcmp(name, DELIVER_ATTR_REMOTE_REPLY) == 0)
			slot = det->reply;
		else if (strcmp(name, DELIVER_ATTR_DSN_ACTION) == 0)
			slot = det->action;
		else
			continue;
		if (deliver_split_index(reply->items[i].value, &index,
		    &rest) < 0 || (k = job_find(job, index)) == job->n)
			continue;
		slot[k] = rest;
	}
}

/* The success notice action of a sent recipient, or NULL for none.
 * TODO: local sends no dsn_action, so an alias expansion is reported as
 * "delivered" where RFC 3464 has "expanded". */
static const char *job_success_action(const char *action)
{
	if (action == NULL)
		return REPORT_DELIVERED;
	if (strcmp(action, REPORT_DELIVERED) == 0
	    || strcmp(action, REPORT_RELAYED) == 0
	    || strcmp(action, REPORT_EXPANDED) == 0)
		return action;
	return NULL;
}

static void job_apply_result(struct qmgr_job *job, const char *value,
    const struct job_details *det, struct job_outcomes *out)
{
	char status[16], dsn[16];
	const char *rest, *text, *action;
	size_t index, k;

	if (deliver_split_index(value, &index, &rest) < 0
	    || deliver_parse_result(rest, status, sizeof(status), dsn,
	    sizeof(dsn), &text) < 0) {
		log_warn("%s: malformed result from private/%s ignored",
		    job->msg->qid, job->dest->tr->name);
		return;
	}
	k = job_find(job, index);
	if (k == job->n || job->answered[k]) {
		log_warn("%s: result from private/%s for recipient %zu, which "
		    "the request did not name, ignored", job->msg->qid,
		    job->dest->tr->name, index);
		return;
	}
	job->answered[k] = 1;

	if (strcmp(status, DELIVER_SENT) == 0) {
		job_log(job, k, dsn, "sent", text);
		qmgr_msg_sent_rcpt(job->msg, index);
		action = job_success_action(det->action[k]);
		if (action != NULL
		    && (job->msg->env->rcpt[index].notify & QNOTIFY_SUCCESS)) {
			out->sidx[out->ns] = index;
			out->saction[out->ns] = xstrdup(action);
			out->sdsn[out->ns] = xstrdup(dsn);
			out->stext[out->ns] = xstrdup(text);
			out->ns++;
		}
	} else if (strcmp(status, DELIVER_BOUNCE) == 0) {
		job_log(job, k, dsn, "bounced", text);
		qmgr_msg_set_remote(job->msg, index, det->mta[k],
		    det->reply[k]);
		out->bidx[out->nb] = index;
		out->bdsn[out->nb] = xstrdup(dsn);
		out->btext[out->nb] = xstrdup(text);
		out->nb++;
	} else {
		if (strcmp(status, DELIVER_DEFER) != 0)
			log_warn("%s: unknown status \"%s\" from private/%s "
			    "taken as defer", job->msg->qid, status,
			    job->dest->tr->name);
		job_log(job, k, dsn, "deferred", text);
		qmgr_msg_defer_rcpt(job->msg, index, dsn, text);
		qmgr_msg_set_remote(job->msg, index, det->mta[k],
		    det->reply[k]);
	}
}

static void job_outcomes_free(struct job_outcomes *o)
{
	for (size_t i = 0; i < o->nb; i++) {
		free(o->bdsn[i]);
		free(o->btext[i]);
	}
	for (size_t i = 0; i < o->ns; i++) {
		free(o->saction[i]);
		free(o->sdsn[i]);
		free(o->stext[i]);
	}
	free(o->bidx);
	free(o->bdsn);
	free(o->btext);
	free(o->sidx);
	free(o->saction);
	free(o->sdsn);
	free(o->stext);
}

static void job_apply_reply(struct qmgr_job *job, const struct attrs *reply)
{
	size_t n = job->n;
	struct job_details det = {
		xcalloc(n, sizeof(char *)), xcalloc(n, sizeof(char *)),
		xcalloc(n, sizeof(char *))
	};
	struct job_outcomes out = {
		.bidx = xcalloc(n, sizeof(size_t)),
		.bdsn = xcalloc(n, sizeof(char *)),
		.btext = xcalloc(n, sizeof(char *)),
		.sidx = xcalloc(n, sizeof(size_t)),
		.saction = xcalloc(n, sizeof(char *)),
		.sdsn = xcalloc(n, sizeof(char *)),
		.stext = xcalloc(n, sizeof(char *)),
	};

	job_read_details(job, reply, &det);
	for (size_t i = 0; i < reply->count; i++)
		if (strcmp(reply->items[i].name, DELIVER_ATTR_RESULT) == 0)
			job_apply_result(job, reply->items[i].value, &det, &out);
	job_defer_rest(job, "delivery agent reply has no result for this "
	    "recipient");

	/* The bounce is queued before the recipients are marked, so a crash
	 * in between can repeat a bounce but never lose one. */
	if (out.nb > 0)
		qmgr_bounce_rcpts(job->msg, out.bidx, out.nb, out.bdsn,
		    out.btext);
	if (out.ns > 0)
		qmgr_bounce_success(job->msg, out.sidx, out.ns, out.saction,
		    out.sdsn, out.stext);
	job_outcomes_free(&out);
	free((void *)det.mta);
	free((void *)det.reply);
	free((void *)det.action);
}

static void job_read_cb(struct bufferevent *bev, void *arg)
{
	struct qmgr_job *job = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in), used = 0;
	struct attrs *reply = NULL;
	const char *err = NULL;
	char *data = (char *)evbuffer_pullup(in, -1);
	int rc = attr_decoder_feed(job->dec, data, len, &used, &reply, &err);

	if (rc == 0) {
		evbuffer_drain(in, len);
		return;
	}
	if (rc < 0) {
		char *reason = xasprintf("malformed reply from private/%s: %s",
		    job->dest->tr->name, err ? err : "unknown error");

		log_warn("%s: %s", job->msg->qid, reason);
		job_defer_rest(job, reason);
		free(reason);
	} else {
		job_apply_reply(job, reply);
		attrs_free(&reply);
	}
	job_end(job, 1);
	qmgr_dispatch_pump();
}

static void job_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct qmgr_job *job = arg;
	struct qmgr_transport *tr = job->dest->tr;
	char *reason;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		reason = xasprintf("no reply from private/%s within %ld s",
		    tr->name, qmgr.cfg.ipc_timeout);
		transport_suspend(tr, reason);
		job_defer_rest(job, tr->suspend_reason);
		job_end(job, 1);
	} else {
		reason = xasprintf("delivery agent private/%s closed the "
		    "connection without a reply%s%s", tr->name,
		    (what & BEV_EVENT_ERROR) && errno ? ": " : "",
		    (what & BEV_EVENT_ERROR) && errno ? strerror(errno) : "");
		log_warn("%s: %s", job->msg->qid, reason);
		job_defer_rest(job, reason);
		job_end(job, 1);
	}
	free(reason);
	qmgr_dispatch_pump();
}

static void transport_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr_transport *tr = arg;

	(void)fd;
	(void)what;
	tr->held = 0;
	qmgr_dispatch_pump();
}

/* The agent's listen queue is full: try again shortly, deferring nothing. */
static void transport_hold(struct qmgr_transport *tr)
{
	struct timeval tv = { 0, DISPATCH_HOLD_MS * 1000 };

	if (tr->hold_ev == NULL)
		tr->hold_ev = evtimer_new(qmgr.base, transport_hold_cb, tr);
	tr->held = 1;
	evtimer_add(tr->hold_ev, &tv);
}

static int job_encode(struct qmgr_job *job, struct sbuf *out)
{
	struct attrs *a = attrs_new();
	int rc;

	attrs_add(a, DELIVER_ATTR_QUEUE_ID, job->msg->qid);
	attrs_addf(a, DELIVER_ATTR_QUEUE_FILE, "%s/%s", QDIR_ACTIVE,
	    job->msg->qid);
	attrs_add(a, DELIVER_ATTR_SENDER, job->msg->env->sender);
	attrs_add(a, DELIVER_ATTR_TRANSPORT, job->dest->tr->name);
	attrs_add(a, DELIVER_ATTR_NEXTHOP, job->dest->nexthop);
	for (size_t k = 0; k < job->n; k++)
		attrs_addf(a, DELIVER_ATTR_RCPT, "%zu %s", job->idx[k],
		    job->addrs[k]);
	rc = attrs_encode(a, out);
	attrs_free(&a);
	return rc;
}

/*
 * Connects and sends the request. Returns 0 when the job is in flight or
 * has ended, 1 when the agent's listen queue was full (the job is back at
 * the head of its queue).
 */
static int job_start(struct qmgr_job *job)
{
	struct qmgr_transport *tr = job->dest->tr;
	struct timeval tv = { qmgr.cfg.ipc_timeout, 0 };
	struct sbuf req;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", QDIR_PRIVATE, tr->name);
	fd = iox_unix_connect(path, 1);
	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		job->dest->active--;
		tr->active--;
		inflight--;
		dest_enqueue(job->dest, job, 1);
		transport_hold(tr);
		return 1;
	}
	if (fd < 0) {
		char *why = xasprintf("cannot connect to %s: %s", path,
		    strerror(errno));

		transport_suspend(tr, why);
		job_defer_rest(job, tr->suspend_reason);
		job_end(job, 1);
		free(why);
		return 0;
	}

	sbuf_init(&req, ATTR_MAX_RECORD);
	if (job_encode(job, &req) < 0) {
		close(fd);
		job_defer_rest(job, "delivery request too large");
		job_end(job, 1);
		sbuf_free(&req);
		return 0;
	}
	job->dec = attr_decoder_new();
	job->bev = bufferevent_socket_new(qmgr.base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(job->bev, job_read_cb, NULL, job_event_cb, job);
	bufferevent_set_timeouts(job->bev, &tv, &tv);
	bufferevent_write(job->bev, req.data, req.len);
	bufferevent_enable(job->bev, EV_READ | EV_WRITE);
	sbuf_free(&req);
	return 0;
}

/* Picks the next destination of tr that may start a job, round robin. */
static struct qmgr_dest *transport_next_dest(struct qmgr_transport *tr)
{
	struct qmgr_dest *d;

	TAILQ_FOREACH(d, &tr->waiting, wait_link)
		if (d->active < d->limit)
			return d;
	return NULL;
}

static void pump_transport(struct qmgr_transport *tr)
{
	size_t plimit = qmgr.cfg.process_limit > 0
	    ? (size_t)qmgr.cfg.process_limit : 1;

	while (!qmgr.draining && !tr->held) {
		struct qmgr_dest *d;
		struct qmgr_job *job;

		if (transport_suspended(tr)) {
			transport_defer_queued(tr);
			return;
		}
		if (tr->active >= plimit || (d = transport_next_dest(tr)) == NULL)
			return;
		job = TAILQ_FIRST(&d->queue);
		TAILQ_REMOVE(&d->queue, job, link);
		TAILQ_REMOVE(&tr->waiting, d, wait_link);
		if (TAILQ_EMPTY(&d->queue))
			d->listed = 0;
		else
			TAILQ_INSERT_TAIL(&tr->waiting, d, wait_link);
		d->active++;
		tr->active++;
		inflight++;
		job_start(job);
	}
}

void qmgr_dispatch_pump(void)
{
	for (struct qmgr_transport *tr = transports; tr; tr = tr->next)
		pump_transport(tr);
}

void qmgr_dispatch_drop_queued(void)
{
	for (struct qmgr_transport *tr = transports; tr; tr = tr->next) {
		struct qmgr_job *job;

		while ((job = transport_take_queued(tr)) != NULL)
			job_end(job, 0);
	}
}
