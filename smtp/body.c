/*
 * The message in DATA form: the queue file stores LF line ends, and the
 * wire needs CRLF line ends and dot-stuffing (RFC 5321 4.5.2).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"
#include "smtp.h"

/* Bytes read from the queue file per step; the encoded form is at most
 * twice as large, so one step fits the output buffer. */
#define BODY_CHUNK 65536

void smtp_body_init(struct smtp_body_encoder *e)
{
	e->at_line_start = 1;
}

int smtp_body_encode(struct smtp_body_encoder *e, const char *buf,
    size_t len, struct sbuf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (e->at_line_start && buf[i] == '.') {
			if (sbuf_append(out, buf + start, i - start) < 0
			    || sbuf_putc(out, '.') < 0)
				return -1;
			start = i;
		}
		e->at_line_start = buf[i] == '\n';
		if (buf[i] == '\n') {
			if (sbuf_append(out, buf + start, i - start) < 0
			    || sbuf_append(out, "\r\n", 2) < 0)
				return -1;
			start = i + 1;
		}
	}
	return sbuf_append(out, buf + start, len - start);
}

int smtp_body_finish(struct smtp_body_encoder *e, struct sbuf *out)
{
	if (!e->at_line_start && sbuf_append(out, "\r\n", 2) < 0)
		return -1;
	e->at_line_start = 1;
	return sbuf_append(out, ".\r\n", 3);
}

int smtp_body_send(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req)
{
	struct smtp_body_encoder enc;
	struct sbuf out;
	static char chunk[BODY_CHUNK];
	off_t pos = req->env->msg_offset;
	off_t end = req->env->msg_offset + req->env->msg_size;
	int rc = -1;

	smtp_body_init(&enc);
	sbuf_init(&out, 2 * BODY_CHUNK + 8);
	while (pos < end) {
		size_t want = (size_t)(end - pos) < sizeof(chunk)
		    ? (size_t)(end - pos) : sizeof(chunk);
		ssize_t n = pread(req->qfd, chunk, want, pos);

		if (n <= 0) {
			char text[300];

			snprintf(text, sizeof(text), "failed to read %s: %s",
			    req->queue_file, n < 0 ? strerror(errno)
			    : "file shorter than its size record");
			log_error("%s: %s", req->qid, text);
			smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.0", text);
			/* The server waits for data that will not come, so
			 * the session cannot be reused. */
			c->io_error = SMTP_IO_LOST;
			snprintf(c->io_detail, sizeof(c->io_detail),
			    "queue file read error");
			goto done;
		}
		pos += n;
		sbuf_reset(&out);
		if (smtp_body_encode(&enc, chunk, (size_t)n, &out) < 0)
			log_panic("DATA buffer too small for %zd bytes", n);
		if (pos >= end && smtp_body_finish(&enc, &out) < 0)
			log_panic("DATA buffer too small for the end of data");
		if (smtp_conn_write(c, out.data, out.len,
		    agent->timeouts.data_xfer) < 0)
			goto done;
	}
	if (req->env->msg_size == 0) {
		smtp_body_finish(&enc, &out);
		if (smtp_conn_write(c, out.data, out.len,
		    agent->timeouts.data_xfer) < 0)
			goto done;
	}
	rc = 0;

done:
	sbuf_free(&out);
	return rc;
}
