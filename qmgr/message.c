/*
 * message - in-memory messages: taking a file from active/, routing its
 * pending recipients into requests, and the per-recipient results.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "resolve.h"
#include "sbuf.h"

double qmgr_msg_age(const struct qmgr_msg *msg)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (double)(now.tv_sec - msg->env->arrival_sec)
	    + (double)(now.tv_usec - msg->env->arrival_usec) / 1e6;
}

static void msg_move_corrupt(const char *qid, const char *why)
{
	char from[64], to[64];

	snprintf(from, sizeof(from), "%s/%s", QDIR_ACTIVE, qid);
	snprintf(to, sizeof(to), "%s/%s", QDIR_CORRUPT, qid);
	if (rename(from, to) < 0) {
		log_error("%s: cannot move the unreadable queue file to %s/: "
		    "%s (%s)", qid, QDIR_CORRUPT, strerror(errno), why);
		return;
	}
	log_warn("%s: queue file is not well-formed, moved to %s/: %s",
	    qid, QDIR_CORRUPT, why);
}

/*
 * Returns 1 when a delivery agent holds a shared flock() on fd, 0 when
 * none does. The exclusive lock is dropped at once: it only tests.
 */
static int msg_agent_holds(int fd, const char *qid)
{
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			log_warn("%s: flock: %s; retrying later", qid,
			    strerror(errno));
		return 1;
	}
	flock(fd, LOCK_UN);
	return 0;
}

/*
 * Re-reads every status byte from disk, because an agent of an earlier
 * attempt may have marked recipients after qfile_read parsed the file.
 */
static int msg_reload_statuses(int fd, struct qenv *env)
{
	for (size_t i = 0; i < env->nrcpt; i++) {
		char c;

		if (pread(fd, &c, 1, env->rcpt[i].status_off) != 1)
			return -1;
		env->rcpt[i].status = c;
	}
	return 0;
}

static struct qmgr_msg *msg_new(const char *qid, struct qenv *env, int fd)
{
	struct qmgr_msg *msg = xcalloc(1, sizeof(*msg));

	snprintf(msg->qid, sizeof(msg->qid), "%s", qid);
	msg->env = env;
	msg->fd = fd;
	msg->rstate = xcalloc(env->nrcpt ? env->nrcpt : 1,
	    sizeof(*msg->rstate));
	TAILQ_INSERT_TAIL(&qmgr.msgs, msg, link);
	qmgr.nmsgs++;
	return msg;
}

/* Resolves the pending recipients and queues their requests. */
static void msg_route(struct qmgr_msg *msg)
{
	size_t n = msg->env->nrcpt, np = 0, nbatches;
	struct qmgr_route *routes = xcalloc(n, sizeof(*routes));
	char **addrs = xcalloc(n, sizeof(*addrs));
	size_t *pidx = xcalloc(n, sizeof(*pidx));
	size_t *order = xcalloc(n, sizeof(*order));
	struct qmgr_batch *batches = xcalloc(n, sizeof(*batches));

	for (size_t i = 0; i < n; i++) {
		struct qrcpt *r = &msg->env->rcpt[i];
		struct resolve_result res;
		char *err = NULL;

		if (r->status != QSTATUS_PENDING)
			continue;
		if (resolve_addr(r->addr, &res, &err) < 0) {
			char *reason = xasprintf("address resolution failed: %s",
			    err ? err : "unknown error");

			log_info("%s: to=<%s>, delay=%.2f, dsn=4.3.0, "
			    "status=deferred (%s)", msg->qid, r->addr,
			    qmgr_msg_age(msg), reason);
			qmgr_msg_defer_rcpt(msg, i, "4.3.0", reason);
			free(reason);
			free(err);
			continue;
		}
		routes[np].transport = xstrdup(res.transport);
		routes[np].nexthop = xstrdup(res.nexthop);
		addrs[np] = xstrdup(res.recipient);
		pidx[np] = i;
		np++;
	}

	nbatches = qmgr_plan_batches(routes, np, qmgr_dispatch_rcpt_limit,
	    NULL, order, batches);
	for (size_t b = 0; b < nbatches; b++) {
		size_t cnt = batches[b].count, k0 = order[batches[b].first];
		size_t *idx = xcalloc(cnt, sizeof(*idx));
		char **baddrs = xcalloc(cnt, sizeof(*baddrs));

		for (size_t k = 0; k < cnt; k++) {
			size_t p = order[batches[b].first + k];

			idx[k] = pidx[p];
			baddrs[k] = addrs[p];
		}
		qmgr_dispatch_add(msg, routes[k0].transport, routes[k0].nexthop,
		    idx, baddrs, cnt);
		free(idx);
		free(baddrs);
	}

	for (size_t p = 0; p < np; p++) {
		free((char *)routes[p].transport);
		free((char *)routes[p].nexthop);
		free(addrs[p]);
	}
	free(routes);
	free(addrs);
	free(pidx);
	free(order);
	free(batches);
}

int qmgr_msg_take(const char *qid)
{
	char path[64], *err = NULL;
	struct qenv *env = NULL;
	struct qmgr_msg *msg;
	int fd = -1, rc;

	snprintf(path, sizeof(path), "%s/%s", QDIR_ACTIVE, qid);
	rc = qfile_read(path, 1, &env, &fd, &err);
	if (rc == -2) {
		msg_move_corrupt(qid, err ? err : "unknown error");
		free(err);
		return -1;
	}
	if (rc < 0) {
		if (errno != ENOENT)
			log_error("%s: cannot open %s: %s", qid, path,
			    err ? err : strerror(errno));
		free(err);
		return -1;
	}
	free(err);

	if (msg_agent_holds(fd, qid)) {
		close(fd);
		qenv_free(&env);
		return 1;
	}
	if (msg_reload_statuses(fd, env) < 0) {
		msg_move_corrupt(qid, "recipient status unreadable");
		close(fd);
		qenv_free(&env);
		return -1;
	}

	msg = msg_new(qid, env, fd);
	log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)",
	    qid, env->sender, (long long)env->msg_size, env->nrcpt);
	msg_route(msg);
	if (msg->jobs == 0)
		qmgr_defer_finish(msg);
	else
		qmgr_dispatch_pump();
	return 0;
}

void qmgr_msg_job_done(struct qmgr_msg *msg)
{
	if (msg->jobs == 0)
		log_panic("%s: job count underflow", msg->qid);
	if (--msg->jobs == 0)
		qmgr_defer_finish(msg);
}

void qmgr_msg_defer_rcpt(struct qmgr_msg *msg, size_t i, const char *dsn,
    const char *reason)
{
	struct qmgr_rstate *rs = &msg->rstate[i];

	free(rs->reason);
	rs->reason = xstrdup(reason);
	snprintf(rs->dsn, sizeof(rs->dsn), "%s", dsn);
	qmgr_msg_set_remote(msg, i, NULL, NULL);
}

void qmgr_msg_set_remote(struct qmgr_msg *msg, size_t i, const char *mta,
    const char *diagnostic)
{
	struct qmgr_rstate *rs = &msg->rstate[i];

	free(rs->remote_mta);
	free(rs->diagnostic);
	rs->remote_mta = mta ? xstrdup(mta) : NULL;
	rs->diagnostic = diagnostic ? xstrdup(diagnostic) : NULL;
}

void qmgr_msg_sent_rcpt(struct qmgr_msg *msg, size_t i)
{
	struct qmgr_rstate *rs = &msg->rstate[i];

	msg->env->rcpt[i].status = QSTATUS_DELIVERED;
	free(rs->reason);
	rs->reason = NULL;
}

void qmgr_msg_free(struct qmgr_msg **msgp)
{
	struct qmgr_msg *msg = *msgp;

	if (msg == NULL)
		return;
	*msgp = NULL;
	TAILQ_REMOVE(&qmgr.msgs, msg, link);
	qmgr.nmsgs--;
	for (size_t i = 0; i < msg->env->nrcpt; i++) {
		free(msg->rstate[i].reason);
		free(msg->rstate[i].remote_mta);
		free(msg->rstate[i].diagnostic);
	}
	free(msg->rstate);
	if (msg->fd >= 0)
		close(msg->fd);
	qenv_free(&msg->env);
	free(msg);
	qmgr_scan_room();
}
