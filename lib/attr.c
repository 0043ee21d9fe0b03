/*
 * attr - records of name=value attributes: building, encoding, the
 * incremental decoder, and the blocking stream with descriptor passing.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "attr.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"

struct attrs *attrs_new(void)
{
	return xcalloc(1, sizeof(struct attrs));
}

void attrs_free(struct attrs **a)
{
	if (a == NULL || *a == NULL)
		return;
	for (size_t i = 0; i < (*a)->count; i++) {
		free((*a)->items[i].name);
		free((*a)->items[i].value);
	}
	free((*a)->items);
	free(*a);
	*a = NULL;
}

/* Appends an item whose value is len bytes (a NUL is added after them). */
static void attrs_add_len(struct attrs *a, const char *name, size_t name_len,
    const char *value, size_t len)
{
	if (a->count == a->alloc) {
		a->alloc = a->alloc ? a->alloc * 2 : 8;
		a->items = xrealloc(a->items, a->alloc * sizeof(a->items[0]));
	}
	struct attr_item *it = &a->items[a->count++];
	it->name = xstrndup(name, name_len);
	it->value = xmalloc(len + 1);
	memcpy(it->value, value, len);
	it->value[len] = '\0';
	it->value_len = len;
}

void attrs_add(struct attrs *a, const char *name, const char *value)
{
	attrs_add_len(a, name, strlen(name), value, strlen(value));
}

void attrs_addf(struct attrs *a, const char *name, const char *fmt, ...)
{
	struct sbuf sb;
	va_list ap;

	sbuf_init(&sb, ATTR_MAX_RECORD);
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	attrs_add_len(a, name, strlen(name), sbuf_cstr(&sb), sb.len);
	sbuf_free(&sb);
}

void attrs_add_long(struct attrs *a, const char *name, long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", value);
	attrs_add(a, name, buf);
}

const char *attrs_get(const struct attrs *a, const char *name)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->items[i].name, name) == 0)
			return a->items[i].value;
	return NULL;
}

long attrs_get_long(const struct attrs *a, const char *name, long dflt)
{
	const char *v = attrs_get(a, name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return dflt;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return dflt;
	return n;
}

static int attr_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int attr_name_valid(const char *name, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!attr_name_char((unsigned char)name[i]))
			return 0;
	return 1;
}

/* Appends value to out with the four special bytes percent-escaped. */
static int attr_encode_value(const char *value, size_t len, struct sbuf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		const char *esc;

		switch (value[i]) {
		case '%': esc = "%25"; break;
		case '\n': esc = "%0A"; break;
		case '\r': esc = "%0D"; break;
		case '\0': esc = "%00"; break;
		default: continue;
		}
		if (sbuf_append(out, value + start, i - start) < 0 ||
		    sbuf_append(out, esc, 3) < 0)
			return -1;
		start = i + 1;
	}
	return sbuf_append(out, value + start, len - start);
}

int attrs_encode(const struct attrs *a, struct sbuf *out)
{
	size_t old_len = out->len;
	struct sbuf rec;
	int rc = -1;

	if (a->count > ATTR_MAX_ITEMS) {
		errno = EMSGSIZE;
		return -1;
	}
	/* Encoding into a separate capped buffer enforces the record limit
	 * whatever out's own cap is. */
	sbuf_init(&rec, ATTR_MAX_RECORD);
	for (size_t i = 0; i < a->count; i++) {
		const struct attr_item *it = &a->items[i];

		if (!attr_name_valid(it->name, strlen(it->name))) {
			log_error("attrs_encode: invalid attribute name \"%s\"", it->name);
			errno = EINVAL;
			goto out;
		}
		if (sbuf_puts(&rec, it->name) < 0 || sbuf_putc(&rec, '=') < 0 ||
		    attr_encode_value(it->value, it->value_len, &rec) < 0 ||
		    sbuf_putc(&rec, '\n') < 0)
			goto too_big;
	}
	if (sbuf_putc(&rec, '\n') < 0)
		goto too_big;
	if (sbuf_append(out, rec.data, rec.len) < 0)
		goto out;
	rc = 0;
	goto out;
too_big:
	errno = EMSGSIZE;
out:
	if (rc < 0)
		out->len = old_len;
	sbuf_free(&rec);
	return rc;
}

/*
 * The decoder keeps the current line in line (capped at the record
 * limit) and the items decoded so far; total counts every byte of the
 * record, the terminating empty line included.
 */
struct attr_decoder {
	struct sbuf line;
	struct attrs *rec;
	size_t total;
	int err;  /* errno for the last -1: EPROTO or EMSGSIZE */
};

struct attr_decoder *attr_decoder_new(void)
{
	struct attr_decoder *d = xcalloc(1, sizeof(*d));

	sbuf_init(&d->line, ATTR_MAX_RECORD);
	return d;
}

static void attr_decoder_reset(struct attr_decoder *d)
{
	sbuf_reset(&d->line);
	attrs_free(&d->rec);
	d->total = 0;
}

void attr_decoder_free(struct attr_decoder **d)
{
	if (d == NULL || *d == NULL)
		return;
	attr_decoder_reset(*d);
	sbuf_free(&(*d)->line);
	free(*d);
	*d = NULL;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes one "name=value" line into d->rec. Returns 0 or an error text. */
static const char *attr_decode_line(struct attr_decoder *d, const char *s,
    size_t len)
{
	const char *eq = memchr(s, '=', len);

	if (eq == NULL)
		return "attribute line without '='";
	if (!attr_name_valid(s, (size_t)(eq - s)))
		return "invalid attribute name";
	if (d->rec == NULL)
		d->rec = attrs_new();
	if (d->rec->count >= ATTR_MAX_ITEMS) {
		d->err = EMSGSIZE;
		return "too many attributes in record";
	}

	/* The decoded value is never longer than the encoded one. */
	const char *v = eq + 1;
	size_t vlen = len - (size_t)(v - s), n = 0;
	char *buf = xmalloc(vlen + 1);

	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			int hi = i + 2 < vlen ? hex_value((unsigned char)v[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value((unsigned char)v[i + 2]) : -1;

			if (lo < 0) {
				free(buf);
				return "invalid percent escape in attribute value";
			}
			buf[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '\r' || c == '\0') {
			free(buf);
			return "unescaped CR or NUL in attribute value";
		} else {
			buf[n++] = (char)c;
		}
	}
	attrs_add_len(d->rec, s, (size_t)(eq - s), buf, n);
	free(buf);
	return NULL;
}

int attr_decoder_feed(struct attr_decoder *d, const char *buf, size_t len,
    size_t *used_out, struct attrs **out, const char **err_out)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t chunk = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;

		d->err = EPROTO;
		if (d->total + chunk > ATTR_MAX_RECORD) {
			d->err = EMSGSIZE;
			*err_out = "attribute record too large";
			goto fail;
		}
		d->total += chunk;
		if (nl == NULL) {
			sbuf_append(&d->line, buf + pos, chunk);
			pos += chunk;
			break;
		}
		sbuf_append(&d->line, buf + pos, chunk - 1);
		pos += chunk;
		if (d->line.len == 0) {
			*out = d->rec ? d->rec : attrs_new();
			d->rec = NULL;
			attr_decoder_reset(d);
			*used_out = pos;
			return 1;
		}
		const char *err = attr_decode_line(d, d->line.data, d->line.len);
		if (err != NULL) {
			*err_out = err;
			goto fail;
		}
		sbuf_reset(&d->line);
	}
	*used_out = pos;
	return 0;
fail:
	attr_decoder_reset(d);
	*used_out = pos;
	return -1;
}

/*
 * The blocking stream. Bytes read past the end of a record stay in buf
 * for the next call. A descriptor that arrives with recvmsg() belongs to
 * the record holding the last byte of that read, because the kernel ends
 * a read after the segment that carried descriptors and the sender
 * attaches them to the first byte of a record; fds[] keeps such
 * descriptors with the stream offset of that byte until their record is
 * complete.
 * NOTE: a sender that puts bytes of a later record into the same
 * sendmsg() as the descriptor makes it arrive with that later record;
 * attr_stream_send() sends the descriptor with one byte only.
 */
#define ATTR_STREAM_BUF 16384
#define ATTR_STREAM_MAX_FDS 8

struct attr_stream_fd {
	int fd;
	unsigned long long offset;
};

struct attr_stream {
	int fd;
	struct attr_decoder *dec;
	char buf[ATTR_STREAM_BUF];
	size_t start, end;                 /* unread bytes are buf[start..end) */
	unsigned long long consumed;       /* stream bytes given to the decoder */
	unsigned long long record_start;   /* stream offset of the current record */
	struct attr_stream_fd fds[ATTR_STREAM_MAX_FDS];
	size_t nfds;
};

struct attr_stream *attr_stream_new(int fd)
{
	struct attr_stream *s = xcalloc(1, sizeof(*s));

	s->fd = fd;
	s->dec = attr_decoder_new();
	return s;
}

void attr_stream_free(struct attr_stream **s)
{
	if (s == NULL || *s == NULL)
		return;
	for (size_t i = 0; i < (*s)->nfds; i++)
		close((*s)->fds[i].fd);
	attr_decoder_free(&(*s)->dec);
	free(*s);
	*s = NULL;
}

void attr_stream_close(struct attr_stream **s)
{
	if (s == NULL || *s == NULL)
		return;
	close((*s)->fd);
	attr_stream_free(s);
}

int attr_stream_fd(const struct attr_stream *s)
{
	return s->fd;
}

/* Milliseconds left until deadline (a iox_now_ms() value; -1: none). */
static int attr_time_left(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long left = deadline - iox_now_ms();
	return left > 0 ? (int)left : 0;
}

static int attr_wait(int fd, short events, long long deadline)
{
	int rc = iox_wait(fd, events, attr_time_left(deadline));

	if (rc == 0)
		errno = ETIMEDOUT;
	return rc > 0 ? 0 : -1;
}

/* Sends the first byte of buf with fd attached. Returns 0 or -1. */
static int attr_send_fd(int sock, const char *buf, int pass_fd, long long deadline)
{
	union {
		struct cmsghdr hdr;
		char space[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = 1};
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.space, .msg_controllen = sizeof(control.space),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	memset(&control, 0, sizeof(control));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == 1)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (attr_wait(sock, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
}

/* Writes all of buf before deadline without raising SIGPIPE. */
static int attr_send_all(int sock, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(sock, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == ENOTSOCK)
			n = write(sock, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (attr_wait(sock, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

int attr_stream_send(struct attr_stream *s, const struct attrs *a,
    int pass_fd, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;
	struct sbuf out;
	size_t off = 0;
	int rc = -1;

	sbuf_init(&out, ATTR_MAX_RECORD);
	if (attrs_encode(a, &out) < 0)
		goto done;
	if (pass_fd >= 0) {
		if (attr_send_fd(s->fd, out.data, pass_fd, deadline) < 0)
			goto done;
		off = 1;
	}
	rc = attr_send_all(s->fd, out.data + off, out.len - off, deadline);
done:
	sbuf_free(&out);
	return rc;
}

/* Reads once into the empty buffer, collecting passed descriptors.
 * Returns the byte count, 0 at end of file, or -1 with errno. */
static ssize_t attr_stream_fill(struct attr_stream *s, long long deadline)
{
	union {
		struct cmsghdr hdr;
		char space[CMSG_SPACE(ATTR_STREAM_MAX_FDS * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = s->buf, .iov_len = sizeof(s->buf)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	s->start = s->end = 0;
	for (;;) {
		msg.msg_control = control.space;
		msg.msg_controllen = sizeof(control.space);
		n = recvmsg(s->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK) {
			msg.msg_controllen = 0;
			n = read(s->fd, s->buf, sizeof(s->buf));
		}
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (attr_wait(s->fd, POLLIN, deadline) < 0)
			return -1;
	}

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL;
	    cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n == 0 || s->nfds == ATTR_STREAM_MAX_FDS) {
				close(fd);
				continue;
			}
			s->fds[s->nfds].fd = fd;
			s->fds[s->nfds].offset = s->consumed + (unsigned long long)n - 1;
			s->nfds++;
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		log_warn("attr_stream: descriptors passed with a record were truncated");
	s->end = (size_t)n;
	return n;
}

/* Takes the descriptors of the record that ends at stream offset end:
 * the first goes to *fd_out (or is closed), extra ones are closed. */
static void attr_stream_take_fds(struct attr_stream *s, unsigned long long end,
    int *fd_out)
{
	size_t keep = 0;

	if (fd_out != NULL)
		*fd_out = -1;
	for (size_t i = 0; i < s->nfds; i++) {
		struct attr_stream_fd *f = &s->fds[i];

		if (f->offset >= end) {
			s->fds[keep++] = *f;
		} else if (f->offset >= s->record_start && fd_out != NULL &&
		    *fd_out < 0) {
			*fd_out = f->fd;
		} else {
			close(f->fd);
		}
	}
	s->nfds = keep;
}

int attr_stream_recv(struct attr_stream *s, struct attrs **out, int *fd_out,
    int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;
	const char *err;

	if (fd_out != NULL)
		*fd_out = -1;
	for (;;) {
		while (s->start < s->end) {
			size_t used = 0;
			int rc = attr_decoder_feed(s->dec, s->buf + s->start,
			    s->end - s->start, &used, out, &err);

			s->start += used;
			s->consumed += used;
			if (rc < 0) {
				log_warn("attr_stream: %s", err);
				errno = s->dec->err;
				return -1;
			}
			if (rc == 1) {
				attr_stream_take_fds(s, s->consumed, fd_out);
				s->record_start = s->consumed;
				return 1;
			}
		}

		ssize_t n = attr_stream_fill(s, deadline);
		if (n < 0)
			return -1;
		if (n == 0) {
			if (s->consumed == s->record_start)
				return 0;
			errno = EPROTO;
			return -1;
		}
	}
}
