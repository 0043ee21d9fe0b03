/*
 * anvil: service setup, the listener, the sweep timer and signals.
 *
 * master runs exactly one anvil process (an event-driven singleton), so
 * every smtpd process sees the same counts. Run by hand for testing it
 * listens on private/anvil under queue_directory itself:
 *   anvil -c CONFIG_DIR
 *
 * SIGTERM and SIGUSR1 both end the process at once: its counts live
 * only in memory and smtpd treats a lost anvil as no limit, so a drain
 * has nothing to finish.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "anvil.h"
#include "anvil_proto.h"
#include "config.h"
#include "iox.h"
#include "log.h"
#include "service.h"

/* Seconds between sweeps of idents without connections. */
#define ANVIL_SWEEP_SECONDS 10
/* Maximum idents kept at once; about 200 bytes each. */
#define ANVIL_MAX_ENTRIES 100000

static struct service anvil_service;
static struct event_base *anvil_base;

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	iox_set_cloexec(fd, 1);
	anvil_conn_new(anvil_base, fd);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	anvil_table_sweep(anvil_counts, iox_now_ms());
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	log_info("stopping on signal %d with %zu connections and %zu clients",
	    (int)sig, anvil_conn_count(), anvil_table_size(anvil_counts));
	event_base_loopbreak(anvil_base);
}

/* The listening socket: from master, or made here when run by hand. */
static int listen_socket(void)
{
	const char *qdir = config_str("queue_directory");
	int fd;

	if (anvil_service.listen_fd >= 0)
		return anvil_service.listen_fd;
	if (chdir(qdir) < 0)
		log_fatal("cannot change to queue_directory %s: %s", qdir,
		    strerror(errno));
	fd = iox_unix_listen(ANVIL_SOCKET_NAME, 0600, 128);
	if (fd < 0)
		log_fatal("cannot listen on %s/%s: %s", qdir, ANVIL_SOCKET_NAME,
		    strerror(errno));
	return fd;
}

static void add_signal(int sig)
{
	struct event *ev = evsignal_new(anvil_base, sig, stop_cb, NULL);

	if (ev == NULL || event_add(ev, NULL) < 0)
		log_fatal("cannot watch signal %d", sig);
}

int main(int argc, char **argv)
{
	struct timeval sweep = {ANVIL_SWEEP_SECONDS, 0};
	struct evconnlistener *listener;
	struct event *sweep_timer;
	long rate_unit;
	int fd;

	service_init(&anvil_service, "anvil", argc, argv);
	rate_unit = config_time("anvil_rate_time_unit");
	if (rate_unit <= 0)
		log_fatal("invalid anvil_rate_time_unit %ld: use a positive "
		    "time such as 60s", rate_unit);
	anvil_counts = anvil_table_new(rate_unit * 1000LL, ANVIL_MAX_ENTRIES);

	fd = listen_socket();
	service_drop_privileges(&anvil_service);

	anvil_base = event_base_new();
	if (anvil_base == NULL)
		log_fatal("cannot create the event loop");
	iox_set_nonblock(fd, 1);
	listener = evconnlistener_new(anvil_base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (listener == NULL)
		log_fatal("cannot watch the listening socket: %s",
		    strerror(errno));
	sweep_timer = event_new(anvil_base, -1, EV_PERSIST, sweep_cb, NULL);
	evtimer_add(sweep_timer, &sweep);
	add_signal(SIGTERM);
	add_signal(SIGINT);
	add_signal(SIGUSR1);
	if (service_stop_requested || service_drain_requested)
		return 0;

	service_report(&anvil_service, SERVICE_STATE_IDLE);
	log_info("ready: anvil_rate_time_unit=%lds", rate_unit);
	event_base_dispatch(anvil_base);
	log_info("exiting");
	return 0;
}
