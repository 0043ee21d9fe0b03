/*
 * smtp - the SMTP delivery agent: the service loop and the cache of one
 * open connection.
 *
 * master starts the agent on demand; it takes one request per qmgr
 * connection, serves up to max_use requests and exits after max_idle
 * seconds without one. While a cached connection waits for reuse the
 * process reports itself idle, because it can take any request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "service.h"
#include "smtp.h"

/* Milliseconds by which a timed wait may seem to end early. */
#define MAIN_SLACK_MS 5

/* A timeout parameter in milliseconds, capped to fit an int. */
static int main_timeout_ms(const char *name)
{
	long sec = config_time(name);

	if (sec <= 0)
		log_fatal("%s must be a positive time, not \"%s\"", name,
		    config_str(name));
	if (sec > 86400)
		sec = 86400;
	return (int)(sec * 1000);
}

/* Sets up the MX lookups: the resolver, the limits and this host's
 * names and addresses. Runs before a chroot, which hides resolv.conf. */
static void main_configure_routes(struct smtp_agent *agent)
{
	char *err = NULL;

	agent->mx_address_limit = config_int("smtp_mx_address_limit");
	agent->mx_session_limit = config_int("smtp_mx_session_limit");
	if (agent->mx_address_limit < 0 || agent->mx_session_limit < 0)
		log_fatal("smtp_mx_address_limit and smtp_mx_session_limit "
		    "must be 0 (no limit) or more, not %ld and %ld",
		    agent->mx_address_limit, agent->mx_session_limit);
	if (smtp_dns_init(config_str("smtp_dns_resolver_address"), &err) < 0)
		log_fatal("%s", err);
	if (smtp_self_init(&agent->self, config_str("myhostname"),
	    config_str("inet_interfaces"), &err) < 0)
		log_fatal("%s", err);
	srandom((unsigned)(iox_now_ms() ^ (long long)getpid() << 16));
}

/* lmtp is 1 for LMTP mode: the master.cf service name is "lmtp". */
static void main_configure(struct smtp_agent *agent, int lmtp)
{
	const char *bind = config_str("smtp_bind_address");
	const char *helo_param = lmtp ? "lmtp_lhlo_name" : "smtp_helo_name";

	memset(agent, 0, sizeof(*agent));
	agent->lmtp = lmtp;
	agent->timeouts.connect = main_timeout_ms("smtp_connect_timeout");
	agent->timeouts.helo = main_timeout_ms("smtp_helo_timeout");
	agent->timeouts.mail = main_timeout_ms("smtp_mail_timeout");
	agent->timeouts.rcpt = main_timeout_ms("smtp_rcpt_timeout");
	agent->timeouts.data_init = main_timeout_ms("smtp_data_init_timeout");
	agent->timeouts.data_xfer = main_timeout_ms("smtp_data_xfer_timeout");
	agent->timeouts.data_done = main_timeout_ms("smtp_data_done_timeout");
	agent->timeouts.quit = main_timeout_ms("smtp_quit_timeout");
	agent->ipc_timeout_ms = main_timeout_ms("ipc_timeout");
	agent->cache_time_ms = config_time("smtp_connection_cache_time_limit")
	    * 1000L;
	agent->helo_name = xstrdup(config_str(helo_param));
	agent->bind_address = *bind != '\0' ? xstrdup(bind) : NULL;
	if (*agent->helo_name == '\0' || strpbrk(agent->helo_name,
	    " \t\r\n") != NULL)
		log_fatal("%s must be one host name, not \"%s\"", helo_param,
		    agent->helo_name);
	main_configure_routes(agent);
}

/* Takes the cached connection when it serves the same next hop and
 * survives RSET; otherwise closes it. */
static struct smtp_conn *main_take_cached(struct smtp_agent *agent,
    const struct smtp_request *req)
{
	struct smtp_conn *c = agent->cached;

	agent->cached = NULL;
	if (c == NULL)
		return NULL;
	if (strcmp(c->nexthop, req->nexthop) != 0) {
		smtp_session_quit(agent, &c);
		return NULL;
	}
	if (smtp_session_reset(agent, c) < 0) {
		log_info("%s: cached connection to %s is no longer usable; "
		    "opening a new one", req->qid, c->relay);
		smtp_conn_free(&c);
		return NULL;
	}
	return c;
}

void smtp_deliver(struct smtp_agent *agent, struct smtp_request *req)
{
	struct smtp_conn *c;
	size_t pending = 0;
	int clean;

	/* Recipients that request.c already settled need no session. */
	for (size_t i = 0; i < req->nrcpt; i++)
		pending += !req->rcpts[i].skip;
	if (pending == 0)
		return;

	c = main_take_cached(agent, req);
	if (c == NULL)
		c = smtp_session_open(agent, req);
	if (c == NULL)
		return;
	snprintf(req->relay, sizeof(req->relay), "%s", c->relay);

	clean = smtp_transaction(agent, c, req);
	if (!clean) {
		smtp_conn_free(&c);
		return;
	}
	if (agent->cache_time_ms <= 0) {
		smtp_session_quit(agent, &c);
		return;
	}
	c->idle_since_ms = iox_now_ms();
	agent->cached = c;
}

/* Milliseconds to wait for the next request. */
static long long main_wait_ms(const struct smtp_agent *agent,
    long long idle_deadline)
{
	long long now = iox_now_ms();
	long long wait = idle_deadline - now;

	if (agent->cached != NULL) {
		long long cache_left = agent->cached->idle_since_ms
		    + agent->cache_time_ms - now;

		if (cache_left < wait)
			wait = cache_left;
	}
	return wait < 0 ? 0 : wait;
}

/*
 * Waits for requests and serves them until max_use, max_idle, a stop or
 * a drain request, or an accept error.
 */
static void main_loop(struct service *svc, struct smtp_agent *agent)
{
	long max_use = config_int("max_use");
	long long max_idle_ms = config_time("max_idle") * 1000LL;
	long long idle_deadline = iox_now_ms() + max_idle_ms;
	long served = 0;

	while (!service_stop_requested && !service_drain_requested) {
		long long start = iox_now_ms();
		long long wait = main_wait_ms(agent, idle_deadline);
		int fd = service_accept(svc, (int)wait);
		long long now = iox_now_ms();

		if (fd < 0) {
			if (service_stop_requested || service_drain_requested)
				break;
			/* service_accept also returns -1 early on an error
			 * (logged); the slack covers clock rounding. */
			if (now - start + MAIN_SLACK_MS < wait) {
				log_error("stopping after an error on the "
				    "listening socket");
				break;
			}
			if (agent->cached != NULL && now + MAIN_SLACK_MS >=
			    agent->cached->idle_since_ms + agent->cache_time_ms)
				smtp_session_quit(agent, &agent->cached);
			if (now + MAIN_SLACK_MS >= idle_deadline)
				break;
			continue;
		}

		service_report(svc, SERVICE_STATE_BUSY);
		(void)smtp_request_serve(agent, fd);
		close(fd);
		served++;
		if (max_use > 0 && served >= max_use)
			break;
		service_report(svc, SERVICE_STATE_IDLE);
		idle_deadline = iox_now_ms() + max_idle_ms;
	}
}

int main(int argc, char **argv)
{
	struct service svc;
	struct smtp_agent agent;
	const char *queue_dir;

	service_init(&svc, "smtp", argc, argv);
	main_configure(&agent, strcmp(svc.name, "lmtp") == 0);
	queue_dir = config_str("queue_directory");
	/* Queue file paths in requests are relative to queue_directory,
	 * which is also the root after a chroot. */
	if (chdir(queue_dir) < 0)
		log_fatal("cannot change to queue_directory %s: %s", queue_dir,
		    strerror(errno));
	service_drop_privileges(&svc);
	if (svc.listen_fd < 0)
		log_fatal("smtp is started by master; it has no listening "
		    "socket when run by hand");

	service_report(&svc, SERVICE_STATE_IDLE);
	main_loop(&svc, &agent);

	smtp_session_quit(&agent, &agent.cached);
	free(agent.helo_name);
	free(agent.bind_address);
	smtp_self_free(&agent.self);
	return 0;
}
