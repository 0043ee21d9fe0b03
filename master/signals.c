/*
 * Signals to master: SIGCHLD reaps children, SIGHUP reloads the
 * configuration, SIGTERM and SIGINT stop everything. libevent turns each
 * signal into an event on the loop, so the handlers run as normal code.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "master.h"

static void master_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_child_exited(pid, status);
	if (pid < 0 && errno != ECHILD)
		log_error("waitpid: %s", strerror(errno));
}

static void master_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	if (!master.stopping)
		master_reload();
}

static void master_sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	if (master.stopping)
		return;
	log_info("received signal %d, stopping", (int)sig);
	master_stop();
}

int master_signals_init(void)
{
	static const struct {
		int sig;
		event_callback_fn cb;
	} handlers[] = {
		{SIGCHLD, master_sigchld_cb},
		{SIGHUP, master_sighup_cb},
		{SIGTERM, master_sigterm_cb},
		{SIGINT, master_sigterm_cb},
	};

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		struct event *ev = evsignal_new(master.base, handlers[i].sig,
		    handlers[i].cb, NULL);

		if (ev == NULL || evsignal_add(ev, NULL) < 0) {
			log_error("cannot watch signal %d", handlers[i].sig);
			return -1;
		}
	}
	return 0;
}

/*
 * Gives each new service the listening socket of the old service at the
 * same type and address, and opens the others. On failure hands the
 * sockets back, closes the new ones and returns -1 with *err_out set.
 */
static int master_reload_listeners(struct master_service *fresh, char **err_out)
{
	struct master_service *svc, *old;

	for (svc = fresh; svc != NULL; svc = svc->next) {
		old = master_listen_match(master.services, svc);
		if (old != NULL && old->listen_fd >= 0) {
			svc->listen_fd = old->listen_fd;
			old->listen_fd = -1;
			continue;
		}
		if (master_listen_open(svc, err_out) < 0)
			goto undo;
	}
	return 0;

undo:
	for (svc = fresh; svc != NULL; svc = svc->next) {
		if (svc->listen_fd < 0)
			continue;
		old = master_listen_match(master.services, svc);
		if (old != NULL && old->listen_fd < 0) {
			old->listen_fd = svc->listen_fd;
			svc->listen_fd = -1;
		} else {
			master_listen_close(svc, 1);
		}
	}
	return -1;
}

static void master_services_free_list(struct master_service *list, int unlink_paths)
{
	while (list != NULL) {
		struct master_service *next = list->next;

		master_listen_close(list, unlink_paths);
		master_service_free(list);
		list = next;
	}
}

/* Asks every current child to finish its work and exit; they are
 * reaped as usual but not replaced. */
static void master_drain_children(void)
{
	int n = 0;

	for (struct master_child *c = master.children; c != NULL; c = c->next) {
		if (c->svc == NULL)
			continue;
		c->svc = NULL;
		if (kill(c->pid, SIGUSR1) < 0 && errno != ESRCH)
			log_warn("service %s pid %ld: kill: %s", c->name,
			    (long)c->pid, strerror(errno));
		n++;
	}
	log_info("draining %d processes of the previous configuration", n);
}

void master_reload(void)
{
	struct master_service *fresh = NULL;
	char *err = NULL;

	log_info("reloading the configuration from %s", master.config_dir);
	master_notify("RELOADING=1");
	if (config_load(master.config_dir, &err) < 0
	    || master_apply_config(&err) < 0
	    || master_services_load(&fresh, &err) < 0
	    || master_reload_listeners(fresh, &err) < 0) {
		log_error("reload failed: %s; the running services stay as they are",
		    err != NULL ? err : "unknown error");
		free(err);
		master_services_free_list(fresh, 0);
		master_notify("READY=1");
		return;
	}

	master_drain_children();
	master_services_free_list(master.services, 1);
	master.services = fresh;
	for (struct master_service *svc = fresh; svc != NULL; svc = svc->next)
		if (master_status_open(svc) < 0)
			master_listen_close(svc, 1);
	master_services_update_all();
	log_info("reload complete");
	master_notify("READY=1");
}

static void master_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	int n = master_signal_children(SIGKILL);

	log_warn("%d processes still ran %d s after SIGTERM; sent SIGKILL",
	    n, MASTER_STOP_GRACE_S);
}

void master_stop(void)
{
	struct timeval grace = {MASTER_STOP_GRACE_S, 0};

	if (master.stopping)
		return;
	master.stopping = 1;
	master_notify("STOPPING=1");
	master_services_update_all();

	int n = master_signal_children(SIGTERM);

	log_info("sent SIGTERM to %d processes", n);
	if (n == 0) {
		event_base_loopbreak(master.base);
		return;
	}
	master.kill_ev = evtimer_new(master.base, master_kill_cb, NULL);
	evtimer_add(master.kill_ev, &grace);
}
