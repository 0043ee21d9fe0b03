/*
 * report - delivery status notifications (RFC 3464) as multipart/report
 * messages (RFC 6522): a text part for people, a message/delivery-status
 * part for programs, and the original message or its header.
 *
 * The builder is a pure function of its input, so the unit tests call it
 * directly; qmgr/bounce.c gathers the input and queues the result.
 */
#ifndef POSTERN_QMGR_REPORT_H
#define POSTERN_QMGR_REPORT_H

#include <stddef.h>
#include <time.h>

#include "sbuf.h"

/* RFC 3464 section 2.3.3 Action values. One report carries one action. */
#define REPORT_FAILED "failed"
#define REPORT_DELAYED "delayed"
#define REPORT_DELIVERED "delivered"
#define REPORT_RELAYED "relayed"
#define REPORT_EXPANDED "expanded"

/* One recipient of a report (RFC 3464 section 2.3). */
struct report_rcpt {
	const char *addr;        /* internal (unquoted) form */
	const char *orcpt;       /* stored ORCPT "addr-type;xtext", a bare
	                          * address, or NULL */
	const char *status;      /* RFC 3463 code such as 5.1.1 */
	const char *reason;      /* one line for the text part */
	const char *remote_mta;  /* host of the server that replied, or NULL */
	const char *diagnostic;  /* its reply, "550 5.1.1 text", or NULL */
	time_t last_attempt;     /* 0: no Last-Attempt-Date */
};

struct report {
	const char *action;      /* REPORT_* for every recipient */
	const char *myhostname;
	const char *qid;         /* queue ID of the original message */
	const char *report_qid;  /* queue ID of the report, for Message-ID */
	const char *sender;      /* original sender: the report goes there */
	const char *envid;       /* stored ENVID (xtext), or NULL */
	time_t arrival;
	time_t now;
	time_t retry_until;      /* delayed: Will-Retry-Until; 0 for none */
	const struct report_rcpt *rcpts;
	size_t nrcpt;
	const char *original;    /* message bytes with LF line ends */
	size_t original_len;
	int headers_only;        /* attach text/rfc822-headers: original
	                          * holds the header block only */
};

/*
 * Appends the complete report message (header and body, LF line ends) to
 * out. The MIME boundary is chosen so that it occurs nowhere in the
 * content. Returns 0, or -1 when out reached its cap.
 */
int report_build(const struct report *rep, struct sbuf *out);

/*
 * Returns the length of the header block of msg[0..len): the bytes up to
 * and including the LF of the last header line (the empty line is not
 * included). Without an empty line the whole of msg counts as header,
 * cut after its last complete line.
 */
size_t report_header_len(const char *msg, size_t len);

/*
 * Decodes RFC 3461 section 4 xtext ("+XX" hex escapes) from s into a
 * malloc'd string, with bytes below 0x20 or above 0x7e shown as '?'.
 * Malformed escapes are copied as they are. Caller frees.
 */
char *report_xtext_decode(const char *s);

#endif
