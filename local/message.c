/*
 * Reading the message out of the queue file: the header block for loop
 * detection, the headers local adds, and the byte copy of the message.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "deliver.h"
#include "iox.h"
#include "local.h"

void local_result_set(struct local_result *res, const char *status,
    const char *dsn, const char *fmt, ...)
{
	va_list ap;

	snprintf(res->status, sizeof(res->status), "%s", status);
	snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);

	/* The text travels as one line of the reply and of the defer log. */
	for (char *p = res->text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void local_result_errno(struct local_result *res, int err, const char *what)
{
	const char *dsn = "4.2.0";

	if (err == ENOSPC)
		dsn = "4.3.1";
	else if (err == EDQUOT)
		dsn = "4.2.2";
	local_result_set(res, DELIVER_DEFER, dsn, "cannot deliver: %s: %s",
	    what, strerror(err));
}

int local_msg_read_header(struct local_msg *m)
{
	long limit = config_int("header_size_limit");
	off_t size = m->env->msg_size;
	size_t want, got = 0;
	char *buf;

	if (limit <= 0 || limit > 16L * 1024 * 1024)
		limit = 102400;
	want = size < (off_t)limit ? (size_t)size : (size_t)limit;
	buf = xmalloc(want + 1);

	while (got < want) {
		ssize_t n = pread(m->fd, buf + got, want - got,
		    m->env->msg_offset + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			free(buf);
			errno = err;
			return -1;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';

	/* Keep the header block only: up to and including the empty line. */
	if (got >= 1 && buf[0] == '\n')
		got = 0;
	else {
		char *end = memmem(buf, got, "\n\n", 2);

		if (end != NULL)
			got = (size_t)(end - buf) + 1;
	}
	buf[got] = '\0';
	m->header = buf;
	m->header_len = got;
	return 0;
}

/* Compares a Delivered-To value (folded parts already joined) with rcpt. */
static int header_value_is(const char *value, size_t len, const char *rcpt)
{
	size_t rlen = strlen(rcpt);

	while (len > 0 && (*value == ' ' || *value == '\t')) {
		value++;
		len--;
	}
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len >= 2 && value[0] == '<' && value[len - 1] == '>') {
		value++;
		len -= 2;
	}
	return len == rlen && strncasecmp(value, rcpt, rlen) == 0;
}

void local_header_scan(const char *header, size_t len, const char *rcpt,
    int *received_out, int *delivered_out)
{
	static const char delivered[] = "delivered-to:";
	static const char received[] = "received:";
	const char *p = header, *end = header + len;
	struct sbuf value;

	*received_out = 0;
	*delivered_out = 0;
	sbuf_init(&value, len + 1);

	while (p < end && *p != '\n') {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		size_t line_len = (size_t)((eol ? eol : end) - p);

		if (line_len >= sizeof(received) - 1
		    && strncasecmp(p, received, sizeof(received) - 1) == 0)
			(*received_out)++;

		if (line_len >= sizeof(delivered) - 1
		    && strncasecmp(p, delivered, sizeof(delivered) - 1) == 0) {
			size_t skip = sizeof(delivered) - 1;

			/* Join continuation lines, which start with a blank. */
			sbuf_reset(&value);
			sbuf_append(&value, p + skip, line_len - skip);
			while (next < end && (*next == ' ' || *next == '\t')) {
				const char *ceol = memchr(next, '\n',
				    (size_t)(end - next));
				const char *cend = ceol ? ceol : end;

				sbuf_append(&value, next, (size_t)(cend - next));
				next = ceol ? ceol + 1 : end;
			}
			if (header_value_is(sbuf_cstr(&value), value.len, rcpt))
				*delivered_out = 1;
		}
		p = next;
	}
	sbuf_free(&value);
}

int local_delivery_prefix(struct sbuf *out, const char *sender,
    const char *rcpt)
{
	char *ext_sender = addr_externalize(sender);
	char *ext_rcpt = addr_externalize(rcpt);
	int rc = sbuf_printf(out, "Return-Path: <%s>\nDelivered-To: %s\n",
	    ext_sender, ext_rcpt);

	free(ext_sender);
	free(ext_rcpt);
	return rc;
}

int local_msg_each_chunk(const struct local_msg *m,
    int (*fn)(const char *buf, size_t len, void *arg), void *arg)
{
	char *buf = xmalloc(LOCAL_COPY_CHUNK);
	off_t done = 0, size = m->env->msg_size;
	int rc = 0;

	while (done < size) {
		size_t want = size - done < LOCAL_COPY_CHUNK
		    ? (size_t)(size - done) : LOCAL_COPY_CHUNK;
		ssize_t n = pread(m->fd, buf, want, m->env->msg_offset + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			rc = -1;
			break;
		}
		if (fn(buf, (size_t)n, arg) < 0) {
			rc = -1;
			break;
		}
		done += n;
	}
	free(buf);
	return rc;
}

static int msg_write_fd(const char *buf, size_t len, void *arg)
{
	return iox_write_all(*(int *)arg, buf, len) < 0 ? -1 : 0;
}

int local_msg_copy(const struct local_msg *m, int out_fd)
{
	return local_msg_each_chunk(m, msg_write_fd, &out_fd);
}
