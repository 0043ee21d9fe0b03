/*
 * Relaying between the caller's plaintext connection (ctl) and the TLS
 * connection (net) after an ok reply.
 *
 * Each direction has one buffer of TLSPROXY_RELAY_BUF bytes. A side is
 * read only while the buffer toward the other side has room, so a slow
 * reader on one side slows the writer on the other instead of growing
 * memory. relay_run() makes all the progress possible without blocking,
 * then registers interest in exactly the events that can unblock it.
 *
 * Shutdown: when the caller closes (or shuts down writing), the pending
 * plaintext is sent, then a TLS close_notify and a TCP half-close. When
 * the peer closes, the pending plaintext is handed to the caller, then
 * the caller's side is half-closed so it reads end of file. The session
 * ends when both directions are finished, on an error on either side,
 * or tlsproxy_timeout seconds after the first side finished.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "log.h"
#include "tlsproxy.h"

static void relay_run(struct tlsproxy_session *s);

static void relay_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_run(arg);
}

/* Reads decrypted data into to_ctl. Returns 1 on progress. */
static int net_read(struct tlsproxy_session *s)
{
	size_t room = sizeof(s->to_ctl) - s->to_ctl_len;
	ssize_t n;

	if (s->net_in_done || room == 0)
		return 0;
	n = gnutls_record_recv(s->tls, s->to_ctl + s->to_ctl_len, room);
	if (n > 0) {
		s->to_ctl_len += (size_t)n;
		s->bytes_in += (unsigned long long)n;
		return 1;
	}
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
		return 0;
	if (n == GNUTLS_E_REHANDSHAKE) {
		/* Renegotiation is not supported. A client that asked for it
		 * waits for a ServerHello until it gets the no_renegotiation
		 * alert (RFC 5246 7.2.2), so the alert must be sent; when it
		 * cannot go out at once, the session ends instead. */
		if (gnutls_alert_send(s->tls, GNUTLS_AL_WARNING,
		    GNUTLS_A_NO_RENEGOTIATION) == 0) {
			if (log_ratelimit("tlsproxy-renegotiation", 10, 60))
				log_info("%s: TLS renegotiation refused", s->peer);
			return 1;
		}
		log_info("%s: TLS renegotiation refused; ending the session",
		    s->peer);
		s->to_net_len = 0;
		s->net_out_done = 1;
		s->net_in_done = 1;
		return 1;
	}
	if (n != 0 && n != GNUTLS_E_PREMATURE_TERMINATION)
		log_info("%s: TLS read failed: %s", s->peer, gnutls_strerror((int)n));
	if (n < 0 && n != GNUTLS_E_PREMATURE_TERMINATION && gnutls_error_is_fatal((int)n)) {
		/* Nothing more can be sent on a broken TLS connection. */
		s->to_net_len = 0;
		s->net_out_done = 1;
	}
	s->net_in_done = 1;
	return 1;
}

/* Writes to_ctl to the caller. Returns 1 on progress. */
static int ctl_write(struct tlsproxy_session *s)
{
	ssize_t n;

	s->ctl_wait_write = 0;
	if (s->to_ctl_len == 0 || s->ctl_out_done)
		return 0;
	n = send(s->ctl_fd, s->to_ctl, s->to_ctl_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		s->ctl_wait_write = 1;
		return 0;
	}
	if (n <= 0) {
		/* The caller is gone: its data is dropped and nothing more
		 * will come from it. */
		s->to_ctl_len = 0;
		s->ctl_out_done = 1;
		s->ctl_in_done = 1;
		return 1;
	}
	memmove(s->to_ctl, s->to_ctl + n, s->to_ctl_len - (size_t)n);
	s->to_ctl_len -= (size_t)n;
	return 1;
}

/* Reads the caller's plaintext into to_net. Returns 1 on progress. */
static int ctl_read(struct tlsproxy_session *s)
{
	size_t room = sizeof(s->to_net) - s->to_net_len;
	ssize_t n;

	if (s->ctl_in_done || room == 0)
		return 0;
	n = recv(s->ctl_fd, s->to_net + s->to_net_len, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n > 0) {
		s->to_net_len += (size_t)n;
		return 1;
	}
	s->ctl_in_done = 1;
	return 1;
}

/* Encrypts and sends to_net. Returns 1 on progress. */
static int net_write(struct tlsproxy_session *s)
{
	ssize_t n;
	size_t len;

	s->net_wait_write = 0;
	if (s->to_net_len == 0 || s->net_out_done)
		return 0;
	/* GnuTLS requires the same arguments again after GNUTLS_E_AGAIN;
	 * the buffer only grows at its end meanwhile, so the start stays. */
	len = s->send_pending ? s->send_pending : s->to_net_len;
	n = gnutls_record_send(s->tls, s->to_net, len);
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
		s->send_pending = len;
		s->net_wait_write = 1;
		return 0;
	}
	s->send_pending = 0;
	if (n < 0) {
		log_info("%s: TLS write failed: %s", s->peer, gnutls_strerror((int)n));
		s->to_net_len = 0;
		s->net_out_done = 1;
		s->net_in_done = 1;
		return 1;
	}
	memmove(s->to_net, s->to_net + n, s->to_net_len - (size_t)n);
	s->to_net_len -= (size_t)n;
	s->bytes_out += (unsigned long long)n;
	return 1;
}

/* Half-closes what is finished. Returns 1 on progress. */
static int relay_shutdowns(struct tlsproxy_session *s)
{
	int progress = 0;

	if (s->net_in_done && s->to_ctl_len == 0 && !s->ctl_out_done) {
		shutdown(s->ctl_fd, SHUT_WR);
		s->ctl_out_done = 1;
		progress = 1;
	}
	if (s->ctl_in_done && s->to_net_len == 0 && !s->net_out_done) {
		int rc = gnutls_bye(s->tls, GNUTLS_SHUT_WR);

		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			s->net_wait_write = 1;
			return progress;
		}
		shutdown(s->net_fd, SHUT_WR);
		s->net_out_done = 1;
		progress = 1;
	}
	return progress;
}

static void set_interest(struct event *ev, int want)
{
	if (want)
		event_add(ev, NULL);
	else
		event_del(ev);
}

static void relay_run(struct tlsproxy_session *s)
{
	int progress;

	do {
		progress = net_read(s);
		progress |= ctl_write(s);
		progress |= ctl_read(s);
		progress |= net_write(s);
		progress |= relay_shutdowns(s);
	} while (progress);

	if (s->net_out_done && s->ctl_out_done) {
		log_info("%s: TLS session closed: %llu bytes in, %llu bytes out",
		    s->peer, s->bytes_in, s->bytes_out);
		tlsproxy_session_free(s);
		return;
	}
	if ((s->net_in_done || s->ctl_in_done) && !evtimer_pending(s->timer_ev, NULL))
		tlsproxy_session_deadline(s, tlsproxy_timeout_sec);

	set_interest(s->net_read_ev, !s->net_in_done &&
	    s->to_ctl_len < sizeof(s->to_ctl));
	set_interest(s->net_write_ev, s->net_wait_write);
	set_interest(s->ctl_read_ev, !s->ctl_in_done &&
	    s->to_net_len < sizeof(s->to_net));
	set_interest(s->ctl_write_ev, s->ctl_wait_write);
}

void tlsproxy_relay_start(struct tlsproxy_session *s)
{
	s->state = TLSPROXY_RELAY;
	evtimer_del(s->timer_ev);
	if (s->early.len > 0) {
		memcpy(s->to_net, s->early.data, s->early.len);
		s->to_net_len = s->early.len;
		sbuf_free(&s->early);
	}
	event_free(s->net_read_ev);
	event_free(s->net_write_ev);
	s->net_read_ev = event_new(tlsproxy_base, s->net_fd, EV_READ | EV_PERSIST,
	    relay_cb, s);
	s->net_write_ev = event_new(tlsproxy_base, s->net_fd, EV_WRITE | EV_PERSIST,
	    relay_cb, s);
	s->ctl_read_ev = event_new(tlsproxy_base, s->ctl_fd, EV_READ | EV_PERSIST,
	    relay_cb, s);
	s->ctl_write_ev = event_new(tlsproxy_base, s->ctl_fd, EV_WRITE | EV_PERSIST,
	    relay_cb, s);
	if (s->net_read_ev == NULL || s->net_write_ev == NULL ||
	    s->ctl_read_ev == NULL || s->ctl_write_ev == NULL)
		log_panic("cannot create relay events");
	relay_run(s);
}
