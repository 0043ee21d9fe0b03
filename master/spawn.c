/*
 * Starting a service process: fork, descriptor setup, exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iox.h"
#include "log.h"
#include "master.h"
#include "sbuf.h"

/* Lowest descriptor for the temporary copies made before dup2. */
#define MASTER_SPAWN_TMP_FD 10

/*
 * Runs in the new child: puts the listening socket at SERVICE_LISTEN_FD
 * and the status pipe at SERVICE_STATUS_FD, closes every other descriptor
 * above standard error and executes the program. Never returns.
 */
static void master_child_exec(const struct master_service *svc)
{
	sigset_t none;
	int lfd, sfd;

	/* master ignores SIGPIPE and exec keeps ignored signals ignored. */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Copy both above the target numbers first: either may be 3 or 4. */
	lfd = fcntl(svc->listen_fd, F_DUPFD, MASTER_SPAWN_TMP_FD);
	sfd = fcntl(svc->status_wr, F_DUPFD, MASTER_SPAWN_TMP_FD);
	if (lfd < 0 || sfd < 0
	    || dup2(lfd, SERVICE_LISTEN_FD) < 0 || dup2(sfd, SERVICE_STATUS_FD) < 0) {
		log_error("service %s: descriptor setup failed: %s", svc->name,
		    strerror(errno));
		_exit(1);
	}
	if (close_range(SERVICE_STATUS_FD + 1, ~0U, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (long fd = SERVICE_STATUS_FD + 1; fd < max && fd < 65536; fd++)
			close((int)fd);
	}
	execv(svc->path, svc->argv);
	log_error("service %s: cannot execute %s: %s", svc->name, svc->path,
	    strerror(errno));
	_exit(1);
}

int master_spawn(struct master_service *svc)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("service %s: fork failed: %s", svc->name, strerror(errno));
		return -1;
	}
	if (pid == 0)
		master_child_exec(svc);

	struct master_child *c = xcalloc(1, sizeof(*c));

	c->pid = pid;
	c->svc = svc;
	c->name = xstrdup(svc->name);
	c->command = xstrdup(svc->command);
	c->state = MASTER_CHILD_STARTING;
	c->start_ms = iox_now_ms();
	c->next = master.children;
	master.children = c;
	svc->nchild++;
	svc->nstarting++;
	log_debug("service %s: started pid %ld", svc->name, (long)pid);
	return 0;
}

int master_signal_children(int sig)
{
	int n = 0;

	for (struct master_child *c = master.children; c != NULL; c = c->next) {
		if (kill(c->pid, sig) < 0 && errno != ESRCH)
			log_warn("service %s pid %ld: kill: %s", c->name,
			    (long)c->pid, strerror(errno));
		n++;
	}
	return n;
}
