/*
 * deliver - parsers for the rcpt and result values exchanged between qmgr
 * and the delivery agents (see deliver.h).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "deliver.h"

int deliver_split_index(const char *value, size_t *index_out,
    const char **rest_out)
{
	size_t index = 0;
	const char *p = value;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		size_t digit = (size_t)(*p - '0');
		if (index > (SIZE_MAX - digit) / 10)
			return -1;
		index = index * 10 + digit;
	}
	if (*p != ' ')
		return -1;
	*index_out = index;
	*rest_out = p + 1;
	return 0;
}

/* Copies the word at *p (up to a space or the end) into out and moves *p
 * past it and one space. Returns 0, or -1 when empty or too long. */
static int deliver_take_word(const char **p, char *out, size_t size)
{
	size_t len = strcspn(*p, " ");

	if (len == 0 || len >= size)
		return -1;
	memcpy(out, *p, len);
	out[len] = '\0';
	*p += len;
	if (**p == ' ')
		(*p)++;
	return 0;
}

/* Returns 1 for an RFC 3463 status code: class.subject.detail, where
 * class is 2, 4 or 5 and subject and detail have one to three digits. */
static int deliver_valid_dsn(const char *dsn)
{
	const char *p = dsn;

	if (p[0] != '2' && p[0] != '4' && p[0] != '5')
		return 0;
	if (p[1] != '.')
		return 0;
	p += 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = strspn(p, "0123456789");
		if (digits < 1 || digits > 3)
			return 0;
		p += digits;
		if (part == 0 && *p++ != '.')
			return 0;
	}
	return *p == '\0';
}

int deliver_parse_result(const char *rest, char *status, size_t status_size,
    char *dsn, size_t dsn_size, const char **text_out)
{
	const char *p = rest;

	if (deliver_take_word(&p, status, status_size) < 0)
		return -1;
	if (strcmp(status, DELIVER_SENT) != 0 &&
	    strcmp(status, DELIVER_DEFER) != 0 &&
	    strcmp(status, DELIVER_BOUNCE) != 0)
		return -1;
	if (deliver_take_word(&p, dsn, dsn_size) < 0 || !deliver_valid_dsn(dsn))
		return -1;
	*text_out = p;
	return 0;
}
