/*
 * The DATA byte state machine: finds the end of the data, removes dot
 * stuffing, turns CRLF into LF, and watches bare CR and LF, the message
 * size and the size of each header.
 *
 * Only <CRLF>.<CRLF> ends the data (RFC 5321 4.1.1.4). A line that
 * starts after a bare CR or LF (in the normalize mode) can never end the
 * data, so a client cannot smuggle a second message past a server that
 * reads line ends differently. The CRLF that ends the DATA command line
 * counts, so "." as the first line ends an empty message.
 */
#include <string.h>

#include "smtpd.h"

enum data_state {
	DATA_BOL,       /* at the start of a line, after CRLF */
	DATA_BOL_SOFT,  /* at the start of a line, after a bare CR or LF */
	DATA_TEXT,      /* inside a line */
	DATA_CR,        /* after a CR inside a line */
	DATA_DOT,       /* after a dot at the start of a line */
	DATA_DOT_CR,    /* after "." and CR at the start of a line */
	DATA_DONE       /* after <CRLF>.<CRLF> */
};

/* Kind of the current line while in the header section. */
enum line_kind {
	LINE_NAME,      /* reading what may be a field name */
	LINE_HEADER     /* a header field or a continuation line */
};

void smtpd_data_init(struct smtpd_data *d, int normalize,
    unsigned long long size_limit, size_t header_limit,
    smtpd_data_sink sink, void *sink_ctx)
{
	memset(d, 0, offsetof(struct smtpd_data, out));
	d->state = DATA_BOL;
	d->normalize = normalize;
	d->size_limit = size_limit;
	d->header_limit = header_limit;
	d->in_header = 1;
	d->sink = sink;
	d->sink_ctx = sink_ctx;
}

int smtpd_data_done(const struct smtpd_data *d)
{
	return d->state == DATA_DONE;
}

static void data_flush(struct smtpd_data *d)
{
	if (d->out_len > 0 && d->flags == 0 &&
	    d->sink(d->sink_ctx, d->out, d->out_len) < 0)
		d->flags |= SMTPD_DATA_WRITE_ERROR;
	d->out_len = 0;
}

/* Adds message bytes to the output; after any problem, drops them. */
static void data_put(struct smtpd_data *d, const char *p, size_t n)
{
	if (d->flags)
		return;
	if (d->size_limit && d->size + n > d->size_limit) {
		d->flags |= SMTPD_DATA_TOO_BIG;
		return;
	}
	d->size += n;
	if (n > sizeof(d->out) - d->out_len) {
		data_flush(d);
		if (d->flags)
			return;
	}
	if (n >= sizeof(d->out)) {
		if (d->sink(d->sink_ctx, p, n) < 0)
			d->flags |= SMTPD_DATA_WRITE_ERROR;
		return;
	}
	memcpy(d->out + d->out_len, p, n);
	d->out_len += n;
}

static void header_grow(struct smtpd_data *d, size_t n)
{
	d->header_len += n;
	if (d->header_limit && d->header_len > d->header_limit)
		d->flags |= SMTPD_DATA_HEADER_TOO_BIG;
}

/*
 * Follows one content byte through the header section (RFC 5322 2.2):
 * a line is a header field when it starts with printable characters up
 * to a colon, or a continuation when it starts with a blank after a
 * field. Anything else ends the header section.
 */
static void header_byte(struct smtpd_data *d, unsigned char c)
{
	if (d->line_len == 0) {
		if (c == ' ' || c == '\t') {
			if (d->header_len == 0) {
				d->in_header = 0;
				return;
			}
			d->line_kind = LINE_HEADER;
		} else {
			d->header_len = 0;
			d->line_kind = LINE_NAME;
		}
	}
	if (d->line_kind == LINE_NAME) {
		if (c == ':' && d->line_len > 0) {
			d->line_kind = LINE_HEADER;
		} else if (c <= 32 || c >= 127 || c == ':') {
			d->in_header = 0;
			return;
		}
	}
	d->line_len++;
	header_grow(d, 1);
}

/* Content bytes of the current line, without its line end. */
static void data_content(struct smtpd_data *d, const char *p, size_t n)
{
	size_t i = 0;

	while (d->in_header && i < n)
		header_byte(d, (unsigned char)p[i++]);
	data_put(d, p, n);
}

static void data_line_end(struct smtpd_data *d)
{
	if (d->in_header) {
		if (d->line_len == 0 || d->line_kind == LINE_NAME)
			d->in_header = 0;
		else
			header_grow(d, 1);
	}
	d->line_len = 0;
	data_put(d, "\n", 1);
}

/* A CR or LF that is not part of a CRLF pair. */
static void data_bare(struct smtpd_data *d, int flag)
{
	if (d->normalize) {
		data_line_end(d);
		d->state = DATA_BOL_SOFT;
	} else {
		d->flags |= flag;
		d->state = DATA_TEXT;
	}
}

/* Passes the run of ordinary bytes at p; returns its length (>= 1). */
static size_t data_span(struct smtpd_data *d, const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] != '\r' && p[k] != '\n')
		k++;
	data_content(d, p, k);
	return k;
}

size_t smtpd_data_feed(struct smtpd_data *d, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && d->state != DATA_DONE) {
		unsigned char c = (unsigned char)buf[i];

		switch (d->state) {
		case DATA_BOL:
		case DATA_BOL_SOFT:
			if (c == '.') {
				d->dot_soft = d->state == DATA_BOL_SOFT;
				d->state = DATA_DOT;
				i++;
			} else {
				d->state = DATA_TEXT;
			}
			break;
		case DATA_TEXT:
			if (c == '\r') {
				d->state = DATA_CR;
				i++;
			} else if (c == '\n') {
				data_bare(d, SMTPD_DATA_BARE_LF);
				i++;
			} else {
				i += data_span(d, buf + i, len - i);
			}
			break;
		case DATA_CR:
			if (c == '\n') {
				data_line_end(d);
				d->state = DATA_BOL;
				i++;
			} else {
				/* c is read again in the state data_bare sets. */
				data_bare(d, SMTPD_DATA_BARE_CR);
			}
			break;
		case DATA_DOT:
			/* Dot-unstuffing: the first dot of a line is dropped. */
			if (c == '\r') {
				d->state = DATA_DOT_CR;
				i++;
			} else {
				d->state = DATA_TEXT;
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n' && !d->dot_soft) {
				d->state = DATA_DONE;
				i++;
				data_flush(d);
			} else if (c == '\n') {
				/* "." after a bare newline cannot end the data
				 * and is kept as a line of its own. */
				data_content(d, ".", 1);
				data_line_end(d);
				d->state = DATA_BOL;
				i++;
			} else {
				/* The dot is dropped and the CR was bare. */
				d->state = DATA_CR;
			}
			break;
		default:
			break;
		}
	}
	return i;
}
