/*
 * Header fields of a submitted message and the RFC 5322 3.4 address-list
 * parser behind -t.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"

void sm_headers_init(struct sm_headers *h, size_t max_bytes)
{
	memset(h, 0, sizeof(*h));
	sbuf_init(&h->raw, max_bytes);
}

void sm_headers_free(struct sm_headers *h)
{
	sbuf_free(&h->raw);
	free(h->fields);
	h->fields = NULL;
	h->count = h->alloc = 0;
}

size_t sm_header_name_len(const char *line, size_t len)
{
	size_t n = 0;

	while (n < len && line[n] > 32 && line[n] < 127 && line[n] != ':')
		n++;
	if (n == 0)
		return 0;
	/* RFC 5322 4.5.8 (obsolete syntax) allows blanks before the colon. */
	size_t colon = n;
	while (colon < len && (line[colon] == ' ' || line[colon] == '\t'))
		colon++;
	return colon < len && line[colon] == ':' ? n : 0;
}

int sm_headers_start(struct sm_headers *h, const char *line, size_t len,
    size_t name_len)
{
	size_t offset = h->raw.len;

	if (sbuf_append(&h->raw, line, len) < 0 || sbuf_putc(&h->raw, '\n') < 0) {
		h->raw.len = offset;
		if (h->raw.data != NULL)
			h->raw.data[offset] = '\0';
		return -1;
	}
	if (h->count == h->alloc) {
		h->alloc = h->alloc ? 2 * h->alloc : 16;
		h->fields = xrealloc(h->fields, h->alloc * sizeof(*h->fields));
	}
	h->fields[h->count++] = (struct sm_field){
		.offset = offset, .len = len + 1, .name_len = name_len,
	};
	return 0;
}

int sm_headers_append(struct sm_headers *h, const char *line, size_t len)
{
	size_t before = h->raw.len;

	if (h->count == 0)
		return -1;
	if (sbuf_append(&h->raw, line, len) < 0 || sbuf_putc(&h->raw, '\n') < 0) {
		h->raw.len = before;
		if (h->raw.data != NULL)
			h->raw.data[before] = '\0';
		return -1;
	}
	h->fields[h->count - 1].len += len + 1;
	return 0;
}

long sm_headers_find(const struct sm_headers *h, const char *name)
{
	size_t name_len = strlen(name);

	for (size_t i = 0; i < h->count; i++) {
		const struct sm_field *f = &h->fields[i];

		if (!f->dropped && f->name_len == name_len
		    && strncasecmp(h->raw.data + f->offset, name, name_len) == 0)
			return (long)i;
	}
	return -1;
}

char *sm_headers_value(const struct sm_headers *h, size_t i)
{
	const struct sm_field *f = &h->fields[i];
	const char *p = h->raw.data + f->offset + f->name_len;
	const char *end = h->raw.data + f->offset + f->len;
	struct sbuf out;

	while (p < end && *p != ':')
		p++;
	if (p < end)
		p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	sbuf_init(&out, 0);
	sbuf_puts(&out, "");
	/* Unfolding (RFC 5322 2.2.3) removes each CRLF, here each LF. */
	for (; p < end; p++)
		if (*p != '\n' && *p != '\r')
			sbuf_putc(&out, *p);
	return sbuf_detach(&out);
}

/* Scanner state of one address-list. */
struct sm_scan {
	struct sbuf plain;   /* text outside <...>, without blanks and comments */
	struct sbuf angle;   /* text inside <...> */
	int in_angle;
	int have_angle;
	char ***addrs;
	size_t *count;
	size_t max_count;
};

/* Ends one mailbox: keeps its addr-spec, if any, and resets the state. */
static int sm_scan_finish(struct sm_scan *s, char **err_out)
{
	const char *spec = s->have_angle ? sbuf_cstr(&s->angle)
	    : sbuf_cstr(&s->plain);

	/* A source route "@a,@b:user@domain" (RFC 5322 4.4) is dropped. */
	if (spec[0] == '@' && strchr(spec, ':') != NULL)
		spec = strchr(spec, ':') + 1;
	if (spec[0] != '\0') {
		if (*s->count >= s->max_count) {
			*err_out = xasprintf("more than %zu recipients", s->max_count);
			return -1;
		}
		*s->addrs = xrealloc(*s->addrs, (*s->count + 1) * sizeof(char *));
		(*s->addrs)[(*s->count)++] = xstrdup(spec);
	}
	sbuf_reset(&s->plain);
	sbuf_reset(&s->angle);
	s->have_angle = 0;
	return 0;
}

/* Copies a quoted string or domain literal starting at *p (the opening
 * character) up to its closing character close. Returns -1 when the
 * value ends first. */
static int sm_scan_quoted(const char **p, char close, struct sbuf *to)
{
	const char *c = *p;

	sbuf_putc(to, *c++);
	for (; *c != '\0'; c++) {
		if (*c == '\\' && c[1] != '\0') {
			sbuf_putc(to, *c++);
			sbuf_putc(to, *c);
			continue;
		}
		sbuf_putc(to, *c);
		if (*c == close) {
			*p = c;
			return 0;
		}
	}
	return -1;
}

/* Skips a comment starting at *p, with nesting (RFC 5322 3.2.2). */
static int sm_scan_comment(const char **p)
{
	int depth = 0;

	for (const char *c = *p; *c != '\0'; c++) {
		if (*c == '\\' && c[1] != '\0')
			c++;
		else if (*c == '(')
			depth++;
		else if (*c == ')' && --depth == 0) {
			*p = c;
			return 0;
		}
	}
	return -1;
}

/* Handles one character outside quotes, literals and comments. */
static int sm_scan_char(struct sm_scan *s, char c, char **err_out)
{
	struct sbuf *to = s->in_angle ? &s->angle : &s->plain;

	switch (c) {
	case '<':
		if (s->in_angle) {
			*err_out = xstrdup("nested '<' in an address");
			return -1;
		}
		s->in_angle = s->have_angle = 1;
		sbuf_reset(&s->angle);
		return 0;
	case '>':
		if (!s->in_angle) {
			*err_out = xstrdup("'>' without '<' in an address");
			return -1;
		}
		s->in_angle = 0;
		return 0;
	case ':':
		if (s->in_angle)
			break;
		/* "name: a@b, c@d;" is a group: its name is no address. */
		sbuf_reset(&s->plain);
		return 0;
	case ',':
	case ';':
		if (s->in_angle)
			break;
		return sm_scan_finish(s, err_out);
	case ' ':
	case '\t':
	case '\r':
	case '\n':
		return 0;
	}
	sbuf_putc(to, c);
	return 0;
}

int sm_address_list(const char *value, char ***addrs_out, size_t *count_out,
    size_t max_count, char **err_out)
{
	struct sm_scan s = {.addrs = addrs_out, .count = count_out,
	    .max_count = max_count};
	int rc = -1;

	sbuf_init(&s.plain, 4096);
	sbuf_init(&s.angle, 4096);
	for (const char *p = value; *p != '\0'; p++) {
		struct sbuf *to = s.in_angle ? &s.angle : &s.plain;

		if (*p == '"' || *p == '[') {
			if (sm_scan_quoted(&p, *p == '"' ? '"' : ']', to) < 0) {
				*err_out = xasprintf("unterminated %s in an address",
				    *p == '"' ? "quoted string" : "domain literal");
				goto out;
			}
		} else if (*p == '(') {
			if (sm_scan_comment(&p) < 0) {
				*err_out = xstrdup("unterminated comment in an address");
				goto out;
			}
		} else if (sm_scan_char(&s, *p, err_out) < 0) {
			goto out;
		}
	}
	if (s.in_angle) {
		*err_out = xstrdup("'<' without '>' in an address");
		goto out;
	}
	rc = sm_scan_finish(&s, err_out);
out:
	sbuf_free(&s.plain);
	sbuf_free(&s.angle);
	return rc;
}
