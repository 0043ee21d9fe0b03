/*
 * The header section of a message that sendmail reads (RFC 5322 2.2):
 * collecting fields, finding and dropping them, and taking the
 * addresses out of To, Cc and Bcc for -t.
 */
#ifndef POSTERN_SENDMAIL_HEADER_H
#define POSTERN_SENDMAIL_HEADER_H

#include <stddef.h>

#include "sbuf.h"

struct sm_field {
	size_t offset;     /* start of the field in raw */
	size_t len;        /* bytes, with every LF of its lines */
	size_t name_len;
	int dropped;       /* 1: not written out (Bcc with -t) */
};

struct sm_headers {
	struct sbuf raw;   /* the fields as read, LF line ends */
	struct sm_field *fields;
	size_t count;
	size_t alloc;
};

/* Initializes an empty section that may hold up to max_bytes. */
void sm_headers_init(struct sm_headers *h, size_t max_bytes);
void sm_headers_free(struct sm_headers *h);

/*
 * Returns the length of the field name when line (len bytes, no LF)
 * starts a header field: one or more printable ASCII characters other
 * than ':', then optional blanks, then ':'. Returns 0 otherwise.
 */
size_t sm_header_name_len(const char *line, size_t len);

/* Starts a new field with line (len bytes, no LF; name_len from
 * sm_header_name_len). Returns 0, or -1 when the section would exceed
 * its maximum size. */
int sm_headers_start(struct sm_headers *h, const char *line, size_t len,
    size_t name_len);

/* Appends a continuation line (len bytes, no LF) to the last field.
 * Returns 0, or -1 when there is no field yet or the section would
 * exceed its maximum size. */
int sm_headers_append(struct sm_headers *h, const char *line, size_t len);

/* Index of the first field named name (case-insensitive) that is not
 * dropped, or -1. */
long sm_headers_find(const struct sm_headers *h, const char *name);

/* The unfolded value of field i, without the name, the colon, leading
 * blanks and line ends (caller frees). */
char *sm_headers_value(const struct sm_headers *h, size_t i);

/*
 * Splits an RFC 5322 address-list (To, Cc, Bcc values) into addr-specs:
 * display names, comments and group names are dropped, and a source
 * route inside <...> is removed. An addr-spec may lack "@domain"; the
 * caller qualifies it. Appends each to *addrs_out (a malloc'd array of
 * malloc'd strings, grown as needed) and updates *count_out. Returns 0,
 * or -1 with a message in *err_out (caller frees) on an unterminated
 * quote, comment, domain literal or <...>, or past max_count addresses.
 */
int sm_address_list(const char *value, char ***addrs_out, size_t *count_out,
    size_t max_count, char **err_out);

#endif
