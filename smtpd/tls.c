/*
 * STARTTLS (RFC 3207) and TLS from the first byte (smtpd_tls_wrappermode,
 * RFC 8314), both through tlsproxy.
 *
 * smtpd never loads a key. It hands the client socket to tlsproxy over
 * private/tlsproxy (the records are in lib/tlsproxy_client.h) and goes on
 * with the session on that UNIX connection, which then carries plaintext.
 * Each step runs on the event loop, so a slow handshake stalls no other
 * session:
 *   1. connect to private/tlsproxy without blocking, from a timer, and
 *      retry while its listen queue is full; a failure here still allows
 *      a 454 reply, because the client has not been told to start TLS;
 *   2. STARTTLS only: queue the 220 reply and wait until it is written;
 *   3. send the request with the client socket attached (SCM_RIGHTS) and
 *      make the UNIX connection the session's transport, which closes our
 *      copy of the client socket and drops its unread input;
 *   4. read the reply record in session_process_input() (state TLS); the
 *      plaintext that follows it is the client's first command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "config.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"
#include "smtpd.h"
#include "tlsproxy_client.h"

/* Pause between connect attempts while tlsproxy's listen queue is full. */
#define TLS_CONNECT_RETRY_MS 10

/* Time allowed for tlsproxy to reply after the handshake deadline it
 * enforces itself (tlsproxy_timeout). */
#define TLS_REPLY_SLACK_SEC 5

enum tls_step {
	TLS_STEP_CONNECT,   /* connecting to private/tlsproxy */
	TLS_STEP_FLUSH,     /* waiting until the 220 reply is written */
	TLS_STEP_REPLY,     /* waiting for tlsproxy's reply record */
	TLS_STEP_END        /* the session ends from the timer */
};

/* The handoff of one session to tlsproxy; freed when TLS is on. */
struct smtpd_tls_handoff {
	enum tls_step step;
	int wrapper;                 /* TLS from the first byte: no 220 */
	int proxy_fd;                /* -1 until connected */
	long long deadline_ms;       /* iox_now_ms() limit of step 1 */
	struct event *timer;         /* step 1 attempts, and TLS_STEP_END */
	struct attr_decoder *decoder;
};

static struct {
	enum tls_level level;        /* none, may or encrypt */
	int wrappermode;
	int received_header;
	int ask_ccert;               /* smtpd_tls_ask_ccert */
	int have_cert;               /* main.cf names a server certificate */
	long timeout_sec;            /* tlsproxy_timeout */
	const char *service;
} tls_settings;

void smtpd_tls_init(const char *service_name)
{
	const char *name = config_str("smtpd_tls_security_level");
	int level = name[0] == '\0' ? TLS_LEVEL_NONE : tls_level_parse(name);

	/* verify only makes sense for a client; smtpd has none, may and
	 * encrypt, as in Postfix. */
	if (level < 0 || level == TLS_LEVEL_VERIFY)
		log_fatal("invalid smtpd_tls_security_level \"%s\": use none, "
		    "may or encrypt", name);
	tls_settings.level = (enum tls_level)level;
	tls_settings.wrappermode = config_bool("smtpd_tls_wrappermode");
	tls_settings.received_header = config_bool("smtpd_tls_received_header");
	tls_settings.ask_ccert = config_bool("smtpd_tls_ask_ccert");
	tls_settings.timeout_sec = config_time("tlsproxy_timeout");
	if (tls_settings.timeout_sec <= 0)
		log_fatal("tlsproxy_timeout must be a positive time, not \"%s\"",
		    config_str("tlsproxy_timeout"));
	tls_settings.service = service_name;
	/* NOTE: tlsproxy loads the certificates, and it reads main.cf, so a
	 * -o override of these names for one smtpd would mislead this check. */
	tls_settings.have_cert = config_str("smtpd_tls_chain_files")[0] != '\0'
	    || config_str("smtpd_tls_cert_file")[0] != '\0'
	    || config_str("smtpd_tls_eccert_file")[0] != '\0';
	if (!tls_settings.have_cert &&
	    (tls_settings.level != TLS_LEVEL_NONE || tls_settings.wrappermode))
		log_warn("smtpd_tls_security_level is %s%s, but no server "
		    "certificate is configured: STARTTLS is not offered and gets "
		    "454; set smtpd_tls_chain_files", name[0] ? name : "none",
		    tls_settings.wrappermode ? " with smtpd_tls_wrappermode = yes" : "");
}

int smtpd_tls_wrappermode(void)
{
	return tls_settings.wrappermode;
}

int smtpd_tls_offer(const struct smtpd_session *sess)
{
	return !sess->tls_active && tls_settings.level != TLS_LEVEL_NONE &&
	    tls_settings.have_cert;
}

int smtpd_tls_required(const struct smtpd_session *sess,
    enum smtpd_counter command)
{
	if (sess->tls_active || tls_settings.level != TLS_LEVEL_ENCRYPT)
		return 0;
	switch (command) {
	case SMTPD_CMD_MAIL:
	case SMTPD_CMD_RCPT:
	case SMTPD_CMD_DATA:
	case SMTPD_CMD_VRFY:
	case SMTPD_CMD_AUTH:
		return 1;
	default:
		return 0;
	}
}

const char *smtpd_tls_received_comment(const struct smtpd_session *sess)
{
	if (!tls_settings.received_header)
		return NULL;
	return sess->tls_summary;
}

void smtpd_tls_free(struct smtpd_session *sess)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;

	free(sess->tls_summary);
	sess->tls_summary = NULL;
	if (h == NULL)
		return;
	if (h->timer != NULL)
		event_free(h->timer);
	if (h->proxy_fd >= 0)
		close(h->proxy_fd);
	attr_decoder_free(&h->decoder);
	free(h);
	sess->tls_handoff = NULL;
}

/* Frees the handoff state but keeps tls_summary. */
static void handoff_done(struct smtpd_session *sess)
{
	char *summary = sess->tls_summary;

	sess->tls_summary = NULL;
	smtpd_tls_free(sess);
	sess->tls_summary = summary;
}

static void handoff_timer_cb(evutil_socket_t fd, short what, void *arg);

/*
 * Sends data on a non-blocking UNIX socket with fd attached to its first
 * byte. Returns the bytes sent (possibly fewer than len), or -1 with
 * errno; EAGAIN before the first byte counts as a failure, which a fresh
 * connection with an empty send buffer does not give for one record.
 */
static ssize_t send_with_fd(int sock, const char *data, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {(void *)data, len};
	struct msghdr msg = {0};
	struct cmsghdr *cm;
	ssize_t n;

	memset(&control, 0, sizeof(control));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Ends the session from the timer, outside input processing, without a
 * reply: the client speaks TLS now, and tlsproxy has its socket. */
static void handoff_end(struct smtpd_session *sess)
{
	struct timeval now = {0, 0};

	sess->tls_handoff->step = TLS_STEP_END;
	sess->state = SMTPD_STATE_CLOSING;
	bufferevent_disable(sess->bev, EV_READ | EV_WRITE);
	evtimer_add(sess->tls_handoff->timer, &now);
}

/* tlsproxy cannot be reached: STARTTLS gets 454 and the session goes on
 * in plaintext; a wrapper-mode session ends. */
static void handoff_unavailable(struct smtpd_session *sess, const char *why)
{
	int wrapper = sess->tls_handoff->wrapper;

	if (log_ratelimit("smtpd-tlsproxy", 5, 60))
		log_error("cannot reach tlsproxy at %s/%s for %s[%s]: %s",
		    smtpd_settings.queue_dir, TLSPROXY_SOCKET, sess->name,
		    sess->addr, why);
	if (wrapper) {
		handoff_end(sess);
		return;
	}
	smtpd_tls_free(sess);
	smtpd_reply(sess, "454 4.7.0 TLS not available due to local problem");
	smtpd_session_error(sess);
	if (sess->state != SMTPD_STATE_CLOSING)
		smtpd_session_resume(sess);
}

/* Step 3: sends the request with the client socket, then reads the reply
 * through the session's transport. */
static void handoff_send(struct smtpd_session *sess)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;
	struct tlsproxy_request req = {0};
	struct timeval tv = {tls_settings.timeout_sec + TLS_REPLY_SLACK_SEC, 0};
	char peer[INET6_ADDRSTRLEN + 300];
	struct attrs *record;
	struct sbuf buf;
	ssize_t sent;

	snprintf(peer, sizeof(peer), "%s[%s]:%d", sess->name, sess->addr,
	    sess->port);
	req.role = "server";
	req.service = tls_settings.service;
	req.peer = peer;
	/* Sent always, so a master.cf -o override of this smtpd wins over
	 * the main.cf value that tlsproxy reads. */
	req.ask_ccert = tls_settings.ask_ccert ? "yes" : "no";
	record = tlsproxy_request_encode(&req);
	sbuf_init(&buf, ATTR_MAX_RECORD);
	if (attrs_encode(record, &buf) < 0)
		log_panic("the tlsproxy request does not fit in a record");
	attrs_free(&record);

	sent = send_with_fd(h->proxy_fd, buf.data, buf.len,
	    bufferevent_getfd(sess->bev));
	if (sent < 0) {
		if (log_ratelimit("smtpd-tlsproxy", 5, 60))
			log_error("sending the socket of %s[%s] to tlsproxy "
			    "failed: %s", sess->name, sess->addr,
			    strerror(errno));
		sbuf_free(&buf);
		handoff_end(sess);
		return;
	}

	/* The transport now owns the UNIX connection. */
	if (smtpd_transport_switch(sess, h->proxy_fd) < 0) {
		log_error("cannot switch %s[%s] to tlsproxy: %s", sess->name,
		    sess->addr, strerror(errno));
		sbuf_free(&buf);
		handoff_end(sess);
		return;
	}
	h->proxy_fd = -1;
	if ((size_t)sent < buf.len)
		evbuffer_add(bufferevent_get_output(sess->bev),
		    buf.data + sent, buf.len - (size_t)sent);
	sbuf_free(&buf);

	h->step = TLS_STEP_REPLY;
	h->decoder = attr_decoder_new();
	bufferevent_set_timeouts(sess->bev, &tv, &tv);
	bufferevent_enable(sess->bev, EV_READ | EV_WRITE);
}

/* Step 1 succeeded. */
static void handoff_connected(struct smtpd_session *sess)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;

	if (h->wrapper) {
		handoff_send(sess);
		return;
	}
	/* RFC 3207 4.2: what the client sent after STARTTLS and before the
	 * handshake is not a command; drop it unread. */
	evbuffer_drain(bufferevent_get_input(sess->bev),
	    evbuffer_get_length(bufferevent_get_input(sess->bev)));
	h->step = TLS_STEP_FLUSH;
	smtpd_reply(sess, "220 2.0.0 Ready to start TLS");
	bufferevent_enable(sess->bev, EV_WRITE);
}

/* Step 1: one connect attempt. */
static void handoff_connect(struct smtpd_session *sess)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;
	struct timeval retry = {0, TLS_CONNECT_RETRY_MS * 1000};
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", smtpd_settings.queue_dir,
	    TLSPROXY_SOCKET);
	h->proxy_fd = iox_unix_connect(path, 1);
	if (h->proxy_fd >= 0) {
		handoff_connected(sess);
		return;
	}
	if (errno == EAGAIN && iox_now_ms() < h->deadline_ms) {
		evtimer_add(h->timer, &retry);
		return;
	}
	handoff_unavailable(sess, errno == EAGAIN ? "its listen queue stayed "
	    "full" : strerror(errno));
}

static void handoff_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *sess = arg;

	if (sess->tls_handoff->step == TLS_STEP_END)
		smtpd_session_end(sess);
	else
		handoff_connect(sess);
}

/* Starts step 1 from the timer, so that the caller's input loop and
 * name lookup finish before the session can change or end. */
static void handoff_start(struct smtpd_session *sess, int wrapper)
{
	struct smtpd_tls_handoff *h = xcalloc(1, sizeof(*h));
	struct timeval now = {0, 0};

	h->step = TLS_STEP_CONNECT;
	h->wrapper = wrapper;
	h->proxy_fd = -1;
	h->deadline_ms = iox_now_ms() + tls_settings.timeout_sec * 1000;
	h->timer = evtimer_new(smtpd_event_base, handoff_timer_cb, sess);
	if (h->timer == NULL)
		log_panic("cannot create a timer event");
	sess->tls_handoff = h;
	sess->state = SMTPD_STATE_TLS;
	bufferevent_disable(sess->bev, EV_READ);
	evtimer_add(h->timer, &now);
}

int smtpd_starttls_command(struct smtpd_session *sess, const char *args)
{
	if (*args != '\0') {
		smtpd_reply(sess, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (sess->tls_active) {
		smtpd_reply(sess, "503 5.5.1 Error: TLS already active");
		return -1;
	}
	if (tls_settings.level == TLS_LEVEL_NONE) {
		smtpd_reply(sess, "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (!tls_settings.have_cert) {
		/* smtpd_tls_init() logged the cause once. */
		smtpd_reply(sess, "454 4.7.0 TLS not available due to local problem");
		return -1;
	}
	handoff_start(sess, 0);
	return 0;
}

void smtpd_tls_wrap(struct smtpd_session *sess)
{
	handoff_start(sess, 1);
}

void smtpd_tls_output_flushed(struct smtpd_session *sess)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;

	if (h != NULL && h->step == TLS_STEP_FLUSH)
		handoff_send(sess);
}

/* Logs the certificate that a client presented when smtpd_tls_ask_ccert
 * asked for one; verify_error says why an untrusted one did not verify. */
static void tls_log_client_cert(const struct smtpd_session *sess,
    const struct tls_summary *s, const char *trust)
{
	log_info("%s client certificate from %s[%s]:%d: subject=\"%s\", "
	    "issuer=\"%s\", sha256 fingerprint %s%s%s", trust, sess->name,
	    sess->addr, sess->port, s->peer_subject, s->peer_issuer,
	    s->peer_fingerprint, s->verified ? "" : ", not verified: ",
	    s->verified ? "" : s->verify_error);
}

/* TLS is on: logs it and resets the session to its state before EHLO. */
static void tls_established(struct smtpd_session *sess,
    const struct tls_summary *s)
{
	struct timeval tv = {smtpd_settings.timeout, 0};
	int wrapper = sess->tls_handoff->wrapper;
	char text[256];
	const char *trust = "Anonymous";

	snprintf(text, sizeof(text), "%s with cipher %s (%d/%d bits)",
	    s->protocol, s->cipher, s->cipher_bits, s->cipher_alg_bits);
	if (s->peer_fingerprint[0] != '\0')
		trust = s->verified ? "Trusted" : "Untrusted";
	log_info("%s TLS connection established from %s[%s]: %s%s", trust,
	    sess->name, sess->addr, text, s->resumed ? " (resumed)" : "");
	if (s->peer_fingerprint[0] != '\0')
		tls_log_client_cert(sess, s, trust);

	handoff_done(sess);
	free(sess->tls_summary);
	sess->tls_summary = xstrdup(text);
	sess->tls_active = 1;

	/* RFC 3207 4.2: discard the state from before TLS, including an
	 * AUTH that succeeded in plaintext. */
	smtpd_session_reset(sess);
	smtpd_auth_session_free(sess);
	free(sess->helo);
	sess->helo = NULL;
	sess->esmtp = 0;
	sess->skipping_line = 0;
	bufferevent_set_timeouts(sess->bev, &tv, &tv);
	if (wrapper) {
		smtpd_session_greet(sess);
		return;
	}
	/* The caller's input loop goes on with what follows the reply. */
	sess->state = SMTPD_STATE_COMMAND;
	bufferevent_enable(sess->bev, EV_READ);
}

/* Decodes a complete reply record. Returns 1 when the session goes on
 * with commands, 0 when it ends. */
static int reply_handle(struct smtpd_session *sess, struct attrs *reply)
{
	struct tls_summary s;

	if (tlsproxy_reply_decode(reply, &s) == 0) {
		tls_established(sess, &s);
		return 1;
	}
	if (log_ratelimit("smtpd-tls-failed", 20, 60))
		log_warn("TLS handshake failed from %s[%s]:%d: %s", sess->name,
		    sess->addr, sess->port, s.reason);
	handoff_end(sess);
	return 0;
}

int smtpd_tls_read_reply(struct smtpd_session *sess, struct evbuffer *in)
{
	struct smtpd_tls_handoff *h = sess->tls_handoff;
	struct evbuffer_iovec v;

	if (h == NULL || h->step != TLS_STEP_REPLY)
		return 0;
	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		struct attrs *reply = NULL;
		const char *err = NULL;
		size_t used = 0;
		int rc = attr_decoder_feed(h->decoder, v.iov_base, v.iov_len,
		    &used, &reply, &err);

		if (rc < 0) {
			log_error("invalid reply from tlsproxy for %s[%s]: %s",
			    sess->name, sess->addr, err);
			handoff_end(sess);
			return 0;
		}
		if (rc == 0) {
			evbuffer_drain(in, v.iov_len);
			continue;
		}
		evbuffer_drain(in, used);
		rc = reply_handle(sess, reply);
		attrs_free(&reply);
		return rc;
	}
	return 0;
}
