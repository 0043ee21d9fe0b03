/*
 * authd - the SASL authentication service (protocol: lib/authd_client.h).
 *
 * One process, one libevent loop in the main thread, and a pool of
 * worker threads for the libsasl2 calls, which block (a saslauthd check
 * can take seconds). The files divide the work:
 *
 *   main.c      setup, privileges, signals and the listener
 *   session.c   the connections and their sessions, replies, delays
 *   request.c   request parsing and strict base64, without I/O
 *   sasl.c      libsasl2 setup, mechanism lists and the worker pool
 *   throttle.c  failure counting and lockouts, with the time passed in
 *   scram.c     SCRAM challenges for unknown users (decoys)
 *
 * Everything but the worker body in sasl.c runs in the main thread, so
 * the throttle table and the connection lists need no locks. A session
 * belongs to a worker from authd_pool_submit() until the pool hands it
 * back through authd_session_job_done(); meanwhile the main thread only
 * reads or sets its busy and dead flags.
 */
#ifndef POSTERN_AUTHD_H
#define POSTERN_AUTHD_H

#include <stddef.h>
#include <sys/queue.h>

#include "attr.h"
#include "authd_client.h"
#include "sbuf.h"

struct event_base;
struct event;
struct bufferevent;
struct attr_decoder;
struct throttle;

/* Maximum open sessions on one connection. */
#define AUTHD_SESSIONS_PER_CONN 1024
/* Maximum length of a decoded client response, in bytes. */
#define AUTHD_RESPONSE_MAX 8192
/* Maximum length of a user name that authd records, in bytes. */
#define AUTHD_USER_MAX 255
/* Maximum length of a client address, in bytes. */
#define AUTHD_ADDRESS_MAX 64

/* ---- request.c ---- */

enum authd_op {
	AUTHD_OP_MECHANISMS,
	AUTHD_OP_START,
	AUTHD_OP_STEP,
	AUTHD_OP_ABORT
};

/* A parsed request; the strings point into the record it came from. */
struct authd_request {
	enum authd_op op;
	const char *session;
	const char *mechanism;      /* start */
	const char *response;       /* start (NULL when absent) and step */
	const char *client_address; /* start */
	int encrypted;              /* mechanisms and start */
};

/* Parses and checks a request record. Returns 0, or -1 with *err_out
 * pointing to a static message. */
int authd_request_parse(const struct attrs *rec, struct authd_request *out,
    const char **err_out);

/*
 * Decodes strict base64 (RFC 4648 section 4: padded, no white space, no
 * characters outside the alphabet) into out, a buffer of out_max bytes.
 * Returns the decoded length, or -1 when the text is invalid or decodes
 * to more than out_max bytes.
 */
long authd_base64_decode(const char *in, size_t in_len, unsigned char *out,
    size_t out_max);
/* Appends the padded base64 form of len bytes to out. Returns 0 or -1
 * when out's cap would be exceeded. */
int authd_base64_encode(const unsigned char *in, size_t len, struct sbuf *out);

/* Parses a duration "250ms", "2s", "1m" or a plain number of seconds
 * into milliseconds. Returns -1 when invalid. */
long authd_parse_duration_ms(const char *value);

/* 1 when name (case-insensitive) is in the space or comma separated
 * list. */
int authd_list_contains(const char *list, const char *name);

/* ---- throttle.c ---- */

struct throttle_policy {
	long delay_ms;       /* delay per failure within the window */
	long delay_limit_ms; /* maximum delay; 0: no maximum */
	int max_failures;    /* failures within the window that start a lockout */
	long window_ms;      /* counting window, and the length of a lockout */
};

/* Size of a key buffer for throttle_address_key. */
#define THROTTLE_ADDRESS_KEY_MAX (AUTHD_ADDRESS_MAX + 16)

/*
 * Failure counters keyed by string ("addr:192.0.2.1",
 * "addr:2001:db8:1:2::/64", "user:alice"). The window of a key starts at
 * its first failure. A key that reaches max_failures failures before the
 * window ends is locked out for window_ms from that failure.
 *
 * The table keeps at most max_entries keys: half for keys that start
 * with "user:", the rest for the others, so that failures from many
 * addresses cannot push out a user name's counter, nor the reverse. A
 * new key in a full half takes the place of an expired key if there is
 * one, else of the key with the fewest failures (then the oldest last
 * failure) among the 32 oldest windows without a lockout. A locked-out
 * key is evicted only when every key of its half is locked out, and then
 * the lockout that started first. Evictions of unexpired keys are
 * logged as a warning at most once a minute.
 */
struct throttle *throttle_new(const struct throttle_policy *policy,
    size_t max_entries);
void throttle_free(struct throttle **t);
/* Milliseconds left of a lockout on key, or 0 when none. */
long throttle_locked(struct throttle *t, const char *key, long long now_ms);
/* Records a failure. Returns the delay in ms before the failure reply;
 * sets *lockout_started to 1 when this failure started a lockout. */
long throttle_failure(struct throttle *t, const char *key, long long now_ms,
    int *lockout_started);
/* Forgets the failures of key after a successful login, unless the key
 * is locked out. */
void throttle_success(struct throttle *t, const char *key, long long now_ms);
/* Drops keys whose window and lockout are over. Returns the number
 * dropped. */
size_t throttle_expire(struct throttle *t, long long now_ms);
size_t throttle_size(const struct throttle *t);
/* Unexpired keys evicted from a full table since throttle_new. */
size_t throttle_evictions(const struct throttle *t);
/* The delay for the failures-th failure: delay_ms times failures, at
 * most delay_limit_ms. */
long throttle_delay(const struct throttle_policy *policy, int failures);
/*
 * Writes the throttle key of a client address into out (size bytes,
 * THROTTLE_ADDRESS_KEY_MAX is enough): "addr:" and an IPv4 address
 * (IPv4-mapped IPv6 addresses too), or the /64 network of an IPv6
 * address, because an end site usually gets a whole /64 and a client
 * can pick any address in it. Other text is kept, in lower case.
 */
void throttle_address_key(const char *address, char *out, size_t size);
/* Failures counted in the current window of key. */
int throttle_failures(struct throttle *t, const char *key, long long now_ms);

/* ---- scram.c ---- */

/* Maximum salt length of a decoy, in bytes. */
#define AUTHD_SCRAM_SALT_MAX 64

/* The parts of a SCRAM client-first-message that a decoy needs. */
struct authd_scram_first {
	char *user;          /* decoded saslname, allocated */
	const char *nonce;   /* client nonce, inside the parsed message */
	size_t nonce_len;
};

/* Draws the decoy salt key and reads the iteration count from the SASL
 * configuration file at sasl_config_path (may be NULL). */
void authd_scram_init(const char *sasl_config_path);
/* 1 for a SCRAM mechanism that authd can answer with a decoy. */
int authd_scram_is_scram(const char *mechanism);
/*
 * Parses a client-first-message (RFC 5802 section 7) of len bytes,
 * accepting what libsasl2 2.1.28 accepts before its user lookup. Returns
 * 0 (release out with authd_scram_first_clear), or -1 with *err_out
 * pointing to a static message.
 */
int authd_scram_parse_first(const char *msg, size_t len,
    struct authd_scram_first *out, const char **err_out);
void authd_scram_first_clear(struct authd_scram_first *first);
/* Writes a decoy server-first-message for first into out. Returns 0, or
 * -1 for a mechanism without a decoy or a failed random source. */
int authd_scram_decoy(const char *mechanism,
    const struct authd_scram_first *first, struct sbuf *out);
/* Learns the salt length and iteration count from a real
 * server-first-message that libsasl2 sent, and the time its step took
 * (elapsed_us, 0 when unknown). */
void authd_scram_observe(const char *mechanism, const char *msg, size_t len,
    long long elapsed_us);
/* Sleeps until a decoy step that has run for elapsed_us takes as long
 * as the average real first step observed; returns at once before any. */
void authd_scram_pad(const char *mechanism, long long elapsed_us);
/* Monotonic clock in microseconds. */
long long authd_scram_now_us(void);

/* ---- sasl.c ---- */

struct authd_session;

/* Result of one libsasl2 call, filled in by a worker. */
struct authd_job {
	int is_start;
	unsigned char *input;  /* decoded client data, wiped after use */
	long input_len;        /* -1: no initial response */
	int sasl_rc;
	struct sbuf challenge; /* base64 of the server output */
	char user[AUTHD_USER_MAX + 1]; /* authenticated, or as the client
					* gave it (canonicalization input) */
	char detail[160];      /* libsasl2's error detail, for the log */
};

/* Sets up libsasl2 for service with its configuration in config_dir,
 * and computes the mechanism lists. Exits on failure. */
void authd_sasl_init(const char *service, const char *config_dir,
    const char *mechanisms);
/* The mechanisms to offer, space separated (static storage). */
const char *authd_sasl_mechanisms(int encrypted);
/* Starts nthreads workers that report to the loop of base. */
void authd_pool_start(struct event_base *base, int nthreads);
/* Hands the session's job to a worker. */
void authd_pool_submit(struct authd_session *s);
/* Releases the session's libsasl2 connection; main thread only. */
void authd_sasl_dispose(struct authd_session *s);
/* Number of submitted jobs not yet handed back. */
size_t authd_pool_inflight(void);
/* Maps a libsasl2 result to a failure kind (credentials, internal...). */
enum authd_failure authd_sasl_failure(int sasl_rc, int *temporary_out);

/* ---- session.c ---- */

struct authd_conn;

struct authd_session {
	TAILQ_ENTRY(authd_session) entry;
	struct authd_conn *conn;
	char id[AUTHD_SESSION_MAX + 1];
	char mechanism[AUTHD_MECHANISM_MAX + 1];
	char client_address[AUTHD_ADDRESS_MAX + 1];
	int encrypted;
	void *sasl;            /* sasl_conn_t, owned by the current holder */
	void *sasl_callbacks;  /* sasl_callback_t[], alive as long as sasl */
	int busy;              /* with a worker, or waiting out a delay */
	int in_pool;           /* with a worker */
	int dead;              /* aborted or disconnected while busy */
	int client_messages;   /* client messages passed to libsasl2 */
	int scram_decoy;       /* answered with a decoy: fail the next step */
	long long last_used_ms;
	struct event *delay_ev;
	struct sbuf delayed_reply;
	struct authd_job job;
	struct authd_session *pool_next; /* pool queues, under their lock */
};

TAILQ_HEAD(authd_session_list, authd_session);

struct authd_settings {
	struct throttle_policy throttle;
	long session_timeout_ms;
};

extern struct authd_settings authd_cfg;
extern struct event_base *authd_base;
extern struct throttle *authd_throttle;

/* Starts serving a connected smtpd on fd (non-blocking). */
void authd_conn_new(int fd);
/* Number of open connections. */
size_t authd_conn_count(void);
/* Closes every connection (drain or stop). */
void authd_conn_close_all(void);
/* Called by the pool in the main thread when a job is done. */
void authd_session_job_done(struct authd_session *s);
/* Drops sessions idle for longer than authd_session_timeout. */
void authd_session_sweep(long long now_ms);

#endif
