/*
 * sbuf - growable byte strings with a hard size cap, and small string and
 * memory helpers (see sbuf.h for the contract).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sbuf.h"

static size_t sbuf_max(const struct sbuf *sb)
{
	return sb->max ? sb->max : SBUF_DEFAULT_MAX;
}

/* Makes room for need more bytes plus the NUL. Returns 0 or -1 (EMSGSIZE). */
static int sbuf_reserve(struct sbuf *sb, size_t need)
{
	size_t max = sbuf_max(sb);

	if (need > max || sb->len > max - need) {
		errno = EMSGSIZE;
		return -1;
	}
	size_t want = sb->len + need + 1;
	if (want <= sb->cap)
		return 0;

	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	/* No point allocating far beyond what the cap allows. */
	if (cap > max + 1 && want <= max + 1)
		cap = max + 1;
	sb->data = xrealloc(sb->data, cap);
	sb->cap = cap;
	return 0;
}

void sbuf_init(struct sbuf *sb, size_t max)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->max = max;
}

void sbuf_free(struct sbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void sbuf_reset(struct sbuf *sb)
{
	sb->len = 0;
	if (sb->data != NULL)
		sb->data[0] = '\0';
}

int sbuf_append(struct sbuf *sb, const void *data, size_t len)
{
	if (sbuf_reserve(sb, len) < 0)
		return -1;
	if (len > 0)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	return 0;
}

int sbuf_puts(struct sbuf *sb, const char *s)
{
	return sbuf_append(sb, s, strlen(s));
}

int sbuf_putc(struct sbuf *sb, char c)
{
	return sbuf_append(sb, &c, 1);
}

int sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	char small[256];

	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return sbuf_append(sb, small, (size_t)n);

	if (sbuf_reserve(sb, (size_t)n) < 0)
		return -1;
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
	return rc;
}

const char *sbuf_cstr(const struct sbuf *sb)
{
	return sb->data != NULL ? sb->data : "";
}

char *sbuf_detach(struct sbuf *sb)
{
	char *p = sb->data != NULL ? sb->data : xstrdup("");

	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	return p;
}

void sbuf_consume(struct sbuf *sb, size_t n)
{
	if (n >= sb->len) {
		sbuf_reset(sb);
		return;
	}
	memmove(sb->data, sb->data + n, sb->len - n);
	sb->len -= n;
	sb->data[sb->len] = '\0';
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		log_panic("out of memory allocating %zu bytes", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		log_panic("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		log_panic("out of memory reallocating to %zu bytes", n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_panic("out of memory formatting a string");
	return p;
}

void str_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int str_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

char *str_trim(char *s)
{
	char *start = s;

	while (str_is_blank(*start))
		start++;
	size_t len = strlen(start);
	while (len > 0 && str_is_blank(start[len - 1]))
		len--;
	memmove(s, start, len);
	s[len] = '\0';
	return s;
}

int str_casecmp_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

char **str_split(const char *s, const char *seps, size_t *count_out)
{
	size_t len = strlen(s);
	size_t max_fields = len / 2 + 1;

	/* One block: the pointer array, then a copy of s cut into fields. */
	char **fields = xmalloc((max_fields + 1) * sizeof(char *) + len + 1);
	char *copy = (char *)(fields + max_fields + 1);
	memcpy(copy, s, len + 1);

	size_t n = 0;
	char *p = copy;
	while (*p) {
		p += strspn(p, seps);
		if (*p == '\0')
			break;
		fields[n++] = p;
		p += strcspn(p, seps);
		if (*p)
			*p++ = '\0';
	}
	fields[n] = NULL;
	if (count_out != NULL)
		*count_out = n;
	return fields;
}

void str_sanitize(char *out, size_t out_size, const char *s, size_t len)
{
	size_t i;

	if (out_size == 0)
		return;
	for (i = 0; i < len && i < out_size - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}
