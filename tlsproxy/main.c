/*
 * tlsproxy: service setup, the listener on private/tlsproxy, signals and
 * session bookkeeping.
 *
 * Keys are read as root in tlsproxy_server_init(), and the client role's
 * trust anchors in tlsproxy_client_init(), before the privilege drop and
 * the chroot. A reload makes master start a new generation of processes,
 * which load both again. master sends SIGUSR1 to the old ones: those stop
 * accepting and exit when their last session ends, so renewed
 * certificates apply to new sessions without cutting live ones.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "service.h"
#include "tlsproxy.h"

#define STOP_GRACE_SEC 2
#define ACCEPT_PAUSE_SEC 1

struct event_base *tlsproxy_base;
long tlsproxy_timeout_sec;

static struct service tlsproxy_service;
static struct evconnlistener *listener;
static struct event *accept_pause_timer;
static unsigned long session_serial;
static int session_count;
static int draining, stopping;

static void exit_if_idle(void)
{
	if ((draining || stopping) && session_count == 0)
		event_base_loopexit(tlsproxy_base, NULL);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tlsproxy_session *s = arg;

	if (s->state == TLSPROXY_RELAY) {
		log_info("%s: closing after %ld s without progress at the end "
		    "of the session", s->peer, tlsproxy_timeout_sec);
		tlsproxy_session_free(s);
		return;
	}
	if (s->state == TLSPROXY_HANDSHAKE) {
		tlsproxy_fail(s, "TLS handshake timed out");
		return;
	}
	if (log_ratelimit("tlsproxy-timeout", 10, 60))
		log_warn("%s: timed out %s", s->peer[0] ? s->peer : "caller",
		    s->state == TLSPROXY_REQUEST ? "reading the request"
		    : "sending the reply");
	tlsproxy_session_free(s);
}

void tlsproxy_session_deadline(struct tlsproxy_session *s, long seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(s->timer_ev, &tv);
}

static void event_drop(struct event **ev)
{
	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
}

void tlsproxy_session_free(struct tlsproxy_session *s)
{
	event_drop(&s->ctl_read_ev);
	event_drop(&s->ctl_write_ev);
	event_drop(&s->net_read_ev);
	event_drop(&s->net_write_ev);
	event_drop(&s->timer_ev);
	if (s->tls != NULL)
		gnutls_deinit(s->tls);
	if (s->net_fd >= 0)
		close(s->net_fd);
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	attr_decoder_free(&s->decoder);
	attrs_free(&s->request);
	sbuf_free(&s->early);
	sbuf_free(&s->reply);
	free(s->match);
	explicit_bzero(s->to_net, sizeof(s->to_net));
	explicit_bzero(s->to_ctl, sizeof(s->to_ctl));
	free(s);
	session_count--;
	exit_if_idle();
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tlsproxy_session *s = xcalloc(1, sizeof(*s));

	s->id = ++session_serial;
	s->ctl_fd = fd;
	s->net_fd = -1;
	iox_set_nonblock(fd, 1);
	s->timer_ev = evtimer_new(tlsproxy_base, deadline_cb, s);
	if (s->timer_ev == NULL)
		log_panic("cannot create a timer event");
	session_count++;
	tlsproxy_request_start(s);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!draining && !stopping)
		evconnlistener_enable(listener);
}

/* Out of descriptors or memory: pause accepting instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {ACCEPT_PAUSE_SEC, 0};

	if (log_ratelimit("tlsproxy-accept", 3, 60))
		log_warn("accept failed: %s; pausing for %d s", strerror(err),
		    ACCEPT_PAUSE_SEC);
	evconnlistener_disable(l);
	evtimer_add(accept_pause_timer, &tv);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval grace = {STOP_GRACE_SEC, 0};

	log_info("stopping on signal %d with %d sessions", (int)sig,
	    session_count);
	stopping = 1;
	evconnlistener_disable(listener);
	/* Sessions end when the process exits; the peers see the
	 * connection close. */
	event_base_loopexit(tlsproxy_base, &grace);
	exit_if_idle();
}

static void drain_cb(evutil_socket_t sig, short what, void *arg)
{
	if (draining)
		return;
	log_info("draining: no new requests, %d sessions left", session_count);
	draining = 1;
	evconnlistener_disable(listener);
	exit_if_idle();
}

static void add_signal(int sig, event_callback_fn cb)
{
	struct event *ev = evsignal_new(tlsproxy_base, sig, cb, NULL);

	if (ev == NULL || event_add(ev, NULL) < 0)
		log_fatal("cannot watch signal %d", sig);
}

int main(int argc, char **argv)
{
	int rc;

	service_init(&tlsproxy_service, "tlsproxy", argc, argv);
	if (tlsproxy_service.listen_fd < 0)
		log_fatal("no listening socket: tlsproxy runs under master");
	tlsproxy_timeout_sec = config_time("tlsproxy_timeout");
	if (tlsproxy_timeout_sec <= 0)
		log_fatal("invalid tlsproxy_timeout: it must be positive");
	rc = gnutls_global_init();
	if (rc < 0)
		log_fatal("cannot initialize GnuTLS: %s", gnutls_strerror(rc));

	tlsproxy_server_init();
	tlsproxy_client_init();
	service_drop_privileges(&tlsproxy_service);

	tlsproxy_base = event_base_new();
	if (tlsproxy_base == NULL)
		log_fatal("cannot create the event loop");
	iox_set_nonblock(tlsproxy_service.listen_fd, 1);
	listener = evconnlistener_new(tlsproxy_base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, -1, tlsproxy_service.listen_fd);
	if (listener == NULL)
		log_fatal("cannot watch the listening socket");
	evconnlistener_set_error_cb(listener, accept_error_cb);
	accept_pause_timer = evtimer_new(tlsproxy_base, accept_resume_cb, NULL);

	add_signal(SIGTERM, stop_cb);
	add_signal(SIGINT, stop_cb);
	add_signal(SIGUSR1, drain_cb);

	service_report(&tlsproxy_service, SERVICE_STATE_IDLE);
	log_info("ready: service %s, server role %s", tlsproxy_service.name,
	    tlsproxy_server_ready() ? "configured" : "without certificates");
	event_base_dispatch(tlsproxy_base);
	log_info("exiting");
	return 0;
}
