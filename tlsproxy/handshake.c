/*
 * The handshake on the network socket and the reply record to the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "iox.h"
#include "log.h"
#include "tlsproxy.h"
#include "tlsproxy_client.h"

static void handshake_step(struct tlsproxy_session *s);

static void reply_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tlsproxy_session *s = arg;

	while (s->reply_sent < s->reply.len) {
		ssize_t n = write(s->ctl_fd, s->reply.data + s->reply_sent,
		    s->reply.len - s->reply_sent);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (s->ctl_write_ev == NULL) {
				s->ctl_write_ev = event_new(tlsproxy_base, s->ctl_fd,
				    EV_WRITE | EV_PERSIST, reply_write_cb, s);
				event_add(s->ctl_write_ev, NULL);
			}
			return;
		}
		if (n <= 0) {
			log_info("%s: the caller left before the reply: %s",
			    s->peer, strerror(errno));
			tlsproxy_session_free(s);
			return;
		}
		s->reply_sent += (size_t)n;
	}

	if (s->ctl_write_ev != NULL) {
		event_free(s->ctl_write_ev);
		s->ctl_write_ev = NULL;
	}
	if (!s->reply_ok) {
		tlsproxy_session_free(s);
		return;
	}
	tlsproxy_relay_start(s);
}

static void reply_send(struct tlsproxy_session *s, struct attrs *reply)
{
	s->state = TLSPROXY_REPLY;
	if (attrs_encode(reply, &s->reply) < 0)
		log_panic("the reply record does not fit in %d bytes",
		    ATTR_MAX_RECORD);
	attrs_free(&reply);
	reply_write_cb(s->ctl_fd, EV_WRITE, s);
}

void tlsproxy_fail(struct tlsproxy_session *s, const char *reason)
{
	struct attrs *reply = attrs_new();

	if (log_ratelimit("tlsproxy-fail", 20, 60))
		log_warn("%s: service=%s role=%s: TLS handshake failed: %s",
		    s->peer[0] ? s->peer : "unknown", s->service,
		    s->client_role ? "client" : "server", reason);
	attrs_add(reply, "status", "fail");
	attrs_add(reply, "reason", reason);
	s->reply_ok = 0;
	if (s->tls != NULL) {
		gnutls_deinit(s->tls);
		s->tls = NULL;
	}
	if (s->net_read_ev != NULL)
		event_del(s->net_read_ev);
	if (s->net_write_ev != NULL)
		event_del(s->net_write_ev);
	if (s->net_fd >= 0) {
		close(s->net_fd);
		s->net_fd = -1;
	}
	reply_send(s, reply);
}

static void handshake_done(struct tlsproxy_session *s)
{
	struct attrs *reply = attrs_new();
	char verify_error[128] = "";
	char line[256];
	int verified = 0;

	if (s->client_role) {
		if (tlsproxy_client_verify(s, &verified, verify_error,
		    sizeof(verify_error)) < 0) {
			char reason[200];

			snprintf(reason, sizeof(reason), "server certificate "
			    "verification failed: %s", verify_error);
			attrs_free(&reply);
			tlsproxy_fail(s, reason);
			return;
		}
	} else {
		verified = tlsproxy_server_verify_peer(s, verify_error,
		    sizeof(verify_error)) == 0;
	}

	attrs_add(reply, "status", "ok");
	tlsproxy_summary_add(s, reply);
	attrs_add(reply, "verified", verified ? "yes" : "no");
	attrs_add(reply, "verify_error", verify_error);

	tlsproxy_summary_line(s->tls, line, sizeof(line));
	log_info("%s: service=%s role=%s: TLS established: %s%s sni=%s "
	    "verified=%s", s->peer, s->service,
	    s->client_role ? "client" : "server", line,
	    gnutls_session_is_resumed(s->tls) ? " resumed" : "",
	    attrs_get(reply, "sni") ? attrs_get(reply, "sni") : "",
	    verified ? "yes" : "no");
	s->reply_ok = 1;
	reply_send(s, reply);
}

static void handshake_io_cb(evutil_socket_t fd, short what, void *arg)
{
	handshake_step(arg);
}

static void handshake_step(struct tlsproxy_session *s)
{
	int rc;

	for (;;) {
		rc = gnutls_handshake(s->tls);
		if (rc == GNUTLS_E_SUCCESS) {
			handshake_done(s);
			return;
		}
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			event_add(gnutls_record_get_direction(s->tls) == 0
			    ? s->net_read_ev : s->net_write_ev, NULL);
			return;
		}
		if (gnutls_error_is_fatal(rc)) {
			tlsproxy_fail(s, gnutls_strerror(rc));
			return;
		}
		/* A warning alert: the handshake continues. */
	}
}

/* Copies the request attributes that apply to both roles. Returns 0 or
 * -1 with *reason_out set. */
static int request_common(struct tlsproxy_session *s, const char **reason_out)
{
	const char *role = attrs_get(s->request, "role");
	const char *peer = attrs_get(s->request, "peer");
	const char *service = attrs_get(s->request, "service");

	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "unknown");
	snprintf(s->service, sizeof(s->service), "%s", service ? service : "-");
	if (role == NULL || (strcmp(role, "server") != 0 &&
	    strcmp(role, "client") != 0)) {
		*reason_out = "invalid request: role must be server or client";
		return -1;
	}
	s->client_role = strcmp(role, "client") == 0;
	if (s->net_fd < 0) {
		*reason_out = "invalid request: no network socket was passed";
		return -1;
	}
	return 0;
}

void tlsproxy_handshake_start(struct tlsproxy_session *s)
{
	const char *reason = NULL;
	char buf[200];

	s->state = TLSPROXY_HANDSHAKE;
	if (request_common(s, &reason) < 0) {
		tlsproxy_fail(s, reason);
		return;
	}
	iox_set_nonblock(s->net_fd, 1);
	iox_set_cloexec(s->net_fd, 1);
	iox_set_nodelay(s->net_fd);

	if (s->client_role) {
		if (tlsproxy_client_session(s, buf, sizeof(buf)) < 0) {
			tlsproxy_fail(s, buf);
			return;
		}
	} else if (tlsproxy_server_session(s, &reason) < 0) {
		tlsproxy_fail(s, reason);
		return;
	}
	gnutls_transport_set_int(s->tls, s->net_fd);
	gnutls_handshake_set_timeout(s->tls, 0);

	s->net_read_ev = event_new(tlsproxy_base, s->net_fd, EV_READ,
	    handshake_io_cb, s);
	s->net_write_ev = event_new(tlsproxy_base, s->net_fd, EV_WRITE,
	    handshake_io_cb, s);
	if (s->net_read_ev == NULL || s->net_write_ev == NULL)
		log_panic("cannot create network events");
	handshake_step(s);
}
