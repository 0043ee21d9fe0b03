/*
 * report - builds RFC 3464 delivery status notifications. See report.h.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "report.h"

/* Header lines are folded before this column where a space allows. */
#define REPORT_FOLD_COLUMN 78
/* Maximum bytes of text without a space on one line, because RFC 5322
 * section 2.1.1 allows 998 characters per line. */
#define REPORT_MAX_WORD 900
/* Bytes of a reason kept in the text part, well under 998 per line. */
#define REPORT_MAX_REASON 900

static void report_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		out[0] = '\0';
}

/* Copy of s with control characters and 8-bit bytes as '?', cut to max
 * bytes. Caller frees. */
static char *report_clean(const char *s, size_t max)
{
	size_t len = strlen(s);
	char *out;

	if (len > max)
		len = max;
	out = xmalloc(len + 1);
	str_sanitize(out, len + 1, s, len);
	return out;
}

/*
 * Appends "name: value" folded at spaces (RFC 5322 section 2.2.3), so
 * that lines stay near REPORT_FOLD_COLUMN unless one word is longer.
 */
static void report_field(struct sbuf *out, const char *name,
    const char *value)
{
	char *clean = report_clean(value, 4 * REPORT_MAX_WORD);
	size_t column = strlen(name) + 1;
	const char *p = clean;

	sbuf_puts(out, name);
	sbuf_putc(out, ':');
	while (*p != '\0') {
		size_t n = strcspn(p + 1, " ") + 1;
		int lead_space = *p == ' ';

		if (n > REPORT_MAX_WORD)
			n = REPORT_MAX_WORD;
		if (column + n + !lead_space > REPORT_FOLD_COLUMN
		    && column > strlen(name) + 2) {
			sbuf_putc(out, '\n');
			column = 0;
			if (!lead_space) {
				sbuf_putc(out, ' ');
				column++;
			}
		} else if (!lead_space) {
			sbuf_putc(out, ' ');
			column++;
		}
		sbuf_append(out, p, n);
		column += n;
		p += n;
	}
	sbuf_putc(out, '\n');
	free(clean);
}

char *report_xtext_decode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s), o = 0;
	char *out = xmalloc(len + 1);

	for (size_t i = 0; i < len; i++) {
		const char *hi, *lo;
		unsigned char c = (unsigned char)s[i];

		if (c == '+' && i + 2 < len
		    && (hi = strchr(hex, s[i + 1])) != NULL
		    && (lo = strchr(hex, s[i + 2])) != NULL) {
			c = (unsigned char)((hi - hex) * 16 + (lo - hex));
			i += 2;
		}
		out[o++] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
	}
	out[o] = '\0';
	return out;
}

size_t report_header_len(const char *msg, size_t len)
{
	size_t line = 0;

	while (line < len) {
		const char *nl = memchr(msg + line, '\n', len - line);

		if (nl == NULL)
			break;
		if (nl == msg + line)
			return line;
		line = (size_t)(nl - msg) + 1;
	}
	return line;
}

/* "addr-type; address" for Original-Recipient from a stored ORCPT. A
 * value without ';' is a bare address (local stores one for an alias
 * expansion). Caller frees. */
static char *report_orcpt(const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char *type, *addr, *out;

	if (semi == NULL) {
		addr = report_clean(orcpt, REPORT_MAX_WORD);
		out = xasprintf("rfc822; %s", addr);
		free(addr);
		return out;
	}
	type = xstrndup(orcpt, (size_t)(semi - orcpt));
	addr = report_xtext_decode(semi + 1);
	out = xasprintf("%s; %s", type, addr);
	free(type);
	free(addr);
	return out;
}

static const char *report_subject(const char *action)
{
	if (strcmp(action, REPORT_FAILED) == 0)
		return "Undelivered Mail Returned to Sender";
	if (strcmp(action, REPORT_DELAYED) == 0)
		return "Delayed Mail (still being retried)";
	return "Successful Mail Delivery Report";
}

/* The opening paragraph of the text part. */
static void report_text_intro(const struct report *rep, struct sbuf *out)
{
	const char *what = rep->headers_only ? "header" : "text";
	char until[64];

	sbuf_printf(out, "This is the mail system at host %s.\n\n",
	    rep->myhostname);
	if (strcmp(rep->action, REPORT_FAILED) == 0) {
		sbuf_printf(out, "Your message could not be delivered to the "
		    "recipients below, and the\nmail system has stopped "
		    "trying. The delivery report and the %s\nof your "
		    "message are attached.\n\n", what);
	} else if (strcmp(rep->action, REPORT_DELAYED) == 0) {
		report_date(rep->retry_until, until, sizeof(until));
		sbuf_printf(out, "This is a warning only: you do not need to "
		    "send your message again.\nDelivery to the recipients "
		    "below is delayed. The mail system keeps\ntrying%s%s.\n\n",
		    rep->retry_until ? " until " : "",
		    rep->retry_until ? until : "");
	} else if (strcmp(rep->action, REPORT_RELAYED) == 0) {
		sbuf_puts(out, "Your message was handed on to the servers of "
		    "the recipients below.\nThose servers do not send "
		    "delivery notifications, so this is the\nlast report "
		    "you will receive about them.\n\n");
	} else {
		sbuf_puts(out, "Your message was delivered to the recipients "
		    "below, as you requested\nwith a delivery "
		    "notification.\n\n");
	}
}

static void report_text_part(const struct report *rep, struct sbuf *out)
{
	char date[64];

	report_text_intro(rep, out);
	for (size_t i = 0; i < rep->nrcpt; i++) {
		const struct report_rcpt *r = &rep->rcpts[i];
		char *addr = addr_externalize(r->addr);
		char *line = xasprintf("<%s>: %s %s", addr, r->status,
		    r->reason ? r->reason : "");
		char *clean = report_clean(line, REPORT_MAX_REASON);

		sbuf_printf(out, "%s\n", clean);
		free(clean);
		free(line);
		free(addr);
	}
	report_date(rep->arrival, date, sizeof(date));
	sbuf_printf(out, "\nThe message arrived on %s with queue ID %s.\n",
	    date, rep->qid);
}

static void report_rcpt_fields(const struct report *rep,
    const struct report_rcpt *r, struct sbuf *out)
{
	char *addr = addr_externalize(r->addr), *value, date[64];

	value = xasprintf("rfc822; %s", addr);
	report_field(out, "Final-Recipient", value);
	free(value);
	if (r->orcpt != NULL && r->orcpt[0] != '\0') {
		value = report_orcpt(r->orcpt);
		report_field(out, "Original-Recipient", value);
		free(value);
	}
	report_field(out, "Action", rep->action);
	report_field(out, "Status", r->status);
	if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
		value = xasprintf("dns; %s", r->remote_mta);
		report_field(out, "Remote-MTA", value);
		free(value);
	}
	if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
		value = xasprintf("smtp; %s", r->diagnostic);
		report_field(out, "Diagnostic-Code", value);
		free(value);
	}
	if (r->last_attempt != 0) {
		report_date(r->last_attempt, date, sizeof(date));
		report_field(out, "Last-Attempt-Date", date);
	}
	if (strcmp(rep->action, REPORT_DELAYED) == 0 && rep->retry_until) {
		report_date(rep->retry_until, date, sizeof(date));
		report_field(out, "Will-Retry-Until", date);
	}
	free(addr);
}

/* The message/delivery-status body (RFC 3464 section 2.1). */
static void report_status_part(const struct report *rep, struct sbuf *out)
{
	char date[64], *value;

	value = xasprintf("dns; %s", rep->myhostname);
	report_field(out, "Reporting-MTA", value);
	free(value);
	report_field(out, "X-Postern-Queue-ID", rep->qid);
	if (rep->sender[0] != '\0') {
		char *sender = addr_externalize(rep->sender);

		value = xasprintf("rfc822; %s", sender);
		report_field(out, "X-Postern-Sender", value);
		free(value);
		free(sender);
	}
	report_date(rep->arrival, date, sizeof(date));
	report_field(out, "Arrival-Date", date);
	if (rep->envid != NULL && rep->envid[0] != '\0') {
		value = report_xtext_decode(rep->envid);
		report_field(out, "Original-Envelope-Id", value);
		free(value);
	}
	for (size_t i = 0; i < rep->nrcpt; i++) {
		sbuf_putc(out, '\n');
		report_rcpt_fields(rep, &rep->rcpts[i], out);
	}
}

static int report_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

static int report_contains(const char *hay, size_t len, const char *needle)
{
	if (hay == NULL || len == 0)
		return 0;
	return memmem(hay, len, needle, strlen(needle)) != NULL;
}

/* Picks a boundary that occurs in none of the parts (RFC 2046 5.1.1). */
static char *report_boundary(const struct report *rep,
    const struct sbuf *text, const struct sbuf *status)
{
	for (unsigned n = 0;; n++) {
		char *b = xasprintf("%s.%u/%s", rep->report_qid, n,
		    rep->myhostname);

		if (!report_contains(text->data, text->len, b)
		    && !report_contains(status->data, status->len, b)
		    && !report_contains(rep->original, rep->original_len, b))
			return b;
		free(b);
	}
}

static void report_top_header(const struct report *rep, const char *boundary,
    int eight_bit, struct sbuf *out)
{
	char date[64], *to = addr_externalize(rep->sender);

	report_date(rep->now, date, sizeof(date));
	sbuf_printf(out, "Date: %s\n", date);
	sbuf_printf(out, "From: MAILER-DAEMON@%s (Mail Delivery System)\n",
	    rep->myhostname);
	sbuf_printf(out, "To: <%s>\n", to);
	sbuf_printf(out, "Subject: %s\n", report_subject(rep->action));
	sbuf_printf(out, "Message-ID: <%s@%s>\n", rep->report_qid,
	    rep->myhostname);
	sbuf_puts(out, "Auto-Submitted: auto-replied\n");
	sbuf_puts(out, "MIME-Version: 1.0\n");
	sbuf_printf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\"%s\"\n", boundary);
	sbuf_printf(out, "Content-Transfer-Encoding: %s\n\n",
	    eight_bit ? "8bit" : "7bit");
	sbuf_puts(out, "This is a MIME-encapsulated message.\n\n");
	free(to);
}

int report_build(const struct report *rep, struct sbuf *out)
{
	struct sbuf text, status;
	int eight_bit = report_has_8bit(rep->original, rep->original_len);
	char *boundary;
	int rc;

	sbuf_init(&text, 0);
	sbuf_init(&status, 0);
	report_text_part(rep, &text);
	report_status_part(rep, &status);
	boundary = report_boundary(rep, &text, &status);

	report_top_header(rep, boundary, eight_bit, out);
	sbuf_printf(out, "--%s\nContent-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n", boundary);
	sbuf_append(out, text.data, text.len);
	sbuf_printf(out, "\n--%s\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n", boundary);
	sbuf_append(out, status.data, status.len);
	sbuf_printf(out, "\n--%s\nContent-Description: %s\n"
	    "Content-Type: %s\n", boundary,
	    rep->headers_only ? "Message header" : "Original message",
	    rep->headers_only ? "text/rfc822-headers" : "message/rfc822");
	if (eight_bit)
		sbuf_puts(out, "Content-Transfer-Encoding: 8bit\n");
	sbuf_putc(out, '\n');
	/* The LF before a delimiter belongs to the delimiter (RFC 2046
	 * section 5.1.1), so the original keeps its own last LF. */
	sbuf_append(out, rep->original, rep->original_len);
	rc = sbuf_printf(out, "\n--%s--\n", boundary);

	free(boundary);
	sbuf_free(&text);
	sbuf_free(&status);
	return rc < 0 ? -1 : 0;
}
