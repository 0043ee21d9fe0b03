/*
 * qmgr - the queue manager. One long-lived process on a libevent loop:
 * it takes new mail on wake-ups over public/qmgr (descriptor 3 from
 * master) and on timers, hands recipients to the delivery agents, and
 * keeps the deferred queue. See qmgr.h for how the files divide the work.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "qmgr.h"
#include "resolve.h"
#include "sbuf.h"
#include "service.h"
#include "wakeup.h"

/* Seconds between safety-net scans of incoming/, for lost wake-ups. */
#define MAIN_INCOMING_SCAN_SECONDS 5
/* Seconds a wake-up client may take to send its line. */
#define MAIN_WAKEUP_TIMEOUT 10
/* Maximum length of a wake-up line, in bytes. */
#define MAIN_WAKEUP_MAX_LINE 128
/* Seconds a drain waits for replies to requests already handed out. */
#define MAIN_DRAIN_SECONDS 20

struct qmgr_state qmgr;

static struct service svc;
static struct evconnlistener *listener;
static struct event *scan_ev, *incoming_ev, *lock_ev, *drain_ev;
static int active_dir_fd = -1;
static time_t drain_deadline;

/* A transport name from a "transport:nexthop" setting. */
static char *main_transport_name(const char *param)
{
	char *name = xstrdup(config_str(param));
	char *colon = strchr(name, ':');

	if (colon != NULL)
		*colon = '\0';
	return name;
}

static void main_load_settings(void)
{
	struct qmgr_settings *c = &qmgr.cfg;

	c->queue_run_delay = config_time("queue_run_delay");
	c->min_backoff = config_time("minimal_backoff_time");
	c->max_backoff = config_time("maximal_backoff_time");
	c->max_lifetime = config_time("maximal_queue_lifetime");
	c->bounce_lifetime = config_time("bounce_queue_lifetime");
	c->dest_limit = config_int("default_destination_concurrency_limit");
	c->local_dest_limit = config_int("local_destination_concurrency_limit");
	c->rcpt_limit = config_int("default_recipient_limit");
	c->process_limit = config_int("default_process_limit");
	c->active_limit = config_int("qmgr_message_active_limit");
	c->ipc_timeout = config_time("ipc_timeout");
	c->delay_warning = config_time("delay_warning_time");
	c->bounce_size_limit = config_int("bounce_size_limit");
	c->local_transport = main_transport_name("local_transport");
	c->virtual_transport = main_transport_name("virtual_transport");
	c->myhostname = xstrdup(config_str("myhostname"));
	if (c->queue_run_delay < 1)
		c->queue_run_delay = 1;
	if (c->active_limit < 1)
		c->active_limit = 1;
	if (c->ipc_timeout < 1)
		c->ipc_timeout = 1;
}

static void main_wakeup_line(const char *line)
{
	if (strcmp(line, "W") == 0) {
		qmgr_scan_incoming();
	} else if (strncmp(line, "W ", 2) == 0 && qid_valid(line + 2)) {
		qmgr_scan_take_incoming(line + 2);
	} else if (strcmp(line, "F") == 0) {
		log_info("flush requested: every deferred message is due now");
		qmgr_scan_deferred(1);
		qmgr_scan_incoming();
	} else if (log_ratelimit("qmgr-wakeup", 5, 60)) {
		char clean[MAIN_WAKEUP_MAX_LINE];

		str_sanitize(clean, sizeof(clean), line, strlen(line));
		log_warn("invalid wake-up line ignored: \"%s\"", clean);
	}
}

static void main_wakeup_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	(void)arg;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		if (!qmgr.draining)
			main_wakeup_line(line);
		free(line);
	}
	if (evbuffer_get_length(in) > MAIN_WAKEUP_MAX_LINE)
		bufferevent_free(bev);
}

static void main_wakeup_event_cb(struct bufferevent *bev, short what,
    void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void main_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct timeval tv = { MAIN_WAKEUP_TIMEOUT, 0 };
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	bev = bufferevent_socket_new(qmgr.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, main_wakeup_read_cb, NULL, main_wakeup_event_cb,
	    NULL);
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void main_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	qmgr_scan_incoming();
	qmgr_scan_deferred(0);
	qmgr_scan_clean_tmp();
}

static void main_incoming_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	qmgr_scan_incoming();
}

/* Starts the work once this process is the only qmgr on active/. */
static void main_start_work(void)
{
	struct timeval run = { qmgr.cfg.queue_run_delay, 0 };
	struct timeval safety = { MAIN_INCOMING_SCAN_SECONDS, 0 };

	evconnlistener_enable(listener);
	scan_ev = event_new(qmgr.base, -1, EV_PERSIST, main_scan_cb, NULL);
	incoming_ev = event_new(qmgr.base, -1, EV_PERSIST, main_incoming_cb,
	    NULL);
	evtimer_add(scan_ev, &run);
	evtimer_add(incoming_ev, &safety);

	qmgr_scan_recover();
	qmgr_scan_incoming();
	qmgr_scan_deferred(0);
	qmgr_scan_clean_tmp();
}

/*
 * A qmgr that is draining after a reload may still own messages. The new
 * one waits for its exclusive flock() on active/, so that two processes
 * never hand out the same recipient.
 */
static void main_lock_cb(evutil_socket_t fd, short what, void *arg)
{
	static int logged;
	struct timeval tv = { 1, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	if (qmgr.draining)
		return;
	if (flock(active_dir_fd, LOCK_EX | LOCK_NB) == 0) {
		if (logged)
			log_info("the previous qmgr has exited; starting");
		main_start_work();
		return;
	}
	if (errno != EWOULDBLOCK)
		log_fatal("cannot lock %s/: %s", QDIR_ACTIVE, strerror(errno));
	if (!logged++)
		log_info("waiting for the previous qmgr to release %s/",
		    QDIR_ACTIVE);
	evtimer_add(lock_ev, &tv);
}

static void main_term_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	/* Files stay in active/; the next qmgr takes them and skips the
	 * recipients that the agents marked meanwhile. */
	log_info("stopping on SIGTERM with %zu messages in memory", qmgr.nmsgs);
	event_base_loopbreak(qmgr.base);
}

static void main_drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (qmgr_dispatch_inflight() == 0 || time(NULL) >= drain_deadline) {
		log_info("drained with %zu requests still in flight",
		    qmgr_dispatch_inflight());
		event_base_loopbreak(qmgr.base);
	}
}

static void main_drain_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = { 0, 200 * 1000 };

	(void)sig;
	(void)what;
	(void)arg;
	if (qmgr.draining)
		return;
	log_info("draining: no new work, waiting up to %d s for %zu requests",
	    MAIN_DRAIN_SECONDS, qmgr_dispatch_inflight());
	qmgr.draining = 1;
	evconnlistener_disable(listener);
	if (scan_ev != NULL)
		evtimer_del(scan_ev);
	if (incoming_ev != NULL)
		evtimer_del(incoming_ev);
	qmgr_dispatch_drop_queued();
	drain_deadline = time(NULL) + MAIN_DRAIN_SECONDS;
	drain_ev = event_new(qmgr.base, -1, EV_PERSIST, main_drain_check_cb,
	    NULL);
	evtimer_add(drain_ev, &tv);
}

/* Opens the queue directory, the tables and the wake-up socket, then
 * drops privileges. Exits on failure. */
static int main_setup(void)
{
	const char *qdir = config_str("queue_directory");
	char *err = NULL;
	int fd = svc.listen_fd;

	if (chdir(qdir) < 0)
		log_fatal("cannot change to queue_directory %s: %s", qdir,
		    strerror(errno));
	if (resolve_init(&err) < 0)
		log_fatal("cannot open the routing tables: %s", err);
	if (fd < 0) {
		fd = iox_unix_listen(QMGR_SOCKET_NAME, 0666, 128);
		if (fd < 0)
			log_fatal("cannot listen on %s/%s: %s", qdir,
			    QMGR_SOCKET_NAME, strerror(errno));
	}
	active_dir_fd = open(QDIR_ACTIVE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (active_dir_fd < 0)
		log_fatal("cannot open %s/%s: %s", qdir, QDIR_ACTIVE,
		    strerror(errno));
	service_drop_privileges(&svc);
	iox_set_nonblock(fd, 1);
	return fd;
}

int main(int argc, char **argv)
{
	struct event *term_ev, *usr1_ev;
	int fd;

	service_init(&svc, "qmgr", argc, argv);
	main_load_settings();
	TAILQ_INIT(&qmgr.msgs);
	fd = main_setup();

	qmgr.base = event_base_new();
	if (qmgr.base == NULL)
		log_fatal("cannot create the event loop");
	listener = evconnlistener_new(qmgr.base, main_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, -1, fd);
	if (listener == NULL)
		log_fatal("cannot watch the wake-up socket: %s",
		    strerror(errno));
	term_ev = evsignal_new(qmgr.base, SIGTERM, main_term_cb, NULL);
	usr1_ev = evsignal_new(qmgr.base, SIGUSR1, main_drain_cb, NULL);
	evsignal_add(term_ev, NULL);
	evsignal_add(usr1_ev, NULL);
	lock_ev = evtimer_new(qmgr.base, main_lock_cb, NULL);
	/* A signal that came before the events above set only the flags of
	 * service_init's handlers. */
	if (service_stop_requested)
		return 0;

	log_info("started: queue_run_delay=%lds, minimal_backoff_time=%lds, "
	    "maximal_backoff_time=%lds", qmgr.cfg.queue_run_delay,
	    qmgr.cfg.min_backoff, qmgr.cfg.max_backoff);
	service_report(&svc, SERVICE_STATE_IDLE);
	main_lock_cb(-1, 0, NULL);
	if (service_drain_requested)
		main_drain_cb(SIGUSR1, 0, NULL);

	event_base_dispatch(qmgr.base);
	log_info("exiting");
	return 0;
}
