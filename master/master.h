/*
 * master - the supervisor's internal interfaces.
 *
 * master keeps one struct master_service per master.cf line and one
 * struct master_child per process it started. A service owns its
 * listening socket (passed to children at SERVICE_LISTEN_FD) and a status
 * pipe (write end at SERVICE_STATUS_FD) over which each child reports
 * IDLE or BUSY. On reload the old children are detached from their
 * service and drained (SIGUSR1); they are reaped but never restarted.
 *
 * Everything runs in one thread on the libevent loop in master.base.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stddef.h>
#include <sys/types.h>

#include "service.h"

struct event;
struct event_base;

/* Process model of a service. */
enum master_kind {
	MASTER_KIND_FIXED,    /* event driven: a fixed number of processes */
	MASTER_KIND_ON_DEMAND /* one request at a time: started when needed */
};

enum master_child_state {
	MASTER_CHILD_STARTING, /* forked, has not reported yet */
	MASTER_CHILD_IDLE,
	MASTER_CHILD_BUSY
};

struct master_service {
	char *name;          /* master.cf service column */
	char *type;          /* "inet" or "unix" */
	char *command;       /* program name in daemon_directory */
	char *path;          /* daemon_directory/command */
	char **argv;         /* NULL-terminated command line for execv */
	char *listen_addr;   /* inet: the service column; unix: socket path */
	int line;            /* master.cf line, for messages */
	int private_;
	int unpriv;
	int chroot;
	int wakeup;          /* seconds between wake-ups, 0 = none */
	int maxproc;         /* resolved process limit; 0 = no limit */
	enum master_kind kind;
	int singleton;       /* never runs beside a drained process of its name */

	int listen_fd;       /* -1 when closed */
	int status_rd;       /* status pipe, read end (master) */
	int status_wr;       /* status pipe, write end (children) */
	unsigned char carry[sizeof(struct service_status)];
	size_t ncarry;       /* bytes of a partial record in carry */

	int nchild;          /* live children of this service */
	int nidle;           /* of which reported IDLE */
	int nstarting;       /* of which have not reported yet */
	int failures;        /* abnormal exits in a row */
	int backoff;         /* 1 while restart_ev is pending */
	int watching;        /* 1 while listen_ev is added */

	struct event *status_ev;
	struct event *listen_ev;
	struct event *restart_ev;
	struct event *wakeup_ev;
	struct master_service *next;
};

struct master_child {
	pid_t pid;
	struct master_service *svc; /* NULL once drained on reload */
	char *name;                 /* service name, kept after the drain */
	char *command;
	enum master_child_state state;
	long long start_ms;
	struct master_child *next;
};

struct master_state {
	struct event_base *base;
	char *config_dir;        /* absolute */
	int foreground;
	int root;                /* 1 when running as root */
	uid_t owner_uid;         /* mail_owner when root */
	gid_t owner_gid;
	int stopping;
	struct master_service *services;
	struct master_child *children;
	struct event *kill_ev;   /* SIGKILL timer during a stop */
};

extern struct master_state master;

/* Seconds master waits after SIGTERM before it sends SIGKILL. */
#define MASTER_STOP_GRACE_S 10
/* Upper bound of the restart back-off, and the lifetime that resets it. */
#define MASTER_BACKOFF_MAX_S 60

/* services.c */

/*
 * Reads CONFIG_DIR/master.cf and builds the service list with resolved
 * process limits and command lines. Fails when a command is not an
 * executable file in daemon_directory. Returns 0, or -1 with a message
 * in *err_out (caller frees). Opens nothing.
 */
int master_services_load(struct master_service **list_out, char **err_out);

/* Closes the service's sockets, pipe and events and frees it. The caller
 * has already detached its children. */
void master_service_free(struct master_service *svc);

/* listen.c */

/* Opens the listening socket of svc; for unix services creates the socket
 * file with mode 0600 (private) or 0666 (public), owned by mail_owner when
 * root. Returns 0, or -1 with a message in *err_out. */
int master_listen_open(struct master_service *svc, char **err_out);

/* Closes the listening socket; unlink_path removes a unix socket file. */
void master_listen_close(struct master_service *svc, int unlink_path);

/* Finds the service in list that listens on the same type and address as
 * svc, or NULL. */
struct master_service *master_listen_match(struct master_service *list,
    const struct master_service *svc);

/* status.c */

/* Creates the status pipe and its read event. Returns 0 or -1 (logged). */
int master_status_open(struct master_service *svc);

/* Removes the service's events and closes its status pipe. */
void master_status_close(struct master_service *svc);

/*
 * Starts processes or watches the listening socket as the service needs:
 * tops up fixed services to maxproc, and for on-demand services watches
 * the socket while no child is idle or starting and fewer than maxproc
 * run. Does nothing during a back-off or a stop.
 */
void master_service_update(struct master_service *svc);

/* Calls master_service_update for every service. */
void master_services_update_all(void);

/* Accounts for a child that waitpid() returned, logs how it ended, and
 * schedules a restart with back-off when it failed. */
void master_child_exited(pid_t pid, int wait_status);

/* Number of drained children of the service called name. */
int master_drained_count(const char *name);

/* spawn.c */

/* Forks and executes one process of svc and adds it to the child list.
 * Returns 0, or -1 (logged) when fork fails. */
int master_spawn(struct master_service *svc);

/* Sends sig to every child; returns how many there are. */
int master_signal_children(int sig);

/* main.c */

/* Applies the loaded main.cf to master itself: log target and mail_owner.
 * Returns 0, or -1 with a message in *err_out. */
int master_apply_config(char **err_out);

/* signals.c */

/* Adds the SIGCHLD, SIGHUP, SIGTERM and SIGINT events and ignores SIGPIPE. */
int master_signals_init(void);

/* Re-reads main.cf and master.cf and replaces the services; on any error
 * keeps the running configuration and logs why. */
void master_reload(void);

/* Starts a stop: SIGTERM to every child, SIGKILL after the grace time;
 * the loop ends when the last child is gone. */
void master_stop(void);

/* pidfile.c */

/*
 * Opens and locks $queue_directory/pid/master.pid. Returns 0, or -1 with
 * a message in *err_out, naming the file and the running PID when
 * another master holds the lock. The lock is kept for the life of the
 * process, across the fork that daemonizes.
 */
int master_pidfile_lock(const char *queue_dir, char **err_out);

/* Writes the current PID into the locked file. Returns 0 or -1 (errno). */
int master_pidfile_write(void);

/* Removes the PID file and releases the lock. */
void master_pidfile_remove(void);

/* notify.c */

/* Takes $NOTIFY_SOCKET and removes it from the environment, so that the
 * services master starts do not talk to systemd themselves. */
void master_notify_init(void);

/* Sends state (for example "READY=1") to systemd over $NOTIFY_SOCKET when
 * that is set; otherwise does nothing. Failures are logged once. */
void master_notify(const char *state);

/* tlscheck.c: logs a warning for each problem that the certificate checks
 * of `postern tls-check` find in main.cf's server certificates. */
void master_tls_check(void);

#endif
