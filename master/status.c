/*
 * Process accounting: the status pipes over which children report IDLE or
 * BUSY, the decision when to start another process, and what happens
 * when a child exits (logging, restart with back-off).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "master.h"
#include "sbuf.h"
#include "wakeup.h"

static void master_status_read_cb(evutil_socket_t fd, short what, void *arg);
static void master_listen_ready_cb(evutil_socket_t fd, short what, void *arg);
static void master_restart_cb(evutil_socket_t fd, short what, void *arg);
static void master_wakeup_cb(evutil_socket_t fd, short what, void *arg);
static void master_backoff(struct master_service *svc);

int master_status_open(struct master_service *svc)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_error("service %s: cannot create the status pipe: %s",
		    svc->name, strerror(errno));
		return -1;
	}
	iox_set_nonblock(fds[0], 1);
	svc->status_rd = fds[0];
	svc->status_wr = fds[1];
	svc->status_ev = event_new(master.base, fds[0], EV_READ | EV_PERSIST,
	    master_status_read_cb, svc);
	svc->restart_ev = evtimer_new(master.base, master_restart_cb, svc);
	if (svc->listen_fd >= 0)
		svc->listen_ev = event_new(master.base, svc->listen_fd, EV_READ,
		    master_listen_ready_cb, svc);
	if (svc->status_ev == NULL || svc->restart_ev == NULL
	    || (svc->listen_fd >= 0 && svc->listen_ev == NULL))
		log_panic("service %s: cannot create events", svc->name);
	event_add(svc->status_ev, NULL);

	if (svc->wakeup > 0 && strcmp(svc->type, "unix") == 0) {
		struct timeval tv = {svc->wakeup, 0};

		svc->wakeup_ev = event_new(master.base, -1, EV_PERSIST,
		    master_wakeup_cb, svc);
		event_add(svc->wakeup_ev, &tv);
	}
	return 0;
}

static void master_event_drop(struct event **ev)
{
	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
}

void master_status_close(struct master_service *svc)
{
	master_event_drop(&svc->status_ev);
	master_event_drop(&svc->listen_ev);
	master_event_drop(&svc->restart_ev);
	master_event_drop(&svc->wakeup_ev);
	svc->watching = 0;
	svc->backoff = 0;
	if (svc->status_rd >= 0)
		close(svc->status_rd);
	if (svc->status_wr >= 0)
		close(svc->status_wr);
	svc->status_rd = svc->status_wr = -1;
}

static struct master_child *master_child_find(pid_t pid)
{
	for (struct master_child *c = master.children; c != NULL; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

/* Moves a child of svc to state, keeping the service's counters right. */
static void master_child_set_state(struct master_child *c,
    enum master_child_state state)
{
	struct master_service *svc = c->svc;

	if (svc != NULL) {
		if (c->state == MASTER_CHILD_IDLE)
			svc->nidle--;
		else if (c->state == MASTER_CHILD_STARTING)
			svc->nstarting--;
		if (state == MASTER_CHILD_IDLE)
			svc->nidle++;
		else if (state == MASTER_CHILD_STARTING)
			svc->nstarting++;
	}
	c->state = state;
}

static void master_status_record(struct master_service *svc,
    const struct service_status *st)
{
	struct master_child *c = master_child_find(st->pid);

	/* A child reaped before its last report was read is already gone. */
	if (c == NULL || c->svc != svc)
		return;
	if (st->state != SERVICE_STATE_IDLE && st->state != SERVICE_STATE_BUSY) {
		if (log_ratelimit("master-status", 5, 60))
			log_warn("service %s pid %ld: invalid status %d",
			    svc->name, (long)st->pid, st->state);
		return;
	}
	master_child_set_state(c, st->state == SERVICE_STATE_IDLE
	    ? MASTER_CHILD_IDLE : MASTER_CHILD_BUSY);
}

static void master_status_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_service *svc = arg;
	unsigned char buf[64 * sizeof(struct service_status)];
	ssize_t n;

	/* Each report is one write smaller than PIPE_BUF, so records arrive
	 * whole; the carry only guards against a misbehaving writer. */
	memcpy(buf, svc->carry, svc->ncarry);
	n = read(fd, buf + svc->ncarry, sizeof(buf) - svc->ncarry);
	if (n <= 0) {
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			log_error("service %s: status pipe read: %s", svc->name,
			    strerror(errno));
		return;
	}
	size_t len = svc->ncarry + (size_t)n, off = 0;

	for (; len - off >= sizeof(struct service_status);
	    off += sizeof(struct service_status)) {
		struct service_status st;

		memcpy(&st, buf + off, sizeof(st));
		master_status_record(svc, &st);
	}
	svc->ncarry = len - off;
	memcpy(svc->carry, buf + off, svc->ncarry);
	master_service_update(svc);
}

static void master_listen_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_service *svc = arg;

	/* The event is not persistent: the new child's first report, or its
	 * exit, decides whether to watch again, so one waiting connection
	 * starts one process. */
	svc->watching = 0;
	if (master.stopping || svc->backoff)
		return;
	if ((svc->maxproc == 0 || svc->nchild < svc->maxproc)
	    && master_spawn(svc) < 0)
		master_backoff(svc);
	master_service_update(svc);
}

static void master_watch(struct master_service *svc, int on)
{
	if (svc->listen_ev == NULL || svc->watching == on)
		return;
	if (on)
		event_add(svc->listen_ev, NULL);
	else
		event_del(svc->listen_ev);
	svc->watching = on;
}

static int master_service_running_max(const struct master_service *svc)
{
	int n = svc->nchild;

	/* qmgr must not work the queue beside a drained qmgr that still runs. */
	if (svc->singleton)
		n += master_drained_count(svc->name);
	return n;
}

void master_service_update(struct master_service *svc)
{
	if (master.stopping || svc->backoff || svc->listen_fd < 0) {
		master_watch(svc, 0);
		return;
	}
	if (svc->kind == MASTER_KIND_FIXED) {
		while (master_service_running_max(svc) < svc->maxproc)
			if (master_spawn(svc) < 0) {
				master_backoff(svc);
				break;
			}
		return;
	}
	int room = svc->maxproc == 0 || svc->nchild < svc->maxproc;

	master_watch(svc, room && svc->nidle == 0 && svc->nstarting == 0);
}

void master_services_update_all(void)
{
	for (struct master_service *svc = master.services; svc != NULL;
	    svc = svc->next)
		master_service_update(svc);
}

int master_drained_count(const char *name)
{
	int n = 0;

	for (struct master_child *c = master.children; c != NULL; c = c->next)
		if (c->svc == NULL && strcmp(c->name, name) == 0)
			n++;
	return n;
}

static void master_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_service *svc = arg;

	svc->backoff = 0;
	master_service_update(svc);
}

/* Delays new processes of svc: service_restart_delay doubled for each
 * failure in a row, at most MASTER_BACKOFF_MAX_S seconds. */
static void master_backoff(struct master_service *svc)
{
	long delay = config_time("service_restart_delay");

	svc->failures++;
	if (svc->backoff)
		return;
	if (delay < 1)
		delay = 1;
	for (int i = 1; i < svc->failures && delay < MASTER_BACKOFF_MAX_S; i++)
		delay *= 2;
	if (delay > MASTER_BACKOFF_MAX_S)
		delay = MASTER_BACKOFF_MAX_S;

	struct timeval tv = {delay, 0};

	svc->backoff = 1;
	master_watch(svc, 0);
	evtimer_add(svc->restart_ev, &tv);
	log_info("service %s: next process starts in %ld s (failure %d in a row)",
	    svc->name, delay, svc->failures);
}

/* Logs how a child ended; returns 1 when that was a failure. */
static int master_log_exit(const struct master_child *c, int wait_status,
    int expected)
{
	int failed;

	if (WIFSIGNALED(wait_status)) {
		int sig = WTERMSIG(wait_status);

		failed = !(expected && (sig == SIGTERM || sig == SIGKILL));
		if (failed)
			log_warn("service %s pid %ld killed by signal %d",
			    c->name, (long)c->pid, sig);
		else
			log_info("service %s pid %ld killed by signal %d",
			    c->name, (long)c->pid, sig);
		return failed;
	}
	int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;

	failed = code != 0;
	if (failed)
		log_warn("service %s pid %ld exited with status %d", c->name,
		    (long)c->pid, code);
	else if (!expected && c->svc != NULL && c->svc->kind == MASTER_KIND_FIXED)
		log_info("service %s pid %ld exited with status 0", c->name,
		    (long)c->pid);
	return failed;
}

static void master_child_unlink(struct master_child *c)
{
	for (struct master_child **p = &master.children; *p != NULL;
	    p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
}

void master_child_exited(pid_t pid, int wait_status)
{
	struct master_child *c = master_child_find(pid);

	if (c == NULL)
		return;
	master_child_unlink(c);

	struct master_service *svc = c->svc;
	int expected = master.stopping || svc == NULL;
	int failed = master_log_exit(c, wait_status, expected);
	long long lived_ms = iox_now_ms() - c->start_ms;

	if (svc != NULL) {
		master_child_set_state(c, MASTER_CHILD_BUSY);
		svc->nchild--;
		if (lived_ms >= MASTER_BACKOFF_MAX_S * 1000LL)
			svc->failures = 0;
		/* A fixed process that exits on its own is never expected. */
		if (!master.stopping && (failed || svc->kind == MASTER_KIND_FIXED))
			master_backoff(svc);
	}
	free(c->name);
	free(c->command);
	free(c);

	if (master.stopping) {
		if (master.children == NULL)
			event_base_loopbreak(master.base);
		return;
	}
	/* A drained qmgr that ends lets its successor start. */
	master_services_update_all();
}

static void master_wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_service *svc = arg;
	static const char line[] = "W\n";

	if (svc->nchild == 0 || master.stopping)
		return;
	int sock = iox_unix_connect(svc->listen_addr, 1);

	if (sock < 0) {
		if (log_ratelimit("master-wakeup", 3, 600))
			log_warn("service %s: wake-up connect to %s failed: %s",
			    svc->name, svc->listen_addr, strerror(errno));
		return;
	}
	/* A full socket buffer means a wake-up is already pending. */
	if (write(sock, line, sizeof(line) - 1) < 0 && errno != EAGAIN)
		log_warn("service %s: wake-up write failed: %s", svc->name,
		    strerror(errno));
	close(sock);
}
