/*
 * smtpd - the event-driven SMTP server.
 *
 * One process serves many sessions on one libevent loop. The parts:
 *   main.c      service setup, the listener, signals, the settings
 *   session.c   per-connection state, the transport (a bufferevent),
 *               command-line reading with limits, timeouts, closing
 *   lookup.c    the client's host name (hosts file, then evdns)
 *   commands.c  the SMTP commands and their replies
 *   params.c    command-line and ESMTP parameter parsing (no I/O)
 *   data.c      the DATA byte state machine (no I/O)
 *   policy.c    restriction lists evaluated at RCPT (policy.h),
 *               with restrictions.c and access.c (check_*_access)
 *   auth.c      SMTP AUTH, with authd_conn.c (the connection to authd)
 *   commit.c    the worker thread that makes queue files durable
 *   tls.c       STARTTLS and wrapper mode: the handoff to tlsproxy
 *   limits.c    per-client connection limits, with anvil_conn.c (the
 *               connection to anvil, which counts across processes)
 *   service_conn.c  the non-blocking connection to a private service
 *               that authd_conn.c and anvil_conn.c build on
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "qfile.h"
#include "resolve.h"

struct event_base;
struct evdns_base;
struct bufferevent;
struct cidr_list;

/* Settings read once at start, after config_load(). */
struct smtpd_settings {
	const char *myhostname;
	const char *banner;
	const char *mail_name;
	const char *queue_dir;     /* as seen after a chroot */
	long message_size_limit;   /* bytes; 0 means no limit */
	long header_size_limit;    /* bytes of one logical header */
	size_t line_length_limit;  /* bytes of one command line */
	long timeout;              /* seconds of client silence */
	long recipient_limit;
	long recipient_overshoot_limit; /* 452 replies before they count as errors */
	long hard_error_limit;
	long connection_limit;
	int per_request_deadline;  /* smtpd_timeout bounds a whole request */
	long min_data_rate;        /* bytes/s that extend the DATA deadline */
	long client_count_limit;   /* open connections per client; 0: off */
	long client_rate_limit;    /* connections per anvil_rate_time_unit */
	struct cidr_list *limit_exceptions; /* exempt from the two above */
	const char *service_name;  /* master.cf service, for anvil's counts */
	int normalize_bare_newline; /* 1: treat bare CR/LF as line ends */
	int peername_lookup;
	int disable_vrfy;
	struct cidr_list *mynetworks;
};

extern struct smtpd_settings smtpd_settings;
extern struct event_base *smtpd_event_base;
extern struct evdns_base *smtpd_dns_base; /* NULL when lookups are off */
extern int smtpd_stopping;                /* SIGTERM received */

/* main.c: called after each session ends, to finish a drain or stop. */
void smtpd_main_session_gone(void);

/* ---- params.c: command lines and ESMTP parameters (RFC 5321, 1870,
 * 6152, 3461, 4954). Pure functions for the unit tests. */

/* Extensions offered in the EHLO reply, which decide which parameters
 * MAIL and RCPT accept. */
#define SMTPD_EXT_DSN 1

#define SMTPD_BODY_NONE 0
#define SMTPD_BODY_7BIT 1
#define SMTPD_BODY_8BITMIME 2

#define SMTPD_RET_NONE 0
#define SMTPD_RET_FULL 1
#define SMTPD_RET_HDRS 2

#define SMTPD_REPLY_MAX 512

struct smtpd_mail_params {
	int size_given;
	unsigned long long size;   /* ULLONG_MAX when the digits overflow */
	int body;                  /* SMTPD_BODY_* */
	int auth_given;            /* AUTH= seen; the value is not kept */
	int ret;                   /* SMTPD_RET_* */
	char envid[101];           /* xtext as received, "" when absent */
};

struct smtpd_rcpt_params {
	int notify;                /* QNOTIFY_* bits, 0 when absent */
	char orcpt[501];           /* "addr-type;xtext" as received, or "" */
};

/*
 * Splits a command line (without CRLF) into the verb and its arguments:
 * *verb_len is the length of the first word, *args_out points past the
 * blanks that follow it (at "" when there are none).
 */
void smtpd_cmd_split(const char *line, size_t *verb_len,
    const char **args_out);

/*
 * Matches "FROM:" or "TO:" (keyword given without the colon) at the
 * start of args, case-insensitively, and skips blanks after the colon as
 * many clients send them. Returns a pointer to the path, or NULL.
 */
const char *smtpd_path_arg(const char *args, const char *keyword);

/*
 * Parses the MAIL parameters in rest (the text after the path). Returns 0
 * with *out filled, or -1 with a complete reply ("501 5.5.4 ...", "555
 * 5.5.4 ...") in reply. ext is the SMTPD_EXT_* set offered.
 */
int smtpd_parse_mail_params(const char *rest, int ext,
    struct smtpd_mail_params *out, char *reply, size_t reply_size);

/* Same for RCPT parameters. */
int smtpd_parse_rcpt_params(const char *rest, int ext,
    struct smtpd_rcpt_params *out, char *reply, size_t reply_size);

/* 1 when s (len bytes) is valid xtext (RFC 3461 4). */
int smtpd_xtext_valid(const char *s, size_t len);

/* ---- data.c: the DATA byte stream (RFC 5321 4.1.1.4, 4.5.2). */

#define SMTPD_DATA_BARE_LF 0x01
#define SMTPD_DATA_BARE_CR 0x02
#define SMTPD_DATA_TOO_BIG 0x04
#define SMTPD_DATA_HEADER_TOO_BIG 0x08
#define SMTPD_DATA_WRITE_ERROR 0x10

#define SMTPD_DATA_BUF_SIZE 8192

/*
 * Receives message bytes with LF line ends, dot-unstuffed. Returns 0, or
 * -1 to stop further output (the failure is recorded as WRITE_ERROR).
 */
typedef int (*smtpd_data_sink)(void *ctx, const char *data, size_t len);

struct smtpd_data {
	int state;
	int dot_soft;          /* the pending dot began a line after a bare newline */
	int normalize;         /* bare CR and LF count as line ends */
	int flags;             /* SMTPD_DATA_* problems seen so far */
	unsigned long long size;        /* message bytes produced */
	unsigned long long size_limit;  /* 0: none */
	size_t header_limit;   /* 0: none */
	size_t header_len;     /* bytes of the current logical header */
	size_t line_len;       /* bytes of the current line so far */
	int in_header;         /* still in the header section */
	int line_kind;         /* how the current line reads in the header */
	smtpd_data_sink sink;
	void *sink_ctx;
	size_t out_len;
	char out[SMTPD_DATA_BUF_SIZE];
};

/* Prepares d to read the bytes that follow the 354 reply. */
void smtpd_data_init(struct smtpd_data *d, int normalize,
    unsigned long long size_limit, size_t header_limit,
    smtpd_data_sink sink, void *sink_ctx);

/*
 * Consumes bytes of the DATA stream. Returns how many were consumed:
 * fewer than len only when the terminating <CRLF>.<CRLF> was found, in
 * which case smtpd_data_done() is 1 and the bytes after it belong to
 * the command stream again. Output is buffered and flushed to the sink
 * when the buffer fills and at the end of the data. After a problem
 * flag is set nothing more is passed to the sink, but the stream is
 * still read to its end.
 */
size_t smtpd_data_feed(struct smtpd_data *d, const char *buf, size_t len);

/* 1 once the end of the data was seen. */
int smtpd_data_done(const struct smtpd_data *d);

/* ---- policy.c: restriction lists. */

enum smtpd_policy_result {
	SMTPD_POLICY_DUNNO,
	SMTPD_POLICY_PERMIT,
	SMTPD_POLICY_REJECT,
	SMTPD_POLICY_DEFER
};

struct smtpd_session;

/*
 * Parses the smtpd_client, helo, sender, relay and recipient
 * restriction lists and opens their tables. Exits (log_fatal) on an
 * unknown restriction name, naming it and the parameter, on a table
 * that cannot be opened, and when neither the relay nor the recipient
 * list can ever refuse relaying.
 */
void smtpd_policy_init(void);

/* A parsed restriction list; its param field names the parameter. */
struct smtpd_restriction_list;

/*
 * Parses value into list (whose param is set) and opens the table after
 * each check_*_access. Returns 0, or -1 with a message naming the
 * parameter and the bad item in *err_out (caller frees).
 */
int smtpd_restrictions_parse(struct smtpd_restriction_list *list,
    const char *value, char **err_out);
void smtpd_restrictions_free(struct smtpd_restriction_list *list);

/*
 * Evaluates the relay restrictions, then the recipient restrictions, for
 * recipient rcpt (internal form) whose resolution is res. Returns
 * PERMIT, or REJECT or DEFER with the complete reply text in reply.
 */
enum smtpd_policy_result smtpd_policy_check_rcpt(struct smtpd_session *sess,
    const char *rcpt, const struct resolve_result *res, char *reply,
    size_t reply_size);

/* ---- commit.c: the queue file commit worker. */

struct qwriter;

struct smtpd_commit_job {
	struct smtpd_commit_job *next;
	struct qwriter *writer;   /* freed by the worker */
	char qid[QID_SIZE];
	int failed;               /* 1 when the message is not in the queue */
	int error_no;             /* errno of the failure */
	const char *failed_step;  /* "fsync", "rename", "directory fsync" */
	long long size;           /* message bytes, for the log */
	/* Called on the event loop thread; arg is NULL when the session
	 * went away during the commit. The callee frees the job. */
	void (*done)(struct smtpd_commit_job *job, void *arg);
	void *arg;
};

/* Starts the worker thread. Returns 0, or -1 with errno. */
int smtpd_commit_init(struct event_base *base);

/* Hands a job to the worker; takes only a mutex, no disk I/O. */
void smtpd_commit_submit(struct smtpd_commit_job *job);

/* Number of jobs handed over and not yet completed. */
int smtpd_commit_pending(void);

/* ---- session.c: sessions and their transport. */

enum smtpd_state {
	SMTPD_STATE_LOOKUP,   /* finding the client name; no banner yet */
	SMTPD_STATE_COMMAND,  /* reading command lines */
	SMTPD_STATE_DATA,     /* reading message bytes */
	SMTPD_STATE_COMMIT,   /* waiting for the queue file commit */
	SMTPD_STATE_TLS,      /* handing the connection to tlsproxy */
	SMTPD_STATE_AUTH,     /* waiting for authd; input is not read */
	SMTPD_STATE_CLOSING   /* flushing the last reply, then closing */
};

enum smtpd_counter {
	SMTPD_CMD_EHLO, SMTPD_CMD_HELO, SMTPD_CMD_MAIL, SMTPD_CMD_RCPT,
	SMTPD_CMD_DATA, SMTPD_CMD_RSET, SMTPD_CMD_NOOP, SMTPD_CMD_QUIT,
	SMTPD_CMD_VRFY, SMTPD_CMD_HELP, SMTPD_CMD_AUTH, SMTPD_CMD_STARTTLS,
	SMTPD_CMD_UNKNOWN,
	SMTPD_CMD_COUNT
};

/*
 * A session keeps only what an idle connection needs; the transaction,
 * the DATA machine and the client name are allocated when used.
 */
struct smtpd_session {
	struct smtpd_session *prev, *next; /* every live session */
	struct bufferevent *bev;           /* the transport */
	enum smtpd_state state;
	unsigned id;                       /* for debug lines */
	char addr[INET6_ADDRSTRLEN];
	int port;
	char *name;                        /* verified host name or "unknown" */
	int in_mynetworks;                 /* cidr_list_match: 1, 0, -1 */
	char *helo;                        /* sanitized, or NULL */
	int esmtp;                         /* 1 after EHLO, 0 after HELO */
	int skipping_line;                 /* dropping an over-long line */
	int errors;
	long rcpt_overshoot;               /* RCPTs over the limit, this transaction */
	int quit_seen;
	int stop_reply_sent;               /* 421 for shutdown already sent */
	const char *last_command;          /* for "lost connection after X" */
	struct qenv *env;                  /* after MAIL: sender, recipients */
	struct smtpd_mail_params *mail;    /* after MAIL */
	struct qwriter *writer;            /* during DATA */
	struct smtpd_data *data;           /* during DATA */
	struct smtpd_commit_job *job;      /* during COMMIT */
	struct smtpd_lookup *lookup;       /* during LOOKUP */
	int tls_active;                    /* 1 once TLS is established */
	struct smtpd_tls_handoff *tls_handoff; /* during STATE_TLS */
	char *tls_summary;                 /* "TLSv1.3 with cipher ..." */
	struct smtpd_auth *auth;           /* AUTH exchange in progress */
	char *sasl_user;                   /* after a successful AUTH */
	char *sasl_method;                 /* its mechanism */
	struct smtpd_anvil_call *anvil_call; /* waiting for anvil's counts */
	int anvil_counted;                 /* anvil counts this connection */
	unsigned anvil_generation;         /* on this anvil connection */
	long long deadline_ms;             /* end of the current request, or 0 */
	enum smtpd_state deadline_state;   /* the state deadline_ms is for */
	unsigned short count_ok[SMTPD_CMD_COUNT];
	unsigned short count_all[SMTPD_CMD_COUNT];
};

/* Allocates the shared command-line buffer; call once at start. */
void smtpd_session_init(void);

/* Creates a session for an accepted socket and starts the name lookup. */
void smtpd_session_new(int fd, const struct sockaddr *sa, socklen_t salen);

/* Queues one reply line ("250 2.0.0 Ok") with CRLF. Output is written
 * when the current batch of input has been processed. */
void smtpd_reply(struct smtpd_session *sess, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Queues raw bytes (already CRLF terminated). */
void smtpd_reply_raw(struct smtpd_session *sess, const char *text,
    size_t len);

/* Queues a final reply and closes the session once it is written. */
void smtpd_session_close_after(struct smtpd_session *sess, const char *fmt,
    ...) __attribute__((format(printf, 2, 3)));

/* Counts one error reply; past smtpd_hard_error_limit sends 421 and
 * closes. Returns 1 when the session is now closing. */
int smtpd_session_error(struct smtpd_session *sess);

/* Called by lookup.c when the client name is known: logs the connect,
 * sends the banner and starts reading. */
void smtpd_session_start(struct smtpd_session *sess, char *name);

/* Checks the per-client limits, then sends the banner and starts
 * reading commands; smtpd_session_start() calls it, or tls.c once
 * wrapper-mode TLS is on. */
void smtpd_session_greet(struct smtpd_session *sess);

/* Sends the banner and starts reading commands, without the checks of
 * smtpd_session_greet(); for limits.c once anvil replied. */
void smtpd_session_banner(struct smtpd_session *sess);

/* Frees the session at once. Not for use inside input processing or a
 * callback of the session's bufferevent other than its last action. */
void smtpd_session_end(struct smtpd_session *sess);

/* Resumes command reading after a commit (used by commands.c). */
void smtpd_session_resume(struct smtpd_session *sess);

/*
 * Replaces the session's transport by fd (for STARTTLS: the plaintext
 * end of a tlsproxy socketpair). Input already buffered from the old
 * transport is discarded, as RFC 3207 4.2 requires. The old descriptor
 * is closed. Returns 0 or -1 with errno.
 */
int smtpd_transport_switch(struct smtpd_session *sess, int fd);

/* Frees the current transaction (envelope, open queue file). */
void smtpd_session_reset(struct smtpd_session *sess);

/* Number of live sessions. */
int smtpd_session_count(void);

/* SIGTERM: sends 421 to every session and closes each once its reply
 * is written; a session waiting for a commit gets its reply first. */
void smtpd_session_stop_all(void);

/* ---- tls.c: STARTTLS and wrapper mode through tlsproxy. */

struct evbuffer;

/* Reads the TLS settings; exits on invalid ones. service_name goes into
 * tlsproxy's logs. Call once at start. */
void smtpd_tls_init(const char *service_name);

/* 1 when smtpd_tls_wrappermode is on: TLS starts before the banner. */
int smtpd_tls_wrappermode(void);

/* 1 when EHLO offers STARTTLS in this session. */
int smtpd_tls_offer(const struct smtpd_session *sess);

/* 1 when command must wait for STARTTLS (smtpd_tls_security_level =
 * encrypt and TLS not yet on); the caller replies 530 5.7.0. */
int smtpd_tls_required(const struct smtpd_session *sess,
    enum smtpd_counter command);

/* The TLS summary for the Received header ("TLSv1.3 with cipher ...
 * (256/256 bits)"), or NULL without TLS or when
 * smtpd_tls_received_header is off. */
const char *smtpd_tls_received_comment(const struct smtpd_session *sess);

/*
 * Handles "STARTTLS". Returns -1 after an error reply (501, 502, 503);
 * returns 0 when the handoff started: the session is in SMTPD_STATE_TLS
 * and replies 220 or 454 from the loop later.
 */
int smtpd_starttls_command(struct smtpd_session *sess, const char *args);

/* Hands a new wrapper-mode connection to tlsproxy; the banner follows
 * once TLS is on, and the session ends if the handshake fails. */
void smtpd_tls_wrap(struct smtpd_session *sess);

/* Called by session.c in SMTPD_STATE_TLS when the output is written. */
void smtpd_tls_output_flushed(struct smtpd_session *sess);

/* Called by session.c in SMTPD_STATE_TLS with the input: consumes the
 * tlsproxy reply. Returns 1 when the session reads commands again and
 * the rest of the input is theirs, else 0. */
int smtpd_tls_read_reply(struct smtpd_session *sess, struct evbuffer *in);

/* Frees the session's TLS state; for session_free. */
void smtpd_tls_free(struct smtpd_session *sess);

/* ---- limits.c: smtpd_client_connection_count_limit and
 * smtpd_client_connection_rate_limit through anvil. */

/* Reads the limit settings into smtpd_settings; exits on invalid ones.
 * Call once at start. */
void smtpd_limits_init(void);

/*
 * Starts the check of sess's client against the limits. Returns 0 when
 * no check applies (the caller sends the banner), or 1 when anvil was
 * asked: limits.c then sends the banner, or 421 and closes, from the
 * loop. When anvil cannot be asked the client is let in.
 */
int smtpd_limits_start(struct smtpd_session *sess);

/* Cancels a check in progress and tells anvil the connection ended;
 * for session_free. */
void smtpd_limits_session_end(struct smtpd_session *sess);

/* ---- anvil_conn.c: the process's connection to anvil. */

/* Called once per call: status 0 with the client's open connections
 * and its connections in the current rate window (both counting this
 * one), or -1 when anvil could not answer. */
typedef void (*smtpd_anvil_cb)(void *arg, int status, long count,
    long rate);

struct smtpd_anvil_call;

/*
 * Asks anvil to count a new connection of ident ("SERVICE:ADDRESS"),
 * connecting first when needed. cb runs later from the loop, never
 * before this returns. The call stays valid until cb runs or
 * smtpd_anvil_cancel().
 */
struct smtpd_anvil_call *smtpd_anvil_connect(const char *ident,
    smtpd_anvil_cb cb, void *arg);

/* Forgets a call without running its callback, and withdraws its count
 * from anvil. Sets *call to NULL. */
void smtpd_anvil_cancel(struct smtpd_anvil_call **call);

/* Tells anvil that a connection of ident counted on connection
 * generation ended; does nothing when that connection is gone. */
void smtpd_anvil_disconnect(const char *ident, unsigned generation);

/* Generation of the anvil connection: it changes whenever the
 * connection is lost, and anvil forgets the counts made on it. */
unsigned smtpd_anvil_generation(void);

/* ---- lookup.c: client host names. */

/* Loads the hosts file for reverse lookups (before any chroot). */
void smtpd_lookup_init(void);

/* Starts finding the name of sess's client; calls
 * smtpd_session_start() when done, possibly before returning. */
void smtpd_lookup_start(struct smtpd_session *sess, const struct sockaddr *sa);

/* Abandons a lookup in progress (the session is going away). */
void smtpd_lookup_cancel(struct smtpd_session *sess);

/* ---- commands.c. */

/* Executes one command line (without CRLF, no NUL inside). */
void smtpd_command(struct smtpd_session *sess, char *line);

/* Called when the DATA machine has seen the end of the data. */
void smtpd_data_finished(struct smtpd_session *sess);

/* Writes the EHLO reply lines after the greeting line; the last line
 * ends the reply. Called by cmd_ehlo, or by auth.c once the mechanism
 * list came from authd. */
void smtpd_ehlo_finish(struct smtpd_session *sess);

/* ---- auth.c: SMTP AUTH (RFC 4954) through authd. */

/* Reads the AUTH settings; exits on invalid ones. Call once at start. */
void smtpd_auth_init(void);

/*
 * Called by EHLO before its reply. Returns 0 when the reply can be
 * written now, or 1 when the mechanism list is being fetched from authd:
 * the session then waits in SMTPD_STATE_AUTH and auth.c calls
 * smtpd_ehlo_finish() and resumes it.
 */
int smtpd_auth_ehlo_prepare(struct smtpd_session *sess);

/* Writes the AUTH lines of the EHLO reply (none when AUTH is not
 * offered in this session). */
void smtpd_auth_ehlo_lines(struct smtpd_session *sess);

/*
 * Handles "AUTH mechanism [initial-response]". Replies at once to a
 * command that cannot start, else sends the exchange to authd and
 * leaves the session in SMTPD_STATE_AUTH until authd replies. Counts
 * the outcome in the session's counters itself.
 */
void smtpd_auth_command(struct smtpd_session *sess, const char *args);

/* 1 when the next command line is a response to a 334 challenge. */
int smtpd_auth_wants_line(const struct smtpd_session *sess);

/* Handles a client line sent in reply to a 334 challenge. */
void smtpd_auth_line(struct smtpd_session *sess, const char *line);

/* Ends the exchange after a response line over line_length_limit, with
 * a 500 reply, so that the client's next line is read as a command. */
void smtpd_auth_line_too_long(struct smtpd_session *sess);

/* Cancels an exchange in progress and frees the session's AUTH state;
 * for session_free. */
void smtpd_auth_session_free(struct smtpd_session *sess);

/* 1 when s is padded base64 (RFC 4648 4) or empty. */
int smtpd_base64_valid(const char *s);

/* 1 when smtpd_sasl_authenticated_header asks Received to name the
 * authenticated user. */
int smtpd_auth_header_names_user(void);

/* The protocol name for Received and the queue file: SMTP, ESMTP,
 * ESMTPS, ESMTPA or ESMTPSA (RFC 3848). */
const char *smtpd_protocol_name(const struct smtpd_session *sess);

/* ---- authd_conn.c: the process's connection to authd. */

struct authd_reply;
struct attrs;

/* Called once per request: r is the reply, or NULL when authd could not
 * be reached, closed the connection or did not reply in time. */
typedef void (*smtpd_authd_cb)(void *arg, const struct authd_reply *r);

struct smtpd_authd_call;

/*
 * Sends req (taken over, wiped and freed) whose "session" attribute is
 * session, connecting first when needed. cb runs later from the loop,
 * never before this returns. Returns the call, which stays valid until
 * cb runs or smtpd_authd_cancel().
 */
struct smtpd_authd_call *smtpd_authd_send(struct attrs *req,
    const char *session, smtpd_authd_cb cb, void *arg);

/* Forgets a call without running its callback, and tells authd to drop
 * the exchange when send_abort is 1. Sets *call to NULL. */
void smtpd_authd_cancel(struct smtpd_authd_call **call, int send_abort);

/* Generation of the authd connection: it changes whenever the connection
 * is lost, so a cached answer can be dropped. */
unsigned smtpd_authd_generation(void);

#endif
