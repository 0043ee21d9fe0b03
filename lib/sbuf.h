/*
 * sbuf - growable byte strings with a hard size cap.
 *
 * An sbuf always keeps a NUL byte after its contents, so sbuf->data can be
 * used as a C string when the contents hold no NUL. Every append checks the
 * cap given at init time and fails instead of growing past it, so a peer
 * can never make us allocate more than the cap.
 */
#ifndef POSTERN_SBUF_H
#define POSTERN_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *data;   /* contents, NUL-terminated; NULL until the first append */
	size_t len;   /* bytes of contents, not counting the NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* maximum len; 0 means SBUF_DEFAULT_MAX */
};

#define SBUF_DEFAULT_MAX (64u * 1024 * 1024)

/* Initializes an empty buffer whose contents may grow to max bytes. */
void sbuf_init(struct sbuf *sb, size_t max);

/* Releases the memory and leaves an empty buffer with the same cap. */
void sbuf_free(struct sbuf *sb);

/* Empties the buffer and keeps its memory. */
void sbuf_reset(struct sbuf *sb);

/* Appends len bytes. Returns 0, or -1 with errno EMSGSIZE when the cap
 * would be exceeded (the buffer is then unchanged). Aborts on ENOMEM. */
int sbuf_append(struct sbuf *sb, const void *data, size_t len);
int sbuf_puts(struct sbuf *sb, const char *s);
int sbuf_putc(struct sbuf *sb, char c);
int sbuf_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap);

/* Returns the contents as a C string; "" for a buffer never appended to. */
const char *sbuf_cstr(const struct sbuf *sb);

/* Hands the contents to the caller (free() them) and empties the buffer. */
char *sbuf_detach(struct sbuf *sb);

/* Removes the first n bytes. */
void sbuf_consume(struct sbuf *sb, size_t n);

/* Memory helpers that abort with a log line instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* String helpers. */
void str_lower(char *s);                 /* ASCII lowercase in place */
char *str_trim(char *s);                 /* strips blanks at both ends, in place */
int str_casecmp_eq(const char *a, const char *b); /* ASCII case-insensitive equality */

/*
 * Splits s at any of the characters in seps (for lists such as
 * "a, b c"), skipping empty fields. Returns a NULL-terminated array of
 * strings in one allocation that the caller frees with free(); *count_out
 * (when not NULL) receives the number of fields.
 */
char **str_split(const char *s, const char *seps, size_t *count_out);

/*
 * Copies s to out with control characters and bytes >= 0x7f replaced by
 * '?', truncated to out_size - 1 bytes; for putting client text into logs.
 */
void str_sanitize(char *out, size_t out_size, const char *s, size_t len);

#endif
