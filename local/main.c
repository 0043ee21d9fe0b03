/*
 * local - the local delivery agent.
 *
 * master starts it on demand for the "local" service. It keeps running
 * as root (it does not call service_drop_privileges) because each
 * delivery switches to the effective ids of the mailbox owner. It takes
 * one connection from qmgr at a time, reports BUSY while it serves one
 * and IDLE while it waits, and exits after max_use requests, after
 * max_idle seconds without a connection, or on a stop or drain request.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "local.h"
#include "log.h"
#include "resolve.h"
#include "service.h"

static int local_timeout_ms(const char *param)
{
	long seconds = config_time(param);

	if (seconds <= 0)
		seconds = 1;
	if (seconds > INT_MAX / 1000)
		seconds = INT_MAX / 1000;
	return (int)(seconds * 1000);
}

int main(int argc, char **argv)
{
	struct service svc;
	char *err = NULL;
	long max_use;
	int idle_ms, served = 0;

	service_init(&svc, "local", argc, argv);
	if (svc.listen_fd < 0)
		log_fatal("local takes its requests on a socket from master; "
		    "start it through master.cf");
	if (resolve_init(&err) < 0)
		log_fatal("cannot open the address class tables: %s", err);
	local_priv_init();

	max_use = config_int("max_use");
	if (max_use <= 0 || max_use > INT_MAX)
		max_use = INT_MAX;
	idle_ms = local_timeout_ms("max_idle");

	while (served < max_use) {
		long long started = iox_now_ms();
		int conn;

		service_report(&svc, SERVICE_STATE_IDLE);
		conn = service_accept(&svc, idle_ms);
		if (conn < 0) {
			if (service_stop_requested || service_drain_requested)
				break;
			if (iox_now_ms() - started >= idle_ms)
				break;
			/* An accept error: do not spin on it. */
			usleep(100 * 1000);
			continue;
		}
		service_report(&svc, SERVICE_STATE_BUSY);
		served += local_serve_connection(conn, (int)(max_use - served),
		    idle_ms);
		close(conn);
		if (service_stop_requested || service_drain_requested)
			break;
	}
	log_debug("exiting after %d requests", served);
	return 0;
}
