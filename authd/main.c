/*
 * authd - verifies SMTP AUTH credentials with Cyrus libsasl2 for smtpd.
 * One process on a libevent loop serves every smtpd over private/authd
 * (descriptor 3 from master); see authd.h for how the files divide the
 * work and lib/authd_client.h for the protocol.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "authd.h"
#include "config.h"
#include "iox.h"
#include "log.h"
#include "service.h"

/* Seconds between sweeps of idle sessions and expired throttle keys. */
#define AUTHD_SWEEP_SECONDS 10
/* Maximum keys in the throttle table (two per failing client at most). */
#define AUTHD_THROTTLE_MAX_KEYS 200000
/* Seconds a drain waits for the workers to return. */
#define AUTHD_DRAIN_SECONDS 10

struct authd_settings authd_cfg;
struct event_base *authd_base;
struct throttle *authd_throttle;

static struct service svc;
static struct evconnlistener *listener;
static struct event *drain_ev;
static long long drain_deadline_ms;

static long authd_duration_param(const char *name)
{
	long ms = authd_parse_duration_ms(config_str(name));

	if (ms < 0)
		log_fatal("invalid value \"%s\" for parameter %s: expected a "
		    "number with an optional unit ms, s, m or h",
		    config_str(name), name);
	return ms;
}

static void authd_load_settings(void)
{
	authd_cfg.throttle.delay_ms = authd_duration_param("authd_failure_delay");
	authd_cfg.throttle.delay_limit_ms =
	    authd_duration_param("authd_failure_delay_limit");
	authd_cfg.throttle.window_ms = authd_duration_param("authd_lockout_window");
	authd_cfg.throttle.max_failures = (int)config_int("authd_lockout_failures");
	authd_cfg.session_timeout_ms = config_time("authd_session_timeout") * 1000;
	if (authd_cfg.throttle.max_failures < 1)
		log_fatal("invalid value %d for parameter authd_lockout_failures: "
		    "expected 1 or more", authd_cfg.throttle.max_failures);
}

/*
 * Switches to authd_user, the only user that should read the sasldb.
 * authd ignores -u (mail_owner) on purpose, and -r: libsasl2 loads its
 * plugins and the sasldb from the real file system.
 */
static void authd_drop_privileges(void)
{
	const char *name = config_str("authd_user");
	struct passwd *pw;

	if (geteuid() != 0) {
		log_info("running as uid %ld, not root: keeping the user",
		    (long)geteuid());
		return;
	}
	if (svc.chroot)
		log_warn("ignoring chroot for authd: libsasl2 needs the plugin "
		    "directory and the sasldb");
	pw = getpwnam(name);
	if (pw == NULL)
		log_fatal("authd_user \"%s\" not found: create it (see "
		    "scripts/install-deps.sh) or set authd_user in main.cf", name);
	if (pw->pw_uid == 0)
		log_fatal("authd_user \"%s\" is root: set an unprivileged user",
		    name);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0
	    || setuid(pw->pw_uid) < 0)
		log_fatal("cannot switch to authd_user %s: %s", name,
		    strerror(errno));
	if (setuid(0) == 0 || geteuid() == 0)
		log_fatal("root privileges could be regained after switching to "
		    "authd_user %s", name);
}

static void authd_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	iox_set_cloexec(fd, 1);
	authd_conn_new(fd);
}

static void authd_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	authd_session_sweep(iox_now_ms());
}

static void authd_term_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	log_info("stopping on SIGTERM with %zu connections", authd_conn_count());
	event_base_loopbreak(authd_base);
}

static void authd_drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (authd_pool_inflight() > 0 && iox_now_ms() < drain_deadline_ms)
		return;
	/* Exchanges waiting for the client's next step are lost; smtpd
	 * answers them with a temporary failure. */
	log_info("drained: closing %zu connections", authd_conn_count());
	authd_conn_close_all();
	event_base_loopbreak(authd_base);
}

static void authd_drain_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = { 0, 100 * 1000 };

	(void)sig;
	(void)what;
	(void)arg;
	if (drain_ev != NULL)
		return;
	log_info("draining: no new connections, waiting for %zu checks",
	    authd_pool_inflight());
	evconnlistener_disable(listener);
	drain_deadline_ms = iox_now_ms() + AUTHD_DRAIN_SECONDS * 1000;
	drain_ev = event_new(authd_base, -1, EV_PERSIST, authd_drain_check_cb,
	    NULL);
	evtimer_add(drain_ev, &tv);
}

/* The listening socket: from master, or made here when run by hand. */
static int authd_listen_fd(void)
{
	const char *qdir = config_str("queue_directory");
	int fd = svc.listen_fd;

	if (fd >= 0)
		return fd;
	if (chdir(qdir) < 0)
		log_fatal("cannot change to queue_directory %s: %s", qdir,
		    strerror(errno));
	fd = iox_unix_listen(AUTHD_SOCKET_NAME, 0600, 128);
	if (fd < 0)
		log_fatal("cannot listen on %s/%s: %s", qdir, AUTHD_SOCKET_NAME,
		    strerror(errno));
	return fd;
}

static void authd_setup_events(int fd)
{
	struct timeval sweep = { AUTHD_SWEEP_SECONDS, 0 };
	struct event *ev;

	authd_base = event_base_new();
	if (authd_base == NULL)
		log_fatal("cannot create the event loop");
	iox_set_nonblock(fd, 1);
	listener = evconnlistener_new(authd_base, authd_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (listener == NULL)
		log_fatal("cannot watch the listening socket: %s", strerror(errno));
	ev = evsignal_new(authd_base, SIGTERM, authd_term_cb, NULL);
	evsignal_add(ev, NULL);
	ev = evsignal_new(authd_base, SIGUSR1, authd_drain_cb, NULL);
	evsignal_add(ev, NULL);
	ev = event_new(authd_base, -1, EV_PERSIST, authd_sweep_cb, NULL);
	evtimer_add(ev, &sweep);
}

int main(int argc, char **argv)
{
	int fd;
	long workers;

	service_init(&svc, "authd", argc, argv);
	authd_load_settings();
	workers = config_int("authd_worker_count");
	if (workers < 1 || workers > 256)
		log_fatal("invalid value %ld for parameter authd_worker_count: "
		    "expected 1 to 256", workers);
	authd_throttle = throttle_new(&authd_cfg.throttle,
	    AUTHD_THROTTLE_MAX_KEYS);

	fd = authd_listen_fd();
	authd_sasl_init(config_str("smtpd_sasl_service"),
	    config_str("authd_sasl_config_directory"),
	    config_str("authd_mechanisms"));
	authd_drop_privileges();

	authd_setup_events(fd);
	authd_pool_start(authd_base, (int)workers);
	if (service_stop_requested)
		return 0;

	log_info("started: %ld workers, authd_failure_delay=%ldms, "
	    "authd_failure_delay_limit=%ldms, authd_lockout_failures=%d, "
	    "authd_lockout_window=%lds", workers, authd_cfg.throttle.delay_ms,
	    authd_cfg.throttle.delay_limit_ms, authd_cfg.throttle.max_failures,
	    authd_cfg.throttle.window_ms / 1000);
	service_report(&svc, SERVICE_STATE_IDLE);
	if (service_drain_requested)
		authd_drain_cb(SIGUSR1, 0, NULL);

	event_base_dispatch(authd_base);
	log_info("exiting");
	return 0;
}
