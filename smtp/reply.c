/*
 * Server replies: parsing multi-line replies with limits, reading them
 * from the socket with a timeout, and writing commands.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iox.h"
#include "smtp.h"

/* Cap of the unparsed input: one maximal line plus the bytes of a read. */
#define SMTP_CONN_IN_MAX (SMTP_REPLY_MAX_LINE + 8192)

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	sbuf_init(&r->lines, SMTP_REPLY_MAX_LINES * SMTP_REPLY_MAX_LINE);
	sbuf_init(&r->text, SMTP_REPLY_MAX_TEXT);
}

void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	sbuf_reset(&r->lines);
	sbuf_reset(&r->text);
}

void smtp_reply_free(struct smtp_reply *r)
{
	sbuf_free(&r->lines);
	sbuf_free(&r->text);
}

/* Appends line text to the log form, truncating at the text cap. */
static void reply_add_text(struct smtp_reply *r, const char *text, size_t len)
{
	char clean[SMTP_REPLY_MAX_TEXT];
	size_t room;

	if (r->text.len == 0)
		sbuf_printf(&r->text, "%d", r->code);
	if (len == 0)
		return;
	room = SMTP_REPLY_MAX_TEXT - r->text.len;
	if (room < 2)
		return;
	if (len > room - 1)
		len = room - 1;
	str_sanitize(clean, sizeof(clean), text, len);
	sbuf_putc(&r->text, ' ');
	sbuf_puts(&r->text, clean);
}

/*
 * Adds one line (without its line end). Returns SMTP_PARSE_DONE for the
 * last line, SMTP_PARSE_MORE for a continuation line, or SMTP_PARSE_ERROR.
 */
static int reply_add_line(struct smtp_reply *r, const char *line,
    size_t len, const char **err_out)
{
	int code;
	int last;

	if (len < 3 || !isdigit((unsigned char)line[0])
	    || !isdigit((unsigned char)line[1])
	    || !isdigit((unsigned char)line[2])) {
		*err_out = "reply line does not start with a 3-digit code";
		return SMTP_PARSE_ERROR;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599) {
		*err_out = "reply code outside 200..599";
		return SMTP_PARSE_ERROR;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*err_out = "reply code not followed by a space or '-'";
		return SMTP_PARSE_ERROR;
	}
	if (r->nlines > 0 && code != r->code) {
		*err_out = "reply code changes within a multi-line reply";
		return SMTP_PARSE_ERROR;
	}
	if (r->nlines >= SMTP_REPLY_MAX_LINES) {
		*err_out = "too many reply lines";
		return SMTP_PARSE_ERROR;
	}

	r->code = code;
	r->nlines++;
	last = len == 3 || line[3] == ' ';
	if (len > 4) {
		sbuf_append(&r->lines, line + 4, len - 4);
		reply_add_text(r, line + 4, len - 4);
	} else {
		reply_add_text(r, "", 0);
	}
	sbuf_putc(&r->lines, '\n');
	return last ? SMTP_PARSE_DONE : SMTP_PARSE_MORE;
}

int smtp_reply_parse(struct smtp_reply *r, const char *buf, size_t len,
    size_t *used_out, const char **err_out)
{
	size_t pos = 0;

	*used_out = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t line_len;
		int rc;

		if (nl == NULL) {
			if (len - pos >= SMTP_REPLY_MAX_LINE) {
				*err_out = "reply line too long";
				return SMTP_PARSE_ERROR;
			}
			break;
		}
		line_len = (size_t)(nl - (buf + pos)) + 1;
		if (line_len > SMTP_REPLY_MAX_LINE) {
			*err_out = "reply line too long";
			return SMTP_PARSE_ERROR;
		}
		rc = reply_add_line(r, buf + pos,
		    line_len - 1 - (line_len >= 2 && nl[-1] == '\r'), err_out);
		if (rc == SMTP_PARSE_ERROR)
			return rc;
		pos += line_len;
		*used_out = pos;
		if (rc == SMTP_PARSE_DONE)
			return rc;
	}
	return SMTP_PARSE_MORE;
}

/* Length of an RFC 3463 code "C.S.D" at the start of s, or 0. */
static size_t reply_dsn_length(const char *s)
{
	size_t i = 0;
	size_t digits;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	if (s[1] != '.')
		return 0;
	i = 2;
	for (digits = 0; isdigit((unsigned char)s[i]) && digits < 3; digits++)
		i++;
	if (digits == 0 || s[i] != '.')
		return 0;
	i++;
	for (digits = 0; isdigit((unsigned char)s[i]) && digits < 3; digits++)
		i++;
	if (digits == 0 || (s[i] != ' ' && s[i] != '\n' && s[i] != '\0'))
		return 0;
	return i;
}

void smtp_reply_dsn(const struct smtp_reply *r, char *out, size_t size)
{
	const char *first = sbuf_cstr(&r->lines);
	size_t n = reply_dsn_length(first);
	char class = (char)('0' + r->code / 100);

	if (n > 0 && first[0] == class && n < size) {
		memcpy(out, first, n);
		out[n] = '\0';
		return;
	}
	snprintf(out, size, "%c.0.0", class);
}

/* Records an I/O failure on c. */
static void conn_set_error(struct smtp_conn *c, enum smtp_io_error err,
    const char *detail)
{
	c->io_error = err;
	snprintf(c->io_detail, sizeof(c->io_detail), "%s", detail);
}

int smtp_conn_read_reply(struct smtp_conn *c, struct smtp_reply *r,
    int timeout_ms)
{
	long long deadline = iox_now_ms() + timeout_ms;
	char buf[4096];

	smtp_reply_reset(r);
	for (;;) {
		size_t used = 0;
		const char *err = NULL;
		long long left;
		ssize_t n;
		int rc = SMTP_PARSE_MORE;

		if (c->in.len > 0) {
			rc = smtp_reply_parse(r, c->in.data, c->in.len, &used,
			    &err);
			if (rc == SMTP_PARSE_ERROR) {
				conn_set_error(c, SMTP_IO_PROTO, err);
				return -1;
			}
			sbuf_consume(&c->in, used);
			if (rc == SMTP_PARSE_DONE)
				return 0;
		}

		left = deadline - iox_now_ms();
		if (left <= 0) {
			conn_set_error(c, SMTP_IO_TIMEOUT, "timed out");
			return -1;
		}
		n = iox_read_timeout(c->fd, buf, sizeof(buf), (int)left);
		if (n < 0 && errno == ETIMEDOUT) {
			conn_set_error(c, SMTP_IO_TIMEOUT, "timed out");
			return -1;
		}
		if (n < 0) {
			conn_set_error(c, SMTP_IO_LOST, strerror(errno));
			return -1;
		}
		if (n == 0) {
			conn_set_error(c, SMTP_IO_LOST, "connection closed");
			return -1;
		}
		/* The parser rejects an unfinished line at the line limit, so
		 * the buffer never contains more than one line plus one read. */
		if (sbuf_append(&c->in, buf, (size_t)n) < 0) {
			conn_set_error(c, SMTP_IO_PROTO, "reply line too long");
			return -1;
		}
	}
}

int smtp_conn_write(struct smtp_conn *c, const void *buf, size_t len,
    int timeout_ms)
{
	if (iox_write_timeout(c->fd, buf, len, timeout_ms) >= 0)
		return 0;
	if (errno == ETIMEDOUT)
		conn_set_error(c, SMTP_IO_TIMEOUT, "timed out");
	else
		conn_set_error(c, SMTP_IO_LOST, strerror(errno));
	return -1;
}

void smtp_conn_free(struct smtp_conn **cp)
{
	struct smtp_conn *c = *cp;

	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->nexthop);
	free(c->host);
	sbuf_free(&c->in);
	free(c);
	*cp = NULL;
}

struct smtp_conn *smtp_conn_new(int fd)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	sbuf_init(&c->in, SMTP_CONN_IN_MAX);
	return c;
}
