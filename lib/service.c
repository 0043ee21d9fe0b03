/*
 * service - command line, signals, privileges and status reports shared
 * by every program that master starts (see service.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

volatile sig_atomic_t service_stop_requested;
volatile sig_atomic_t service_drain_requested;

static int service_root_changed;

static void service_on_signal(int sig)
{
	if (sig == SIGTERM)
		service_stop_requested = 1;
	else if (sig == SIGUSR1)
		service_drain_requested = 1;
}

static void service_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* No SA_RESTART, so that a blocking poll() or read() returns EINTR
	 * and the caller sees the request at once. */
	sa.sa_handler = service_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
}

static void service_usage(const char *program)
{
	log_fatal("usage: %s [-c CONFIG_DIR] [-n SERVICE] [-t inet|unix] [-u] "
	    "[-r] [-o name=value]... [args]", program);
}

/* Checks that master passed descriptor fd, and keeps it from programs
 * this service may run. */
static void service_check_fd(int fd, const char *what)
{
	if (fcntl(fd, F_GETFD) < 0)
		log_fatal("descriptor %d for the %s is not open: start this "
		    "program through master, or without -n to run it by hand",
		    fd, what);
	iox_set_cloexec(fd, 1);
}

void service_init(struct service *svc, const char *program, int argc,
    char **argv)
{
	const char *dir = NULL;
	char *err = NULL;
	int opt;

	memset(svc, 0, sizeof(*svc));
	svc->program = program;
	svc->name = program;
	svc->type = "";
	svc->listen_fd = -1;
	svc->status_fd = -1;
	log_init(program);

	optind = 1;
	while ((opt = getopt(argc, argv, "c:n:t:uro:")) != -1) {
		switch (opt) {
		case 'c':
			dir = optarg;
			break;
		case 'n':
			svc->name = optarg;
			svc->listen_fd = SERVICE_LISTEN_FD;
			svc->status_fd = SERVICE_STATUS_FD;
			break;
		case 't':
			svc->type = optarg;
			break;
		case 'u':
			svc->unpriv = 1;
			break;
		case 'r':
			svc->chroot = 1;
			break;
		case 'o':
			if (config_override(optarg) < 0)
				log_fatal("invalid override \"%s\": expected -o "
				    "name=value", optarg);
			break;
		default:
			service_usage(program);
		}
	}
	svc->args = argv + optind;
	svc->nargs = argc - optind;

	if (config_load(dir, &err) < 0)
		log_fatal("%s", err);
	log_configure();
	service_install_signals();

	if (svc->listen_fd >= 0) {
		service_check_fd(svc->listen_fd, "listening socket");
		service_check_fd(svc->status_fd, "status pipe");
		/* Several processes share the socket, and another may take the
		 * connection between poll() and accept(). */
		iox_set_nonblock(svc->listen_fd, 1);
		/* A master that stops reading must not stall this process. */
		iox_set_nonblock(svc->status_fd, 1);
	}
}

int service_mail_owner(uid_t *uid_out, gid_t *gid_out)
{
	if (geteuid() != 0) {
		*uid_out = getuid();
		*gid_out = getgid();
		return 0;
	}

	const char *owner = config_str("mail_owner");
	struct passwd *pw = getpwnam(owner);
	if (pw == NULL) {
		log_error("mail_owner user \"%s\" not found: create it or set "
		    "mail_owner in main.cf", owner);
		return -1;
	}
	*uid_out = pw->pw_uid;
	*gid_out = pw->pw_gid;
	return 0;
}

/* Switches to user (uid, gid) with its supplementary groups and checks
 * that root cannot be regained. Exits on any failure. */
static void service_switch_user(const char *user, uid_t uid, gid_t gid)
{
	if (uid == 0)
		log_fatal("mail_owner \"%s\" is root: set mail_owner to an "
		    "unprivileged user", user);
	if (initgroups(user, gid) < 0)
		log_fatal("initgroups for mail_owner %s failed: %s", user,
		    strerror(errno));
	if (setgid(gid) < 0)
		log_fatal("setgid(%ld) for mail_owner %s failed: %s", (long)gid,
		    user, strerror(errno));
	if (setuid(uid) < 0)
		log_fatal("setuid(%ld) for mail_owner %s failed: %s", (long)uid,
		    user, strerror(errno));
	if (setuid(0) == 0 || geteuid() == 0)
		log_fatal("root privileges could be regained after switching to "
		    "mail_owner %s", user);
}

void service_drop_privileges(struct service *svc)
{
	static int not_root_logged;

	if (geteuid() != 0) {
		if (!not_root_logged && (svc->unpriv || svc->chroot))
			log_info("running as uid %ld, not root: keeping the user "
			    "and the root directory", (long)geteuid());
		not_root_logged = 1;
		return;
	}

	/* Look the user up before chroot hides /etc/passwd. */
	const char *owner = config_str("mail_owner");
	struct passwd *pw = NULL;
	char *user = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	if (svc->unpriv) {
		pw = getpwnam(owner);
		if (pw == NULL)
			log_fatal("mail_owner user \"%s\" not found: create it or "
			    "set mail_owner in main.cf", owner);
		user = xstrdup(pw->pw_name);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}

	if (svc->chroot) {
		const char *root = config_str("queue_directory");
		/* Load the time zone (TZ or /etc/localtime) while its file is
		 * reachable: glibc reads it once and keeps it, and without it
		 * dates such as those in Received headers would be in UTC. */
		tzset();
		if (chroot(root) < 0)
			log_fatal("chroot to queue_directory %s failed: %s", root,
			    strerror(errno));
		if (chdir("/") < 0)
			log_fatal("chdir to / inside %s failed: %s", root,
			    strerror(errno));
		service_root_changed = 1;
	}
	if (svc->unpriv)
		service_switch_user(user, uid, gid);
	free(user);
}

int service_chrooted(void)
{
	return service_root_changed;
}

void service_report(struct service *svc, enum service_state state)
{
	struct service_status status;

	if (svc->status_fd < 0)
		return;
	memset(&status, 0, sizeof(status));
	status.pid = getpid();
	status.state = state;

	/* One write below PIPE_BUF is atomic, even with other writers. */
	ssize_t n;
	do {
		n = write(svc->status_fd, &status, sizeof(status));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && log_ratelimit("service_report", 1, 60))
		log_warn("cannot report state to master: %s", strerror(errno));
}

int service_accept(struct service *svc, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;

	if (svc->listen_fd < 0)
		return -1;
	for (;;) {
		if (service_stop_requested || service_drain_requested)
			return -1;
		int left = deadline < 0 ? -1 : (int)(deadline - iox_now_ms());
		if (deadline >= 0 && left <= 0)
			return -1;

		struct pollfd pfd = {.fd = svc->listen_fd, .events = POLLIN};
		int rc = poll(&pfd, 1, left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			log_error("poll on the listening socket of %s failed: %s",
			    svc->name, strerror(errno));
			return -1;
		}
		if (rc == 0)
			return -1;

		int fd = accept4(svc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		/* Another process took the connection, or the client left. */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			continue;
		log_error("accept on the listening socket of %s failed: %s",
		    svc->name, strerror(errno));
		return -1;
	}
}
