/*
 * smtpd: service setup, settings, the listener and signals.
 *
 * Started by master with the listening socket at descriptor 3. Run by
 * hand for testing, "-L host:port" makes it listen by itself:
 *   smtpd -c CONFIG_DIR -L 127.0.0.1:44025
 *
 * SIGTERM stops at once: each session gets 421 (a session waiting for
 * its commit gets the commit's reply first) and the process exits when
 * the last one is gone, or after STOP_GRACE_SEC. SIGUSR1 drains: no new
 * connections, exit when the last session ends.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "netaddr.h"
#include "resolve.h"
#include "sbuf.h"
#include "service.h"
#include "smtpd.h"

#define STOP_GRACE_SEC 5
#define ACCEPT_PAUSE_SEC 1
#define DNS_TIMEOUT "1"       /* seconds per DNS attempt */
#define DNS_ATTEMPTS "2"

struct smtpd_settings smtpd_settings;
struct event_base *smtpd_event_base;
struct evdns_base *smtpd_dns_base;
int smtpd_stopping;

static int smtpd_draining;
static struct evconnlistener *smtpd_listener;
static struct event *accept_pause_timer;
static struct service smtpd_service;

/*
 * Removes "-L host:port" from argv, so the rest goes to service_init
 * unchanged. Returns the address or NULL.
 */
static char *take_listen_option(int *argc, char **argv)
{
	char *addr = NULL;
	int out = 0;

	for (int i = 0; i < *argc; i++) {
		if (i > 0 && strcmp(argv[i], "-L") == 0 && i + 1 < *argc) {
			addr = argv[++i];
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	*argc = out;
	return addr;
}

/* smtpd_forbid_bare_newline: "yes" or "reject" reject bare CR and LF in
 * DATA; "normalize" or "no" treat them as line ends. Either way only
 * <CRLF>.<CRLF> ends the data. */
static int bare_newline_setting(void)
{
	const char *v = config_str("smtpd_forbid_bare_newline");

	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "reject") == 0)
		return 0;
	if (strcasecmp(v, "normalize") == 0 || strcasecmp(v, "no") == 0)
		return 1;
	log_fatal("invalid smtpd_forbid_bare_newline value \"%s\": use yes, "
	    "reject, normalize or no", v);
}

static void settings_load(void)
{
	struct smtpd_settings *s = &smtpd_settings;
	char *err = NULL;
	long line_limit = config_int("line_length_limit");

	s->myhostname = config_str("myhostname");
	s->banner = config_str("smtpd_banner");
	s->mail_name = config_str("mail_name");
	s->queue_dir = config_str("queue_directory");
	s->message_size_limit = config_int("message_size_limit");
	s->header_size_limit = config_int("header_size_limit");
	/* RFC 5321 4.5.3.1.4: a command line may have 512 octets. */
	if (line_limit < 512) {
		log_warn("line_length_limit %ld is below 512; using 512",
		    line_limit);
		line_limit = 512;
	}
	s->line_length_limit = (size_t)line_limit;
	s->timeout = config_time("smtpd_timeout");
	s->recipient_limit = config_int("smtpd_recipient_limit");
	s->recipient_overshoot_limit =
	    config_int("smtpd_recipient_overshoot_limit");
	s->hard_error_limit = config_int("smtpd_hard_error_limit");
	s->connection_limit = config_int("smtpd_client_connection_limit");
	s->per_request_deadline = config_bool("smtpd_per_request_deadline");
	s->min_data_rate = config_int("smtpd_min_data_rate");
	if (s->min_data_rate <= 0)
		log_fatal("invalid smtpd_min_data_rate %ld: use a positive "
		    "number of bytes per second", s->min_data_rate);
	s->normalize_bare_newline = bare_newline_setting();
	s->peername_lookup = config_bool("smtpd_peername_lookup");
	s->disable_vrfy = config_bool("disable_vrfy_command");
	if (s->message_size_limit < 0 || s->header_size_limit < 0 ||
	    s->recipient_overshoot_limit < 0 ||
	    s->timeout <= 0 || s->recipient_limit <= 0 ||
	    s->hard_error_limit <= 0 || s->connection_limit <= 0)
		log_fatal("invalid smtpd limits: message_size_limit, "
		    "header_size_limit and smtpd_recipient_overshoot_limit "
		    "must be 0 or more; smtpd_timeout, "
		    "smtpd_recipient_limit, smtpd_hard_error_limit and "
		    "smtpd_client_connection_limit must be positive");
	s->mynetworks = cidr_list_parse(config_str("mynetworks"), &err);
	if (s->mynetworks == NULL)
		log_fatal("invalid mynetworks: %s", err ? err : "parse error");
}

static void dns_setup(void)
{
	if (!smtpd_settings.peername_lookup)
		return;
	smtpd_dns_base = evdns_base_new(smtpd_event_base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (smtpd_dns_base == NULL) {
		log_warn("cannot start the DNS resolver; client names will "
		    "be \"unknown\"");
		return;
	}
	evdns_base_set_option(smtpd_dns_base, "timeout", DNS_TIMEOUT);
	evdns_base_set_option(smtpd_dns_base, "attempts", DNS_ATTEMPTS);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	smtpd_session_new(fd, sa, (socklen_t)salen);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!smtpd_stopping && !smtpd_draining)
		evconnlistener_enable(smtpd_listener);
}

/* Out of descriptors or memory: pause accepting instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {ACCEPT_PAUSE_SEC, 0};

	if (log_ratelimit("smtpd-accept", 3, 60))
		log_warn("accept failed: %s; pausing for %d s",
		    strerror(err), ACCEPT_PAUSE_SEC);
	evconnlistener_disable(l);
	evtimer_add(accept_pause_timer, &tv);
}

void smtpd_main_session_gone(void)
{
	if ((smtpd_stopping || smtpd_draining) && smtpd_session_count() == 0)
		event_base_loopexit(smtpd_event_base, NULL);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval grace = {STOP_GRACE_SEC, 0};

	if (smtpd_stopping)
		return;
	log_info("stopping on signal %d with %d sessions", (int)sig,
	    smtpd_session_count());
	smtpd_stopping = 1;
	evconnlistener_disable(smtpd_listener);
	smtpd_session_stop_all();
	event_base_loopexit(smtpd_event_base, &grace);
	smtpd_main_session_gone();
}

static void drain_cb(evutil_socket_t sig, short what, void *arg)
{
	if (smtpd_draining)
		return;
	log_info("draining: no new connections, %d sessions left",
	    smtpd_session_count());
	smtpd_draining = 1;
	evconnlistener_disable(smtpd_listener);
	smtpd_main_session_gone();
}

static int open_listener(const char *listen_addr)
{
	char *err = NULL;
	int fd;

	if (smtpd_service.listen_fd >= 0)
		return smtpd_service.listen_fd;
	if (listen_addr == NULL)
		log_fatal("no listening socket: run smtpd from master, or give "
		    "-L host:port to listen by hand");
	fd = iox_inet_listen(listen_addr, 1024, &err);
	if (fd < 0)
		log_fatal("cannot listen on %s: %s", listen_addr,
		    err ? err : strerror(errno));
	return fd;
}

static void add_signal(int sig, event_callback_fn cb)
{
	struct event *ev = evsignal_new(smtpd_event_base, sig, cb, NULL);

	if (ev == NULL || event_add(ev, NULL) < 0)
		log_fatal("cannot watch signal %d", sig);
}

int main(int argc, char **argv)
{
	char *listen_addr = take_listen_option(&argc, argv);
	char *err = NULL;
	int fd;

	service_init(&smtpd_service, "smtpd", argc, argv);
	settings_load();
	smtpd_settings.service_name = smtpd_service.name;
	smtpd_limits_init();
	smtpd_policy_init();
	smtpd_auth_init();
	smtpd_tls_init(smtpd_service.name);
	if (resolve_init(&err) < 0)
		log_fatal("cannot open the address tables: %s", err);
	smtpd_lookup_init();

	smtpd_event_base = event_base_new();
	if (smtpd_event_base == NULL)
		log_fatal("cannot create the event loop");
	dns_setup();
	fd = open_listener(listen_addr);
	iox_set_nonblock(fd, 1);

	service_drop_privileges(&smtpd_service);
	if (smtpd_service.chroot)
		smtpd_settings.queue_dir = "/";

	if (smtpd_commit_init(smtpd_event_base) < 0)
		log_fatal("cannot start the commit thread: %s", strerror(errno));
	smtpd_session_init();
	smtpd_listener = evconnlistener_new(smtpd_event_base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (smtpd_listener == NULL)
		log_fatal("cannot watch the listening socket");
	evconnlistener_set_error_cb(smtpd_listener, accept_error_cb);
	accept_pause_timer = evtimer_new(smtpd_event_base, accept_resume_cb,
	    NULL);

	add_signal(SIGTERM, stop_cb);
	add_signal(SIGINT, stop_cb);
	add_signal(SIGUSR1, drain_cb);

	service_report(&smtpd_service, SERVICE_STATE_IDLE);
	log_info("ready: service %s, %s", smtpd_service.name,
	    smtpd_service.listen_fd >= 0 ? "socket from master" : listen_addr);
	event_base_dispatch(smtpd_event_base);
	log_info("exiting");
	return 0;
}
