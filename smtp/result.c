/*
 * Per-recipient results of a request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

/* Maximum result text sent to qmgr, in bytes. */
#define RESULT_TEXT_MAX 1200

void smtp_rcpt_result(struct smtp_rcpt *r, const char *status,
    const char *dsn, const char *fmt, ...)
{
	char raw[RESULT_TEXT_MAX];
	char clean[RESULT_TEXT_MAX];
	va_list ap;

	if (r->done)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	str_sanitize(clean, sizeof(clean), raw, strlen(raw));
	snprintf(r->status, sizeof(r->status), "%s", status);
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->text);
	r->text = xstrdup(clean);
	r->done = 1;
}

void smtp_request_fail_rest(struct smtp_request *req, const char *status,
    const char *dsn, const char *text)
{
	for (size_t i = 0; i < req->nrcpt; i++)
		smtp_rcpt_result(&req->rcpts[i], status, dsn, "%s", text);
}
