/*
 * The requests of one smtpd connection: each connection holds many SASL
 * exchanges (sessions) at once, keyed by the caller's session id. A
 * request either gets its reply at once or hands the session to the
 * worker pool; failed logins are answered after the throttling delay,
 * on a libevent timer, so no request waits for another.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sasl/sasl.h>

#include "authd.h"
#include "iox.h"
#include "log.h"

/* Bytes of unread replies after which authd gives up on a caller. */
#define AUTHD_OUTPUT_MAX (4u * 1024 * 1024)

struct authd_conn {
	TAILQ_ENTRY(authd_conn) entry;
	struct bufferevent *bev;
	struct attr_decoder *dec;
	struct authd_session_list sessions;
	size_t nsessions;
	unsigned long id;
};

static TAILQ_HEAD(, authd_conn) authd_conns =
    TAILQ_HEAD_INITIALIZER(authd_conns);
static size_t authd_nconns;
static unsigned long authd_next_conn_id = 1;

static void authd_conn_free(struct authd_conn *c);

/* Sends a record and wipes its encoded form, which may carry a user
 * name or a challenge. */
static void authd_send(struct authd_conn *c, struct attrs *a)
{
	struct sbuf out;

	sbuf_init(&out, ATTR_MAX_RECORD + 1);
	if (attrs_encode(a, &out) == 0)
		bufferevent_write(c->bev, out.data, out.len);
	else
		log_error("reply too large for the attribute format; dropped");
	if (out.data != NULL)
		explicit_bzero(out.data, out.len);
	sbuf_free(&out);
	authd_attrs_free_wipe(&a);
}

static struct attrs *authd_fail_record(const char *session,
    enum authd_failure failure, int temporary, const char *reason)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "session", session);
	attrs_add(a, "result", "fail");
	attrs_add(a, "temporary", temporary ? "yes" : "no");
	attrs_add(a, "failure", authd_failure_name(failure));
	attrs_add(a, "reason", reason);
	return a;
}

static void authd_reply_fail(struct authd_conn *c, const char *session,
    enum authd_failure failure, int temporary, const char *reason)
{
	authd_send(c, authd_fail_record(session, failure, temporary, reason));
}

static struct authd_session *authd_session_find(struct authd_conn *c,
    const char *id)
{
	struct authd_session *s;

	TAILQ_FOREACH(s, &c->sessions, entry)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static void authd_session_free(struct authd_session *s)
{
	if (s->conn != NULL) {
		TAILQ_REMOVE(&s->conn->sessions, s, entry);
		s->conn->nsessions--;
	}
	authd_sasl_dispose(s);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->delayed_reply.data != NULL)
		explicit_bzero(s->delayed_reply.data, s->delayed_reply.len);
	sbuf_free(&s->delayed_reply);
	sbuf_free(&s->job.challenge);
	if (s->job.input != NULL) {
		explicit_bzero(s->job.input, AUTHD_RESPONSE_MAX);
		free(s->job.input);
	}
	explicit_bzero(s, sizeof(*s));
	free(s);
}

static struct authd_session *authd_session_new(struct authd_conn *c,
    const struct authd_request *req)
{
	struct authd_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	snprintf(s->id, sizeof(s->id), "%s", req->session);
	snprintf(s->mechanism, sizeof(s->mechanism), "%s", req->mechanism);
	for (char *p = s->mechanism; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	snprintf(s->client_address, sizeof(s->client_address), "%s",
	    req->client_address);
	s->encrypted = req->encrypted;
	s->last_used_ms = iox_now_ms();
	sbuf_init(&s->delayed_reply, ATTR_MAX_RECORD);
	sbuf_init(&s->job.challenge, ATTR_MAX_RECORD / 2);
	s->job.input = xmalloc(AUTHD_RESPONSE_MAX);
	TAILQ_INSERT_TAIL(&c->sessions, s, entry);
	c->nsessions++;
	return s;
}

/* Decodes the client's base64 into the session's job. "=" (initial
 * response only) is an empty response and NULL means none. Returns 0,
 * or -1 when the text is not valid base64. */
static int authd_session_take_input(struct authd_session *s,
    const char *response, int initial)
{
	long n;

	if (response == NULL) {
		s->job.input_len = -1;
		return 0;
	}
	if (initial && strcmp(response, "=") == 0) {
		s->job.input_len = 0;
		return 0;
	}
	n = authd_base64_decode(response, strlen(response), s->job.input,
	    AUTHD_RESPONSE_MAX);
	if (n < 0)
		return -1;
	s->job.input_len = n;
	return 0;
}

static void authd_session_submit(struct authd_session *s, int is_start)
{
	s->job.is_start = is_start;
	s->busy = 1;
	s->in_pool = 1;
	authd_pool_submit(s);
}

static char *authd_key(const char *kind, const char *value)
{
	char *key = xasprintf("%s:%s", kind, value);

	str_lower(key);
	return key;
}

static void authd_handle_start(struct authd_conn *c,
    const struct authd_request *req)
{
	struct authd_session *s;
	char key[THROTTLE_ADDRESS_KEY_MAX];
	long locked;

	if (authd_session_find(c, req->session) != NULL) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_REQUEST, 1,
		    "session id already in use on this connection");
		return;
	}
	if (c->nsessions >= AUTHD_SESSIONS_PER_CONN) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_INTERNAL, 1,
		    "too many sessions on this connection");
		return;
	}
	if (req->response != NULL && strcmp(req->response, "*") == 0) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_CANCELLED, 0,
		    "cancelled by the client");
		return;
	}
	if (!authd_list_contains(authd_sasl_mechanisms(req->encrypted),
	    req->mechanism)) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_MECHANISM, 0,
		    "mechanism not offered");
		return;
	}

	throttle_address_key(req->client_address, key, sizeof(key));
	locked = throttle_locked(authd_throttle, key, iox_now_ms());
	if (locked > 0) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_THROTTLED, 1,
		    "client address locked out after repeated failures");
		return;
	}

	s = authd_session_new(c, req);
	if (authd_session_take_input(s, req->response, 1) < 0) {
		authd_session_free(s);
		authd_reply_fail(c, req->session, AUTHD_FAILURE_SYNTAX, 0,
		    "invalid base64 in the initial response");
		return;
	}
	authd_session_submit(s, 1);
}

static void authd_handle_step(struct authd_conn *c,
    const struct authd_request *req)
{
	struct authd_session *s = authd_session_find(c, req->session);

	if (s == NULL) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_REQUEST, 1,
		    "unknown session");
		return;
	}
	if (s->busy) {
		authd_reply_fail(c, req->session, AUTHD_FAILURE_REQUEST, 1,
		    "a request of this session is still in progress");
		return;
	}
	if (strcmp(req->response, "*") == 0) {
		authd_session_free(s);
		authd_reply_fail(c, req->session, AUTHD_FAILURE_CANCELLED, 0,
		    "cancelled by the client");
		return;
	}
	if (authd_session_take_input(s, req->response, 0) < 0) {
		authd_session_free(s);
		authd_reply_fail(c, req->session, AUTHD_FAILURE_SYNTAX, 0,
		    "invalid base64 in the response");
		return;
	}
	s->last_used_ms = iox_now_ms();
	authd_session_submit(s, 0);
}

static void authd_handle_abort(struct authd_conn *c,
    const struct authd_request *req)
{
	struct authd_session *s = authd_session_find(c, req->session);

	if (s == NULL)
		return;
	if (s->in_pool) {
		/* The worker still holds it: detach it, free it on return. */
		TAILQ_REMOVE(&c->sessions, s, entry);
		c->nsessions--;
		s->conn = NULL;
		s->dead = 1;
		return;
	}
	authd_session_free(s);
}

static void authd_handle_mechanisms(struct authd_conn *c,
    const struct authd_request *req)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "session", req->session);
	attrs_add(a, "result", "ok");
	attrs_add(a, "mechanisms", authd_sasl_mechanisms(req->encrypted));
	authd_send(c, a);
}

static void authd_handle_record(struct authd_conn *c, struct attrs *rec)
{
	struct authd_request req;
	const char *err;

	if (authd_request_parse(rec, &req, &err) < 0) {
		const char *session = attrs_get(rec, "session");

		if (log_ratelimit("authd-request", 10, 60))
			log_warn("invalid request on connection %lu: %s", c->id,
			    err);
		authd_reply_fail(c, session != NULL && strlen(session)
		    <= AUTHD_SESSION_MAX ? session : "-", AUTHD_FAILURE_REQUEST,
		    1, err);
		return;
	}
	switch (req.op) {
	case AUTHD_OP_MECHANISMS:
		authd_handle_mechanisms(c, &req);
		break;
	case AUTHD_OP_START:
		authd_handle_start(c, &req);
		break;
	case AUTHD_OP_STEP:
		authd_handle_step(c, &req);
		break;
	case AUTHD_OP_ABORT:
		authd_handle_abort(c, &req);
		break;
	}
}

/* ---- results from the workers ---- */

static void authd_log_lockout(const char *what, const char *value)
{
	char clean[AUTHD_USER_MAX + 1];

	str_sanitize(clean, sizeof(clean), value, strlen(value));
	log_warn("lockout: %s %s locked out for %ld s after %d failed logins "
	    "within %ld s", what, clean, authd_cfg.throttle.window_ms / 1000,
	    authd_cfg.throttle.max_failures, authd_cfg.throttle.window_ms / 1000);
}

/* Counts a failed login against the address and the user name, and
 * returns the delay before the reply, in milliseconds. */
static long authd_count_failure(struct authd_session *s)
{
	long long now = iox_now_ms();
	int started = 0;
	char address_key[THROTTLE_ADDRESS_KEY_MAX];
	long delay;

	throttle_address_key(s->client_address, address_key,
	    sizeof(address_key));
	delay = throttle_failure(authd_throttle, address_key, now, &started);
	if (started) /* the key without "addr:": an IPv6 address's /64 */
		authd_log_lockout("client address", address_key + 5);
	if (s->job.user[0] != '\0') {
		long user_delay;
		char *key = authd_key("user", s->job.user);

		user_delay = throttle_failure(authd_throttle, key, now, &started);
		free(key);
		if (started)
			authd_log_lockout("user", s->job.user);
		if (user_delay > delay)
			delay = user_delay;
	}
	return delay;
}

static void authd_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct authd_session *s = arg;

	(void)fd;
	(void)what;
	bufferevent_write(s->conn->bev, s->delayed_reply.data,
	    s->delayed_reply.len);
	authd_session_free(s);
}

static void authd_session_fail(struct authd_session *s)
{
	int temporary;
	enum authd_failure failure = authd_sasl_failure(s->job.sasl_rc,
	    &temporary);
	char user[AUTHD_USER_MAX + 1];
	long delay = 0;
	struct attrs *a;

	str_sanitize(user, sizeof(user), s->job.user, strlen(s->job.user));
	if (failure == AUTHD_FAILURE_CREDENTIALS)
		delay = authd_count_failure(s);
	if (failure != AUTHD_FAILURE_CREDENTIALS || log_ratelimit("authd-fail",
	    100, 60))
		log_warn("%s authentication failed: client=%s user=%s: %s",
		    s->mechanism, s->client_address, user[0] ? user : "-",
		    s->job.detail[0] ? s->job.detail
		    : sasl_errstring(s->job.sasl_rc, NULL, NULL));
	authd_sasl_dispose(s);

	/* The same reason for an unknown user and a wrong password. */
	a = authd_fail_record(s->id, failure, temporary,
	    failure == AUTHD_FAILURE_CREDENTIALS ? "authentication failed"
	    : failure == AUTHD_FAILURE_MECHANISM ? "mechanism not available"
	    : "temporary failure in the SASL library");
	if (attrs_encode(a, &s->delayed_reply) < 0 || delay <= 0) {
		authd_send(s->conn, a);
		authd_session_free(s);
		return;
	}
	authd_attrs_free_wipe(&a);

	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	s->busy = 1;
	s->delay_ev = evtimer_new(authd_base, authd_delay_cb, s);
	evtimer_add(s->delay_ev, &tv);
}

static void authd_session_succeed(struct authd_session *s)
{
	char *key = authd_key("user", s->job.user);
	long long now = iox_now_ms();
	char user[AUTHD_USER_MAX + 1];
	struct attrs *a;

	str_sanitize(user, sizeof(user), s->job.user, strlen(s->job.user));
	if (throttle_locked(authd_throttle, key, now) > 0) {
		free(key);
		if (log_ratelimit("authd-locked", 10, 60))
			log_warn("%s login rejected: client=%s user=%s: user locked "
			    "out", s->mechanism, s->client_address, user);
		authd_reply_fail(s->conn, s->id, AUTHD_FAILURE_THROTTLED, 1,
		    "user locked out after repeated failures");
		authd_session_free(s);
		return;
	}
	throttle_success(authd_throttle, key, now);
	free(key);
	log_info("%s login: client=%s user=%s", s->mechanism, s->client_address,
	    user);

	a = attrs_new();
	attrs_add(a, "session", s->id);
	attrs_add(a, "result", "ok");
	attrs_add(a, "user", s->job.user);
	authd_send(s->conn, a);
	authd_session_free(s);
}

void authd_session_job_done(struct authd_session *s)
{
	s->in_pool = 0;
	s->busy = 0;
	if (s->dead) {
		authd_session_free(s);
		return;
	}
	s->last_used_ms = iox_now_ms();
	if (s->job.sasl_rc == SASL_CONTINUE) {
		struct attrs *a = attrs_new();

		attrs_add(a, "session", s->id);
		attrs_add(a, "result", "continue");
		attrs_add(a, "challenge", sbuf_cstr(&s->job.challenge));
		authd_send(s->conn, a);
		return;
	}
	if (s->job.sasl_rc == SASL_OK)
		authd_session_succeed(s);
	else
		authd_session_fail(s);
}

/* ---- connections ---- */

static void authd_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct authd_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[16384];
	int n;

	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		while (off < (size_t)n) {
			struct attrs *rec = NULL;
			const char *err = NULL;
			size_t used = 0;
			int rc = attr_decoder_feed(c->dec, buf + off, (size_t)n - off,
			    &used, &rec, &err);

			if (rc < 0) {
				explicit_bzero(buf, sizeof(buf));
				log_warn("closing connection %lu: %s", c->id, err);
				authd_conn_free(c);
				return;
			}
			off += rc == 1 ? used : (size_t)n - off;
			if (rc == 1) {
				authd_handle_record(c, rec);
				authd_attrs_free_wipe(&rec);
			}
		}
	}
	explicit_bzero(buf, sizeof(buf));
	if (evbuffer_get_length(bufferevent_get_output(bev)) > AUTHD_OUTPUT_MAX) {
		log_warn("closing connection %lu: the caller does not read its "
		    "replies", c->id);
		authd_conn_free(c);
	}
}

static void authd_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct authd_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR)
		log_warn("connection %lu: %s", c->id, strerror(errno));
	authd_conn_free(c);
}

void authd_conn_new(int fd)
{
	struct authd_conn *c = xcalloc(1, sizeof(*c));

	c->bev = bufferevent_socket_new(authd_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("cannot set up connection: %s", strerror(errno));
		close(fd);
		free(c);
		return;
	}
	c->dec = attr_decoder_new();
	c->id = authd_next_conn_id++;
	TAILQ_INIT(&c->sessions);
	TAILQ_INSERT_TAIL(&authd_conns, c, entry);
	authd_nconns++;
	bufferevent_setcb(c->bev, authd_conn_read_cb, NULL, authd_conn_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("connection %lu opened", c->id);
}

static void authd_conn_free(struct authd_conn *c)
{
	struct authd_session *s;

	while ((s = TAILQ_FIRST(&c->sessions)) != NULL) {
		if (s->in_pool) {
			TAILQ_REMOVE(&c->sessions, s, entry);
			c->nsessions--;
			s->conn = NULL;
			s->dead = 1;
		} else {
			authd_session_free(s);
		}
	}
	TAILQ_REMOVE(&authd_conns, c, entry);
	authd_nconns--;
	log_debug("connection %lu closed", c->id);
	bufferevent_free(c->bev);
	attr_decoder_free(&c->dec);
	free(c);
}

size_t authd_conn_count(void)
{
	return authd_nconns;
}

void authd_conn_close_all(void)
{
	struct authd_conn *c;

	while ((c = TAILQ_FIRST(&authd_conns)) != NULL)
		authd_conn_free(c);
}

void authd_session_sweep(long long now_ms)
{
	struct authd_conn *c;

	TAILQ_FOREACH(c, &authd_conns, entry) {
		struct authd_session *s, *next;

		for (s = TAILQ_FIRST(&c->sessions); s != NULL; s = next) {
			next = TAILQ_NEXT(s, entry);
			if (s->busy
			    || now_ms - s->last_used_ms < authd_cfg.session_timeout_ms)
				continue;
			log_info("dropping session %s of connection %lu after %ld s "
			    "without a request", s->id, c->id,
			    authd_cfg.session_timeout_ms / 1000);
			authd_session_free(s);
		}
	}
	throttle_expire(authd_throttle, now_ms);
}
