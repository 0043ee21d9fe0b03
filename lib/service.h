/*
 * service - the runtime every program that master starts shares.
 *
 * master starts a service as
 *   DAEMON_DIR/COMMAND -c CONFIG_DIR -n SERVICE -t TYPE [-u] [-r]
 *       [-o name=value ...] [args from master.cf ...]
 * with its listening socket at descriptor SERVICE_LISTEN_FD and the write
 * end of the service's status pipe at SERVICE_STATUS_FD. -u asks for the
 * switch to mail_owner, -r for chroot into queue_directory. In foreground
 * mode the environment holds POSTERN_LOG_STDERR=1.
 *
 * Signals from master: SIGTERM means stop now (close sessions, finish or
 * abandon the current delivery, exit); SIGUSR1 means drain (stop
 * accepting, finish what is in progress, exit), which master uses on
 * reload so that live sessions are not cut. SIGHUP and SIGPIPE are
 * ignored.
 *
 * Each process reports its state over the status pipe as one struct
 * service_status write (atomic, smaller than PIPE_BUF): IDLE when it can
 * take more work, BUSY when it cannot. master uses that to decide when
 * to start another process of a one-at-a-time service.
 */
#ifndef POSTERN_SERVICE_H
#define POSTERN_SERVICE_H

#include <signal.h>
#include <sys/types.h>

#define SERVICE_LISTEN_FD 3
#define SERVICE_STATUS_FD 4

enum service_state {
	SERVICE_STATE_IDLE = 0,
	SERVICE_STATE_BUSY = 1
};

struct service_status {
	pid_t pid;
	int state; /* enum service_state */
};

struct service {
	const char *program;   /* "smtpd", "qmgr", ... */
	const char *name;      /* master.cf service name, or program */
	const char *type;      /* "inet", "unix", or "" when run by hand */
	int listen_fd;         /* SERVICE_LISTEN_FD, or -1 when run by hand */
	int status_fd;         /* SERVICE_STATUS_FD, or -1 */
	int unpriv;
	int chroot;
	char **args;           /* master.cf arguments after the options */
	int nargs;
};

/* Set by the handlers that service_init installs. */
extern volatile sig_atomic_t service_stop_requested;  /* SIGTERM */
extern volatile sig_atomic_t service_drain_requested; /* SIGUSR1 */

/*
 * Parses the command line, starts logging as program, loads main.cf
 * with the -o overrides, applies the log settings, ignores SIGPIPE and
 * SIGHUP and installs the SIGTERM and SIGUSR1 flag handlers (event-driven
 * programs may replace them with libevent signal events). Exits with a
 * message on a bad option or an unreadable configuration.
 */
void service_init(struct service *svc, const char *program, int argc,
    char **argv);

/*
 * Chroots into queue_directory when -r was given, then switches to
 * mail_owner's user and groups when -u was given, and checks that root
 * cannot be regained. Exits with a message on any failure. Running as a
 * user other than root, it changes nothing and logs that once.
 */
void service_drop_privileges(struct service *svc);

/*
 * Returns 1 after service_drop_privileges() chrooted this process into
 * queue_directory, else 0. From then on queue paths are relative to "/"
 * and absolute paths from main.cf (tables, certificates, /etc files)
 * name files outside reach: open those before the chroot.
 */
int service_chrooted(void);

/* Looks up mail_owner. Returns 0 or -1 (logged) when the user does not
 * exist. When not running as root, returns the current user. */
int service_mail_owner(uid_t *uid_out, gid_t *gid_out);

/* Reports the state to master; a no-op when run by hand. */
void service_report(struct service *svc, enum service_state state);

/*
 * For one-at-a-time services: waits up to timeout_ms for a connection on
 * the listening socket and accepts it. Returns the connected descriptor,
 * or -1 on timeout, on a stop or drain request, or on an error (logged).
 */
int service_accept(struct service *svc, int timeout_ms);

#endif
