/*
 * service_conn.c: the connection of one smtpd process to a private
 * service (anvil, authd) that exchanges lib/attr.h records over a UNIX
 * socket under queue_directory.
 *
 * The connection is a non-blocking socket on smtpd_event_base. It is
 * opened by the first request and reopened by the next request after it
 * is lost. master keeps the service's listening socket open while the
 * service restarts, so a request sent then waits in the backlog for the
 * new process or for its call's timeout. Nothing here blocks the loop.
 *
 * A call is one request that waits for a reply. The user embeds struct
 * service_call as the FIRST member of its own call type and owns that
 * memory. Every call ends exactly once, in one of three ways:
 *   - the user finds it by key in ops->handle_record and finishes it;
 *   - ops->call_failed runs because of a timeout or a lost connection;
 *   - the user cancels it with service_call_forget.
 * In the first and last case the user calls service_call_forget itself.
 * ops->call_failed gets the call already forgotten (unlinked, timer
 * freed), so it may free the call before it runs the user's callback.
 */
#ifndef POSTERN_SMTPD_SERVICE_CONN_H
#define POSTERN_SMTPD_SERVICE_CONN_H

struct attrs;
struct attr_decoder;
struct bufferevent;
struct event;

/* Maximum key length: an authd session id or an anvil call id. */
#define SERVICE_CALL_KEY_MAX 64

struct service_call {
	struct service_call *prev, *next;
	struct service_conn *conn;
	struct event *timer;
	char key[SERVICE_CALL_KEY_MAX + 1];  /* matches a reply to the call */
};

enum service_call_failure {
	SERVICE_CALL_TIMEOUT,  /* no reply within the call's timeout */
	SERVICE_CALL_LOST,     /* no connection, or the connection was lost */
};

/* What one service supplies. Every member but connect_note is
 * required. */
struct service_conn_ops {
	const char *name;       /* "anvil": for log lines */
	const char *log_key;    /* prefix of log_ratelimit keys */
	/* Text after "cannot connect to NAME at PATH: ERROR; ", or NULL. */
	const char *connect_note;
	/* Returns the socket path, which the caller frees. */
	char *(*socket_path)(void);
	/* Handles one decoded record. The record is freed afterwards. */
	void (*handle_record)(struct attrs *rec);
	/* Frees a decoded record: attrs_free, or one that wipes secrets. */
	void (*free_record)(struct attrs **rec);
	/* Logs the loss of the connection, after it is closed and before
	 * the calls fail. was_open is 0 when no connection was open;
	 * calls_waiting is 1 when calls are about to fail. */
	void (*lost)(const char *why, int was_open, int calls_waiting);
	/* Ends a call that got no reply (see above). */
	void (*call_failed)(struct service_call *c,
	    enum service_call_failure failure);
};

/* One service's connection state. Define it statically with only .ops
 * set; the other members are private to service_conn.c. */
struct service_conn {
	const struct service_conn_ops *ops;
	struct bufferevent *bev;
	struct attr_decoder *decoder;
	struct service_call *calls;
	unsigned generation;
	struct event *fail_event;  /* runs a failed send outside of the call */
};

/*
 * Starts call c with key (truncated to SERVICE_CALL_KEY_MAX bytes) and
 * a timeout of timeout_ms milliseconds, and sends req, connecting first
 * when needed. req stays the caller's. The encoded copy is wiped once
 * queued, because authd requests carry passwords. When the connection
 * or the write fails, ops->call_failed runs from the loop, never before
 * this returns.
 */
void service_call_start(struct service_conn *conn, struct service_call *c,
    const char *key, int timeout_ms, struct attrs *req);

/* Unlinks c and frees its timer; the user still owns c's memory. */
void service_call_forget(struct service_call *c);

/* Returns the waiting call with key, or NULL (it ended already). */
struct service_call *service_conn_find(struct service_conn *conn,
    const char *key);

/* Sends req without a call when the connection is open. Returns 0, or
 * -1 when no connection is open or the write failed. */
int service_conn_write(struct service_conn *conn, struct attrs *req);

/* Generation of the connection: it changes whenever the connection is
 * lost, so state the service kept for it is gone. */
unsigned service_conn_generation(const struct service_conn *conn);

#endif
