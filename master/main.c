/*
 * master - the Postern supervisor.
 *
 * master [-c CONFIG_DIR] [-f] [-t]
 *
 * Loads main.cf and master.cf, creates the queue tree, locks the PID
 * file, opens every listening socket and then starts and watches the
 * services. -f keeps it in the foreground, for systemd and the tests.
 * Without -f it becomes a daemon once the sockets are open, so that
 * startup errors still reach the terminal. The command then returns only
 * when the daemon has written its PID file. -t checks the configuration
 * and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "qfile.h"
#include "sbuf.h"
#include "service.h"

struct master_state master;

/* Write end of the pipe on which the daemon signals readiness to the
 * command that started it, or -1 in the foreground. */
static int master_ready_fd = -1;
static int master_daemonized;

static void master_usage(void)
{
	fprintf(stderr, "usage: master [-c CONFIG_DIR] [-f] [-t]\n"
	    "  -c CONFIG_DIR  read main.cf and master.cf from CONFIG_DIR\n"
	    "  -f             stay in the foreground and log to standard error\n"
	    "                 unless maillog_file is set\n"
	    "  -t             check the configuration and exit\n");
	exit(2);
}

/* Until master_started, master logs to standard error, so that every
 * startup error reaches the terminal or the journal. */
static int master_started;

/* Points master's own log at maillog_file, else standard error in the
 * foreground or syslog as a daemon. */
static void master_log_setup(void)
{
	log_configure();
	if (config_str("maillog_file")[0] != '\0')
		return;
	log_set_target(master.foreground ? LOG_TARGET_STDERR : LOG_TARGET_SYSLOG,
	    NULL);
}

int master_apply_config(char **err_out)
{
	/* Children inherit the environment: only a foreground master without
	 * maillog_file has them log to standard error. */
	if (master.foreground && config_str("maillog_file")[0] == '\0')
		setenv("POSTERN_LOG_STDERR", "1", 1);
	else
		unsetenv("POSTERN_LOG_STDERR");
	if (master_started)
		master_log_setup();

	if (!master.root) {
		master.owner_uid = getuid();
		master.owner_gid = getgid();
		return 0;
	}
	if (service_mail_owner(&master.owner_uid, &master.owner_gid) < 0) {
		*err_out = xasprintf("mail_owner \"%s\" is not a known user; create it"
		    " or set mail_owner in main.cf", config_str("mail_owner"));
		return -1;
	}
	if (master.owner_uid == 0) {
		*err_out = xstrdup("mail_owner must not be root");
		return -1;
	}
	return 0;
}

/* Loads main.cf and master.cf into master's state; exits on an error. */
static void master_load(const char *dir_arg)
{
	char resolved[PATH_MAX];
	char *err = NULL;

	if (config_load(dir_arg, &err) < 0)
		log_fatal("%s", err);
	if (realpath(config_dir(), resolved) != NULL)
		master.config_dir = xstrdup(resolved);
	else
		master.config_dir = xstrdup(config_dir());
	if (master_apply_config(&err) < 0 || master_services_load(&master.services, &err) < 0)
		log_fatal("%s", err);
}

/* Creates the queue tree, takes the PID file lock and opens every
 * listening socket; exits on an error. */
static void master_prepare(void)
{
	const char *queue_dir = config_str("queue_directory");
	char *err = NULL;

	if (qfile_make_dirs(queue_dir, master.owner_uid, master.owner_gid, &err) < 0
	    || master_pidfile_lock(queue_dir, &err) < 0)
		log_fatal("%s", err);
	for (struct master_service *svc = master.services; svc != NULL;
	    svc = svc->next)
		if (master_listen_open(svc, &err) < 0)
			log_fatal("%s", err);
}

/*
 * Forks; the parent waits until the child reports ready (exit 0) or dies
 * (exit 1), and the child starts a new session. Standard error stays
 * open until master_daemon_ready, so setup errors still reach the terminal.
 */
static void master_daemonize(void)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		log_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		char byte;
		ssize_t n;

		close(fds[1]);
		do
			n = read(fds[0], &byte, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(fds[0]);
	master_ready_fd = fds[1];
	master_daemonized = 1;
	if (setsid() < 0)
		log_fatal("setsid: %s", strerror(errno));
}

/* Detaches standard I/O and releases the waiting parent. */
static void master_daemon_ready(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		log_fatal("cannot open /dev/null: %s", strerror(errno));
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	if (write(master_ready_fd, "", 1) != 1)
		log_warn("cannot signal readiness to the parent: %s", strerror(errno));
	close(master_ready_fd);
	master_ready_fd = -1;
}

static int master_run(void)
{
	int nservices = 0;

	master.base = event_base_new();
	if (master.base == NULL)
		log_fatal("cannot create the event loop");
	if (master_pidfile_write() < 0)
		log_fatal("cannot write the PID file: %s", strerror(errno));
	if (master_signals_init() < 0)
		exit(1);
	master_started = 1;
	master_log_setup();
	/* Loading warned on standard error, so repeat it where the log goes. */
	if (!master.foreground || config_str("maillog_file")[0] != '\0')
		config_warn_unknown();
	if (master_daemonized)
		master_daemon_ready();

	for (struct master_service *svc = master.services; svc != NULL;
	    svc = svc->next, nservices++)
		if (master_status_open(svc) < 0)
			log_fatal("service %s: cannot set up its status pipe", svc->name);
	master_tls_check();
	master_services_update_all();
	log_info("started with PID %ld: %d services from %s/master.cf",
	    (long)getpid(), nservices, master.config_dir);
	master_notify("READY=1");

	event_base_dispatch(master.base);

	master_pidfile_remove();
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir_arg = NULL;
	int check_only = 0;
	int opt;

	umask(022);
	log_init("master");
	while ((opt = getopt(argc, argv, "c:ft")) != -1) {
		switch (opt) {
		case 'c':
			dir_arg = optarg;
			break;
		case 'f':
			master.foreground = 1;
			break;
		case 't':
			check_only = 1;
			break;
		default:
			master_usage();
		}
	}
	if (optind != argc)
		master_usage();

	/* Until the configuration names a target, errors go to the terminal. */
	log_set_target(LOG_TARGET_STDERR, NULL);
	master_notify_init();
	master.root = geteuid() == 0;
	master_load(dir_arg);
	if (check_only) {
		fprintf(stderr, "master: the configuration in %s is valid\n",
		    master.config_dir);
		return 0;
	}
	master_prepare();
	if (!master.foreground)
		master_daemonize();
	return master_run();
}
