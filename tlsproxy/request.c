/*
 * Reading the request record and the network socket passed with it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "log.h"
#include "tlsproxy.h"

/* At most this many descriptors are taken from one read; extra ones are
 * closed. */
#define REQUEST_MAX_FDS 4

/* Keeps the first descriptor received as the network socket and closes
 * any other, so a confused caller cannot make us leak descriptors. */
static void request_take_fds(struct tlsproxy_session *s, struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL;
	    cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (s->net_fd < 0)
				s->net_fd = fd;
			else
				close(fd);
		}
	}
}

/* Feeds n received bytes to the decoder. Returns 1 when the record is
 * complete, 0 for more, -1 after ending the session. */
static int request_feed(struct tlsproxy_session *s, const char *buf, size_t n)
{
	size_t used = 0;
	const char *err = NULL;
	int rc = attr_decoder_feed(s->decoder, buf, n, &used, &s->request, &err);

	if (rc < 0) {
		if (log_ratelimit("tlsproxy-request", 10, 60))
			log_warn("invalid request from the caller: %s", err);
		tlsproxy_session_free(s);
		return -1;
	}
	if (rc == 1 && used < n)
		sbuf_append(&s->early, buf + used, n - used);
	return rc;
}

static void request_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tlsproxy_session *s = arg;
	union {
		struct cmsghdr hdr;
		char space[CMSG_SPACE(REQUEST_MAX_FDS * sizeof(int))];
	} control;
	char buf[4096];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = control.space, .msg_controllen = sizeof(control.space)};
	ssize_t n = recvmsg(s->ctl_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		request_take_fds(s, &msg);
	if (n <= 0) {
		/* A caller that connects and gives up is not worth a warning. */
		if (n < 0)
			log_info("reading a request failed: %s", strerror(errno));
		tlsproxy_session_free(s);
		return;
	}
	if (request_feed(s, buf, (size_t)n) != 1)
		return;

	event_free(s->ctl_read_ev);
	s->ctl_read_ev = NULL;
	tlsproxy_handshake_start(s);
}

void tlsproxy_request_start(struct tlsproxy_session *s)
{
	s->state = TLSPROXY_REQUEST;
	s->decoder = attr_decoder_new();
	sbuf_init(&s->early, TLSPROXY_RELAY_BUF);
	sbuf_init(&s->reply, ATTR_MAX_RECORD);
	s->ctl_read_ev = event_new(tlsproxy_base, s->ctl_fd, EV_READ | EV_PERSIST,
	    request_read_cb, s);
	if (s->ctl_read_ev == NULL)
		log_panic("cannot create a read event");
	event_add(s->ctl_read_ev, NULL);
	tlsproxy_session_deadline(s, tlsproxy_timeout_sec);
}
