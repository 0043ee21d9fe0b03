/*
 * Sessions: the connection state, the transport, command-line reading
 * with a length limit, output batching, timeouts and closing.
 *
 * The transport is a bufferevent on the client socket (or, after
 * STARTTLS, on the plaintext end of a tlsproxy socketpair). Its buffers
 * hold data only while there is some, so an idle session costs the
 * session struct plus the bufferevent, about 1.5 KB.
 *
 * Replies are appended to the output buffer and libevent writes them
 * when the event loop runs again, after every complete command already
 * read has been handled. So the replies to a pipelined group (RFC 2920)
 * leave in one write.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "iox.h"
#include "log.h"
#include "netaddr.h"
#include "qfile.h"
#include "sbuf.h"
#include "smtpd.h"

/* Reading stops while this much output waits for a client that does
 * not read its replies. */
#define SESSION_OUTPUT_MAX (64 * 1024)

static struct smtpd_session *session_list;
static int session_total;
static unsigned session_next_id;
static char *session_line;  /* one command line; the loop is single-threaded */

static const char *const counter_names[SMTPD_CMD_COUNT] = {
	"ehlo", "helo", "mail", "rcpt", "data", "rset", "noop", "quit",
	"vrfy", "help", "auth", "starttls", "unknown"
};

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

int smtpd_session_count(void)
{
	return session_total;
}

/* smtpd_timeout restarts with each read, unless
 * smtpd_per_request_deadline is on (session_deadline_update). */
static void transport_setup(struct smtpd_session *sess)
{
	struct timeval tv = {smtpd_settings.timeout, 0};

	bufferevent_setcb(sess->bev, session_read_cb, session_write_cb,
	    session_event_cb, sess);
	bufferevent_set_timeouts(sess->bev, &tv, &tv);
	sess->deadline_ms = 0;
}

/*
 * smtpd_per_request_deadline = yes: the read timeout becomes the time
 * left until the deadline of the current request, so a client cannot
 * stretch a request by sending a byte now and then. A command line has
 * smtpd_timeout from the moment smtpd waits for it. The DATA phase
 * starts with smtpd_timeout, and each read of N message bytes adds
 * N / smtpd_min_data_rate seconds, as in Postfix, but never more than
 * smtpd_timeout ahead of now. new_request is 1 after a command line was
 * handled; data_bytes are the DATA bytes consumed since the last call.
 */
static void session_deadline_update(struct smtpd_session *sess,
    int new_request, size_t data_bytes)
{
	long long limit_ms = smtpd_settings.timeout * 1000LL;
	struct timeval read_tv, write_tv = {smtpd_settings.timeout, 0};
	long long now, left;

	if (!smtpd_settings.per_request_deadline)
		return;
	if (sess->state != SMTPD_STATE_COMMAND &&
	    sess->state != SMTPD_STATE_DATA) {
		if (sess->deadline_ms != 0)
			bufferevent_set_timeouts(sess->bev, &write_tv, &write_tv);
		sess->deadline_ms = 0;
		return;
	}
	now = iox_now_ms();
	if (new_request || sess->deadline_ms == 0 ||
	    sess->state != sess->deadline_state) {
		sess->deadline_state = sess->state;
		sess->deadline_ms = now + limit_ms;
	} else if (sess->state == SMTPD_STATE_DATA && data_bytes > 0) {
		left = sess->deadline_ms - now +
		    (long long)data_bytes * 1000 / smtpd_settings.min_data_rate;
		sess->deadline_ms = now + (left < limit_ms ? left : limit_ms);
	}
	left = sess->deadline_ms - now;
	if (left < 1)
		left = 1;  /* expired: the timeout event fires at once */
	read_tv.tv_sec = left / 1000;
	read_tv.tv_usec = (left % 1000) * 1000;
	bufferevent_set_timeouts(sess->bev, &read_tv, &write_tv);
}

/* Rejects a connection over smtpd_client_connection_limit without
 * creating a session. */
static void session_refuse(int fd, const char *addr)
{
	char line[512];
	int n;

	if (log_ratelimit("smtpd-connection-limit", 5, 60))
		log_warn("connection limit of %ld reached; refusing %s",
		    smtpd_settings.connection_limit, addr);
	n = snprintf(line, sizeof(line),
	    "421 4.7.0 %s Error: too many connections\r\n",
	    smtpd_settings.myhostname);
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* The client is gone already; nothing to tell it. */
	}
	close(fd);
}

void smtpd_session_new(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct smtpd_session *sess;
	char addr[INET6_ADDRSTRLEN];

	sockaddr_to_str(sa, addr, sizeof(addr));
	if (session_total >= smtpd_settings.connection_limit) {
		session_refuse(fd, addr);
		return;
	}
	iox_set_nonblock(fd, 1);
	iox_set_cloexec(fd, 1);
	iox_set_nodelay(fd);

	sess = xcalloc(1, sizeof(*sess));
	sess->bev = bufferevent_socket_new(smtpd_event_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (sess->bev == NULL) {
		log_error("cannot create a bufferevent for %s", addr);
		close(fd);
		free(sess);
		return;
	}
	memcpy(sess->addr, addr, sizeof(sess->addr));
	sess->port = sockaddr_port(sa);
	sess->id = ++session_next_id;
	sess->state = SMTPD_STATE_LOOKUP;
	sess->last_command = "CONNECT";
	sess->in_mynetworks = cidr_list_match(smtpd_settings.mynetworks, sa);
	transport_setup(sess);

	sess->next = session_list;
	if (session_list)
		session_list->prev = sess;
	session_list = sess;
	session_total++;

	smtpd_lookup_start(sess, sa);
}

void smtpd_session_start(struct smtpd_session *sess, char *name)
{
	sess->name = name;
	log_info("connect from %s[%s]:%d", sess->name, sess->addr, sess->port);
	if (smtpd_tls_wrappermode() && !sess->tls_active) {
		smtpd_tls_wrap(sess);
		return;
	}
	smtpd_session_greet(sess);
}

void smtpd_session_greet(struct smtpd_session *sess)
{
	if (smtpd_limits_start(sess))
		return;
	smtpd_session_banner(sess);
}

void smtpd_session_banner(struct smtpd_session *sess)
{
	smtpd_reply(sess, "220 %s", smtpd_settings.banner);
	sess->state = SMTPD_STATE_COMMAND;
	bufferevent_enable(sess->bev, EV_READ);
	session_deadline_update(sess, 1, 0);
}

void smtpd_reply_raw(struct smtpd_session *sess, const char *text,
    size_t len)
{
	evbuffer_add(bufferevent_get_output(sess->bev), text, len);
}

void smtpd_reply(struct smtpd_session *sess, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(sess->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void session_log_disconnect(struct smtpd_session *sess)
{
	char line[512];
	size_t len = 0;
	unsigned ok = 0, all = 0;

	for (int i = 0; i < SMTPD_CMD_COUNT; i++) {
		int n;

		if (sess->count_all[i] == 0)
			continue;
		ok += sess->count_ok[i];
		all += sess->count_all[i];
		if (sess->count_ok[i] == sess->count_all[i])
			n = snprintf(line + len, sizeof(line) - len, " %s=%u",
			    counter_names[i], sess->count_all[i]);
		else
			n = snprintf(line + len, sizeof(line) - len, " %s=%u/%u",
			    counter_names[i], sess->count_ok[i],
			    sess->count_all[i]);
		if (n > 0 && (size_t)n < sizeof(line) - len)
			len += (size_t)n;
	}
	line[len] = '\0';
	if (ok == all)
		log_info("disconnect from %s[%s]:%d%s commands=%u",
		    sess->name ? sess->name : "unknown", sess->addr, sess->port,
		    line, all);
	else
		log_info("disconnect from %s[%s]:%d%s commands=%u/%u",
		    sess->name ? sess->name : "unknown", sess->addr, sess->port,
		    line, ok, all);
}

void smtpd_session_reset(struct smtpd_session *sess)
{
	if (sess->writer)
		qwriter_abort(&sess->writer);
	qenv_free(&sess->env);
	free(sess->mail);
	sess->mail = NULL;
	free(sess->data);
	sess->data = NULL;
}

static void session_free(struct smtpd_session *sess)
{
	/* The name is set when the connect was logged. */
	if (sess->name != NULL)
		session_log_disconnect(sess);
	if (sess->lookup)
		smtpd_lookup_cancel(sess);
	smtpd_limits_session_end(sess);
	if (sess->job)
		sess->job->arg = NULL;  /* the commit finishes without us */
	smtpd_auth_session_free(sess);
	smtpd_tls_free(sess);
	smtpd_session_reset(sess);
	bufferevent_free(sess->bev);

	if (sess->prev)
		sess->prev->next = sess->next;
	else
		session_list = sess->next;
	if (sess->next)
		sess->next->prev = sess->prev;
	session_total--;

	free(sess->name);
	free(sess->helo);
	free(sess);
	smtpd_main_session_gone();
}

void smtpd_session_end(struct smtpd_session *sess)
{
	session_free(sess);
}

void smtpd_session_close_after(struct smtpd_session *sess, const char *fmt,
    ...)
{
	struct evbuffer *out = bufferevent_get_output(sess->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);

	/* The write callback frees the session once the reply is out. */
	sess->state = SMTPD_STATE_CLOSING;
	bufferevent_disable(sess->bev, EV_READ);
	bufferevent_enable(sess->bev, EV_WRITE);
}

int smtpd_session_error(struct smtpd_session *sess)
{
	if (++sess->errors < smtpd_settings.hard_error_limit)
		return 0;
	log_warn("too many errors after %s from %s[%s]", sess->last_command,
	    sess->name, sess->addr);
	smtpd_session_close_after(sess, "421 4.7.0 %s Error: too many errors",
	    smtpd_settings.myhostname);
	return 1;
}

static void session_line_too_long(struct smtpd_session *sess)
{
	if (smtpd_auth_wants_line(sess)) {
		smtpd_auth_line_too_long(sess);
		return;
	}
	smtpd_reply(sess, "500 5.5.2 Line too long");
	smtpd_session_error(sess);
}

/*
 * Handles the next complete command line in the input. Returns 1 when a
 * line was handled, 0 when no complete line is buffered. A line over
 * line_length_limit is dropped as it arrives, and the 500 reply is sent
 * once its line end is seen.
 */
static int session_read_line(struct smtpd_session *sess, struct evbuffer *in)
{
	size_t limit = smtpd_settings.line_length_limit;
	size_t eol_len = 0, n;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len,
	    EVBUFFER_EOL_LF);

	if (eol.pos < 0) {
		size_t avail = evbuffer_get_length(in);

		if (avail > limit + 1) {
			evbuffer_drain(in, avail);
			sess->skipping_line = 1;
		}
		return 0;
	}
	n = (size_t)eol.pos;
	if (sess->skipping_line || n > limit + 1) {
		evbuffer_drain(in, n + eol_len);
		sess->skipping_line = 0;
		session_line_too_long(sess);
		return 1;
	}
	evbuffer_remove(in, session_line, n);
	evbuffer_drain(in, eol_len);
	if (n > 0 && session_line[n - 1] == '\r')
		n--;
	session_line[n] = '\0';
	if (n > limit) {
		session_line_too_long(sess);
	} else if (memchr(session_line, '\0', n)) {
		smtpd_reply(sess, "500 5.5.2 Error: bad syntax");
		smtpd_session_error(sess);
	} else {
		smtpd_command(sess, session_line);
	}
	return 1;
}

/* Feeds buffered input to the DATA machine. Returns 1 when the end of
 * the data was reached, 0 when more input is needed. */
static int session_read_data(struct smtpd_session *sess, struct evbuffer *in)
{
	struct evbuffer_iovec v;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		size_t used = smtpd_data_feed(sess->data, v.iov_base,
		    v.iov_len);

		evbuffer_drain(in, used);
		if (smtpd_data_done(sess->data)) {
			smtpd_data_finished(sess);
			return 1;
		}
	}
	return 0;
}

/* Handles all buffered input that the current state can take. */
static void session_process_input(struct smtpd_session *sess)
{
	struct evbuffer *in = bufferevent_get_input(sess->bev);
	size_t data_bytes = 0;
	int more = 1, lines = 0;

	while (more) {
		size_t before = evbuffer_get_length(in);

		if (sess->state == SMTPD_STATE_COMMAND) {
			more = session_read_line(sess, in);
			lines += more;
		} else if (sess->state == SMTPD_STATE_DATA) {
			more = session_read_data(sess, in);
			data_bytes += before - evbuffer_get_length(in);
		} else if (sess->state == SMTPD_STATE_TLS) {
			more = smtpd_tls_read_reply(sess, in);
		} else {
			more = 0;
		}
	}
	session_deadline_update(sess, lines > 0, data_bytes);
	if (evbuffer_get_length(bufferevent_get_output(sess->bev)) >
	    SESSION_OUTPUT_MAX && sess->state != SMTPD_STATE_CLOSING)
		bufferevent_disable(sess->bev, EV_READ);
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	session_process_input(arg);
}

/* Runs when the output buffer has been written out completely. */
static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *sess = arg;

	if (sess->state == SMTPD_STATE_CLOSING) {
		session_free(sess);
		return;
	}
	if (sess->state == SMTPD_STATE_TLS) {
		smtpd_tls_output_flushed(sess);
		return;
	}
	if ((sess->state == SMTPD_STATE_COMMAND ||
	    sess->state == SMTPD_STATE_DATA) &&
	    !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		session_process_input(sess);
	}
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *sess = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    sess->state != SMTPD_STATE_CLOSING) {
		log_info("%s after %s from %s[%s]", sess->deadline_ms ?
		    "request deadline exceeded" : "timeout", sess->last_command,
		    sess->name, sess->addr);
		smtpd_session_close_after(sess,
		    "421 4.4.2 %s Error: timeout exceeded",
		    smtpd_settings.myhostname);
		return;
	}
	if (!sess->quit_seen && sess->state != SMTPD_STATE_CLOSING)
		log_info("lost connection after %s from %s[%s]",
		    sess->last_command, sess->name ? sess->name : "unknown",
		    sess->addr);

	/* A client that shut down only its sending side still reads: it
	 * must get the replies to what it sent, above all the 250 for a
	 * message now queued, or it would send that message again. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    sess->state != SMTPD_STATE_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		sess->state = SMTPD_STATE_CLOSING;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	session_free(sess);
}

void smtpd_session_resume(struct smtpd_session *sess)
{
	sess->state = SMTPD_STATE_COMMAND;
	bufferevent_enable(sess->bev, EV_READ);
	session_process_input(sess);
}

int smtpd_transport_switch(struct smtpd_session *sess, int fd)
{
	struct bufferevent *bev;

	iox_set_nonblock(fd, 1);
	bev = bufferevent_socket_new(smtpd_event_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		errno = ENOMEM;
		return -1;
	}
	bufferevent_free(sess->bev);
	sess->bev = bev;
	sess->skipping_line = 0;
	transport_setup(sess);
	if (sess->state == SMTPD_STATE_COMMAND)
		bufferevent_enable(bev, EV_READ);
	return 0;
}

void smtpd_session_stop_all(void)
{
	struct smtpd_session *sess, *next;

	for (sess = session_list; sess; sess = next) {
		next = sess->next;
		switch (sess->state) {
		case SMTPD_STATE_LOOKUP:
			session_free(sess);
			break;
		case SMTPD_STATE_TLS:
			/* The client may be in its TLS handshake, where a
			 * plaintext 421 would be noise; the grace timer ends
			 * the session with the process. */
		case SMTPD_STATE_COMMIT:
			/* The commit reply goes first, then the 421. */
			break;
		case SMTPD_STATE_CLOSING:
			break;
		default:
			smtpd_session_close_after(sess,
			    "421 4.3.2 %s Service shutting down",
			    smtpd_settings.myhostname);
			break;
		}
	}
}

void smtpd_session_init(void)
{
	session_line = xmalloc(smtpd_settings.line_length_limit + 2);
}
