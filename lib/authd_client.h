/*
 * authd_client - the protocol between smtpd and authd, and helpers to
 * speak it.
 *
 * smtpd connects to QUEUE_DIR/private/authd and sends lib/attr.h records.
 * One connection carries many SASL exchanges at once: each request names
 * its exchange with a "session" id that the caller chooses (printable
 * ASCII, at most AUTHD_SESSION_MAX bytes, unique on that connection while
 * the exchange lasts). authd answers every request except "abort" with
 * exactly one record that carries the same session id. Replies to
 * different sessions may come back in any order, so a caller matches
 * replies by session id and ignores a reply whose session it no longer
 * knows (one it has aborted).
 *
 * Requests (attribute "request"):
 *
 *   mechanisms  session, encrypted=yes|no
 *       reply: result=ok, mechanisms="PLAIN LOGIN" (space separated, in
 *       the order of authd_mechanisms; empty when none may be offered).
 *       The list is what authd_mechanisms allows and libsasl2 supports,
 *       never NTLM, and without plaintext mechanisms when the security
 *       options for that kind of session contain noplaintext
 *       (smtpd_sasl_security_options without TLS,
 *       smtpd_sasl_tls_security_options with TLS).
 *
 *   start       session, mechanism, client_address, encrypted=yes|no,
 *               and response: the initial response in base64 exactly as
 *               the client sent it. Absent when the client sent none;
 *               "=" for an empty initial response (RFC 4954 section 4);
 *               "*" cancels.
 *   step        session, response: the client's base64 line as sent
 *               ("" is an empty response, "*" cancels).
 *   abort       session. authd forgets the exchange and sends no reply,
 *               not even for a start or step of it still in progress.
 *
 * Replies to start and step:
 *
 *   result=continue  challenge=BASE64 (may be empty): send "334 BASE64"
 *                    and pass the client's next line in a step request.
 *   result=ok        user=NAME: authenticated; the exchange is over.
 *   result=fail      temporary=yes|no, failure=KIND, reason=TEXT. The
 *                    exchange is over. reason is for the log and never
 *                    holds a password or an AUTH payload. A wrong
 *                    password and an unknown user give the same reply.
 *
 * A failed login is answered only after a delay that grows with the
 * failures of that client address and user name; past
 * authd_lockout_failures failures in authd_lockout_window the address or
 * user is locked out for one window (failure=throttled).
 *
 * Every helper here is non-blocking unless it says otherwise.
 */
#ifndef POSTERN_AUTHD_CLIENT_H
#define POSTERN_AUTHD_CLIENT_H

#include <stddef.h>
#include "attr.h"

/* Socket path relative to queue_directory. */
#define AUTHD_SOCKET_NAME "private/authd"

/* Maximum length of a session id, in bytes. */
#define AUTHD_SESSION_MAX 64

/* Maximum length of a mechanism name (RFC 4422 section 3.1: 20). */
#define AUTHD_MECHANISM_MAX 20

enum authd_result {
	AUTHD_RESULT_CONTINUE,
	AUTHD_RESULT_OK,
	AUTHD_RESULT_FAIL
};

/* Why an exchange failed, with the SMTP reply smtpd should send. */
enum authd_failure {
	AUTHD_FAILURE_NONE,
	AUTHD_FAILURE_CREDENTIALS, /* "credentials": 535 5.7.8 */
	AUTHD_FAILURE_THROTTLED,   /* "throttled": 454 4.7.0, temporary */
	AUTHD_FAILURE_SYNTAX,      /* "syntax", invalid base64: 501 5.5.2 */
	AUTHD_FAILURE_CANCELLED,   /* "cancelled" by "*": 501 5.7.0 */
	AUTHD_FAILURE_MECHANISM,   /* "mechanism" not offered: 504 5.5.4 */
	AUTHD_FAILURE_INTERNAL,    /* "internal", temporary: 454 4.7.0 */
	AUTHD_FAILURE_REQUEST      /* "request": the caller broke the protocol,
				    * e.g. an unknown session: 454 4.7.0 */
};

struct authd_reply {
	char session[AUTHD_SESSION_MAX + 1];
	enum authd_result result;
	char *challenge;   /* continue: base64 text, possibly empty */
	char *user;        /* ok: the authenticated user name */
	char *mechanisms;  /* reply to "mechanisms" */
	int temporary;     /* fail: 1 for a temporary failure */
	enum authd_failure failure;
	char *reason;      /* fail: text for the log */
};

/*
 * Request builders. Each returns a new record (free it with
 * authd_attrs_free_wipe) that a blocking caller passes to
 * attr_stream_send and an event-driven caller encodes with attrs_encode.
 * initial_response may be NULL (absent).
 */
struct attrs *authd_request_mechanisms(const char *session, int encrypted);
struct attrs *authd_request_start(const char *session, const char *mechanism,
    const char *initial_response, const char *client_address, int encrypted);
struct attrs *authd_request_step(const char *session, const char *response);
struct attrs *authd_request_abort(const char *session);

/* Overwrites every value of the record with zeros, then frees it; for
 * records that hold AUTH payloads. Accepts NULL and *a == NULL. */
void authd_attrs_free_wipe(struct attrs **a);

/*
 * Parses a reply record into *out (the caller releases it with
 * authd_reply_clear). Returns 0, or -1 with *err_out pointing to a static
 * message when a required attribute is missing or invalid.
 */
int authd_reply_parse(const struct attrs *rec, struct authd_reply *out,
    const char **err_out);
void authd_reply_clear(struct authd_reply *r);

/* The name of a failure kind as sent on the wire, and back (unknown
 * names map to AUTHD_FAILURE_INTERNAL). */
const char *authd_failure_name(enum authd_failure f);
enum authd_failure authd_failure_from_name(const char *name);

/* The SMTP reply that smtpd sends for a failed reply ("535 5.7.8 Error:
 * authentication failed: authentication failure"); a static string. */
const char *authd_failure_smtp_reply(const struct authd_reply *r);

/*
 * Blocking helper, for tests and tools. authd_client_connect() connects
 * to queue_dir/private/authd (queue_dir NULL: the current directory).
 * Returns NULL with errno on failure. authd_client_call() sends req and
 * waits up to timeout_ms for the reply with the same session id,
 * skipping replies to other sessions. Returns 0 with *out filled, or -1
 * with errno (ETIMEDOUT, EPIPE, EPROTO for a malformed reply).
 */
struct authd_client;
struct authd_client *authd_client_connect(const char *queue_dir);
int authd_client_call(struct authd_client *c, const struct attrs *req,
    struct authd_reply *out, int timeout_ms);
/* Sends a record without waiting for a reply (for abort). */
int authd_client_send(struct authd_client *c, const struct attrs *req,
    int timeout_ms);
void authd_client_close(struct authd_client **c);

#endif
