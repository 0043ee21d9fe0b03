/*
 * authd_client - request builders, reply parser and a blocking client
 * for the authd protocol (see authd_client.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd_client.h"
#include "iox.h"
#include "sbuf.h"

struct authd_client {
	struct attr_stream *stream;
};

static const char *const authd_failure_names[] = {
	[AUTHD_FAILURE_NONE] = "none",
	[AUTHD_FAILURE_CREDENTIALS] = "credentials",
	[AUTHD_FAILURE_THROTTLED] = "throttled",
	[AUTHD_FAILURE_SYNTAX] = "syntax",
	[AUTHD_FAILURE_CANCELLED] = "cancelled",
	[AUTHD_FAILURE_MECHANISM] = "mechanism",
	[AUTHD_FAILURE_INTERNAL] = "internal",
	[AUTHD_FAILURE_REQUEST] = "request",
};

#define AUTHD_FAILURE_COUNT \
	(sizeof(authd_failure_names) / sizeof(authd_failure_names[0]))

const char *authd_failure_name(enum authd_failure f)
{
	if ((size_t)f >= AUTHD_FAILURE_COUNT)
		return "internal";
	return authd_failure_names[f];
}

enum authd_failure authd_failure_from_name(const char *name)
{
	for (size_t i = 0; i < AUTHD_FAILURE_COUNT; i++)
		if (name != NULL && strcmp(authd_failure_names[i], name) == 0)
			return (enum authd_failure)i;
	return AUTHD_FAILURE_INTERNAL;
}

const char *authd_failure_smtp_reply(const struct authd_reply *r)
{
	switch (r->failure) {
	case AUTHD_FAILURE_CREDENTIALS:
		/* The same text for a wrong password and an unknown user,
		 * so a client cannot tell which names exist. */
		return "535 5.7.8 Error: authentication failed: "
		    "authentication failure";
	case AUTHD_FAILURE_SYNTAX:
		return "501 5.5.2 Error: invalid base64 data";
	case AUTHD_FAILURE_CANCELLED:
		return "501 5.7.0 Error: authentication cancelled";
	case AUTHD_FAILURE_MECHANISM:
		return "504 5.5.4 Error: unsupported authentication mechanism";
	case AUTHD_FAILURE_THROTTLED:
		return "454 4.7.0 Temporary authentication failure: too many "
		    "failed logins, try again later";
	default:
		return "454 4.7.0 Temporary authentication failure";
	}
}

struct attrs *authd_request_mechanisms(const char *session, int encrypted)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "request", "mechanisms");
	attrs_add(a, "session", session);
	attrs_add(a, "encrypted", encrypted ? "yes" : "no");
	return a;
}

struct attrs *authd_request_start(const char *session, const char *mechanism,
    const char *initial_response, const char *client_address, int encrypted)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "request", "start");
	attrs_add(a, "session", session);
	attrs_add(a, "mechanism", mechanism);
	if (initial_response != NULL)
		attrs_add(a, "response", initial_response);
	attrs_add(a, "client_address", client_address);
	attrs_add(a, "encrypted", encrypted ? "yes" : "no");
	return a;
}

struct attrs *authd_request_step(const char *session, const char *response)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "request", "step");
	attrs_add(a, "session", session);
	attrs_add(a, "response", response);
	return a;
}

struct attrs *authd_request_abort(const char *session)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "request", "abort");
	attrs_add(a, "session", session);
	return a;
}

void authd_attrs_free_wipe(struct attrs **a)
{
	if (a == NULL || *a == NULL)
		return;
	for (size_t i = 0; i < (*a)->count; i++)
		explicit_bzero((*a)->items[i].value, (*a)->items[i].value_len);
	attrs_free(a);
}

static char *authd_dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

int authd_reply_parse(const struct attrs *rec, struct authd_reply *out,
    const char **err_out)
{
	const char *session = attrs_get(rec, "session");
	const char *result = attrs_get(rec, "result");

	memset(out, 0, sizeof(*out));
	if (session == NULL || strlen(session) > AUTHD_SESSION_MAX) {
		*err_out = "missing or invalid session in authd reply";
		return -1;
	}
	strcpy(out->session, session);
	if (result == NULL) {
		*err_out = "missing result in authd reply";
		return -1;
	}
	if (strcmp(result, "continue") == 0) {
		out->result = AUTHD_RESULT_CONTINUE;
		out->challenge = authd_dup_or_null(attrs_get(rec, "challenge"));
		if (out->challenge == NULL)
			out->challenge = xstrdup("");
	} else if (strcmp(result, "ok") == 0) {
		out->result = AUTHD_RESULT_OK;
		out->user = authd_dup_or_null(attrs_get(rec, "user"));
		out->mechanisms = authd_dup_or_null(attrs_get(rec, "mechanisms"));
		if (out->user == NULL && out->mechanisms == NULL) {
			*err_out = "authd reply ok without user or mechanisms";
			return -1;
		}
	} else if (strcmp(result, "fail") == 0) {
		const char *temporary = attrs_get(rec, "temporary");

		out->result = AUTHD_RESULT_FAIL;
		out->temporary = temporary != NULL && strcmp(temporary, "yes") == 0;
		out->failure = authd_failure_from_name(attrs_get(rec, "failure"));
		out->reason = xstrdup(attrs_get(rec, "reason") != NULL
		    ? attrs_get(rec, "reason") : "no reason given");
	} else {
		*err_out = "unknown result in authd reply";
		return -1;
	}
	return 0;
}

void authd_reply_clear(struct authd_reply *r)
{
	free(r->challenge);
	free(r->user);
	free(r->mechanisms);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

struct authd_client *authd_client_connect(const char *queue_dir)
{
	char *path = queue_dir != NULL
	    ? xasprintf("%s/%s", queue_dir, AUTHD_SOCKET_NAME)
	    : xstrdup(AUTHD_SOCKET_NAME);
	int fd = iox_unix_connect(path, 0);
	int saved = errno;

	free(path);
	if (fd < 0) {
		errno = saved;
		return NULL;
	}
	struct authd_client *c = xcalloc(1, sizeof(*c));
	c->stream = attr_stream_new(fd);
	return c;
}

int authd_client_send(struct authd_client *c, const struct attrs *req,
    int timeout_ms)
{
	return attr_stream_send(c->stream, req, -1, timeout_ms);
}

int authd_client_call(struct authd_client *c, const struct attrs *req,
    struct authd_reply *out, int timeout_ms)
{
	long long deadline = iox_now_ms() + timeout_ms;
	const char *session = attrs_get(req, "session");

	if (attr_stream_send(c->stream, req, -1, timeout_ms) < 0)
		return -1;
	for (;;) {
		struct attrs *rec = NULL;
		const char *err;
		long long left = deadline - iox_now_ms();

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		int rc = attr_stream_recv(c->stream, &rec, NULL, (int)left);
		if (rc == 0) {
			errno = EPIPE;
			return -1;
		}
		if (rc < 0)
			return -1;
		rc = authd_reply_parse(rec, out, &err);
		attrs_free(&rec);
		if (rc < 0) {
			authd_reply_clear(out);
			errno = EPROTO;
			return -1;
		}
		if (session != NULL && strcmp(out->session, session) == 0)
			return 0;
		authd_reply_clear(out);
	}
}

void authd_client_close(struct authd_client **c)
{
	if (*c == NULL)
		return;
	attr_stream_close(&(*c)->stream);
	free(*c);
	*c = NULL;
}
