/*
 * mastercf - parsing of master.cf (see mastercf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iox.h"
#include "mastercf.h"
#include "netaddr.h"
#include "sbuf.h"

/* Fixed columns before the command's arguments. */
#define MASTERCF_COLUMNS 8
/* Largest maxproc and wakeup accepted, to catch typos early. */
#define MASTERCF_MAXPROC_MAX 100000
#define MASTERCF_WAKEUP_MAX (7 * 86400)
/* Largest master.cf read. */
#define MASTERCF_FILE_MAX (4u * 1024 * 1024)

/* State of the parse of one file. */
struct mastercf_parser {
	const char *origin;
	struct mastercf_entry *entries;
	size_t count;
	char *err;
};

static void mastercf_entry_clear(struct mastercf_entry *e)
{
	free(e->service);
	free(e->type);
	free(e->command);
	for (size_t i = 0; i < e->noverrides; i++)
		free(e->overrides[i]);
	free(e->overrides);
	for (size_t i = 0; i < e->nargs; i++)
		free(e->args[i]);
	free(e->args);
	memset(e, 0, sizeof(*e));
}

void mastercf_free(struct mastercf_entry **entries, size_t count)
{
	if (*entries == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		mastercf_entry_clear(&(*entries)[i]);
	free(*entries);
	*entries = NULL;
}

static void mastercf_error(struct mastercf_parser *p, int line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void mastercf_error(struct mastercf_parser *p, int line,
    const char *fmt, ...)
{
	struct sbuf msg;
	va_list ap;

	sbuf_init(&msg, 0);
	sbuf_printf(&msg, "%s, line %d: ", p->origin, line);
	va_start(ap, fmt);
	sbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	free(p->err);
	p->err = sbuf_detach(&msg);
}

/* Parses a y/n/- column. Returns 0/1, the default for "-", or -1. */
static int mastercf_flag(const char *s, int dflt)
{
	if (strcmp(s, "-") == 0)
		return dflt;
	if (strcmp(s, "y") == 0)
		return 1;
	if (strcmp(s, "n") == 0)
		return 0;
	return -1;
}

/* Parses a decimal number of at most max, or "-" for dflt. Returns -2
 * when invalid. */
static long mastercf_number(const char *s, long dflt, long max)
{
	long value = 0;

	if (strcmp(s, "-") == 0)
		return dflt;
	if (*s == '\0')
		return -2;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -2;
		value = value * 10 + (*s - '0');
		if (value > max)
			return -2;
	}
	return value;
}

/* Checks the service column for the type. Returns 0 or -1. */
static int mastercf_check_service(const char *service, const char *type)
{
	if (strcmp(type, "unix") == 0)
		return strchr(service, '/') == NULL && service[0] != '.' ? 0 : -1;

	char *host = NULL, *port = NULL;
	int rc = hostport_split(service, &host, &port, NULL);
	/* A word such as "smtp" alone is a port name, but an address alone
	 * has no port to listen on. */
	if (rc == 0 && port == NULL && strpbrk(service, ".:[") != NULL)
		rc = -1;
	free(host);
	free(port);
	return rc;
}

/* Parses the eight fixed columns into e. Returns 0 or -1 with p->err. */
static int mastercf_columns(struct mastercf_parser *p, char **f, int line,
    struct mastercf_entry *e)
{
	if (strcmp(f[1], "inet") != 0 && strcmp(f[1], "unix") != 0) {
		mastercf_error(p, line, "invalid type \"%s\": expected inet or unix",
		    f[1]);
		return -1;
	}
	if (mastercf_check_service(f[0], f[1]) < 0) {
		if (strcmp(f[1], "unix") == 0)
			mastercf_error(p, line, "invalid service name \"%s\": a unix "
			    "service name may not contain '/' or start with '.'", f[0]);
		else
			mastercf_error(p, line, "invalid service \"%s\": expected "
			    "port, host:port or [host]:port", f[0]);
		return -1;
	}

	e->private_ = mastercf_flag(f[2], 1);
	e->unpriv = mastercf_flag(f[3], 1);
	e->chroot = mastercf_flag(f[4], 0);
	const char *bad = e->private_ < 0 ? f[2] : e->unpriv < 0 ? f[3] :
	    e->chroot < 0 ? f[4] : NULL;
	if (bad != NULL) {
		mastercf_error(p, line, "invalid value \"%s\" in the private, "
		    "unpriv or chroot column: expected y, n or -", bad);
		return -1;
	}

	/* Postfix marks a wake-up sent only while the service is in use with a
	 * trailing '?'; the timer is the same for us. */
	char *wakeup = xstrdup(f[5]);
	size_t wlen = strlen(wakeup);
	if (wlen > 1 && wakeup[wlen - 1] == '?')
		wakeup[wlen - 1] = '\0';
	long w = mastercf_number(wakeup, 0, MASTERCF_WAKEUP_MAX);
	free(wakeup);
	if (w < 0) {
		mastercf_error(p, line, "invalid wakeup \"%s\": expected seconds "
		    "or -", f[5]);
		return -1;
	}
	long m = mastercf_number(f[6], -1, MASTERCF_MAXPROC_MAX);
	if (m < -1) {
		mastercf_error(p, line, "invalid maxproc \"%s\": expected a number "
		    "of processes or -", f[6]);
		return -1;
	}

	e->wakeup = (int)w;
	e->maxproc = (int)m;
	e->service = xstrdup(f[0]);
	e->type = xstrdup(f[1]);
	e->command = xstrdup(f[7]);
	e->line = line;
	return 0;
}

static void mastercf_push(char ***list, size_t *n, char *item)
{
	*list = xrealloc(*list, (*n + 1) * sizeof(char *));
	(*list)[(*n)++] = item;
}

/* Turns "name=value", "name = value" or "{ name = value }" into
 * "name=value". Returns NULL when there is no '=' or no name. */
static char *mastercf_override_text(const char *text)
{
	char *s = xstrdup(text);
	str_trim(s);
	size_t len = strlen(s);
	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s[len - 1] = '\0';
		memmove(s, s + 1, len - 1);
		str_trim(s);
	}

	char *eq = strchr(s, '=');
	if (eq == NULL) {
		free(s);
		return NULL;
	}
	*eq = '\0';
	char *name = str_trim(s);
	char *value = str_trim(eq + 1);
	char *out = name[0] != '\0' && strpbrk(name, " \t{}") == NULL ?
	    xasprintf("%s=%s", name, value) : NULL;
	free(s);
	return out;
}

/* Collects the value of one -o starting at f[*i], joining a "{ ... }"
 * group that spans several fields. Returns NULL when it is missing. */
static char *mastercf_override_value(char **f, size_t nf, size_t *i)
{
	if (*i >= nf)
		return NULL;
	if (f[*i][0] != '{')
		return xstrdup(f[(*i)++]);

	struct sbuf group;
	sbuf_init(&group, 0);
	for (; *i < nf; (*i)++) {
		if (group.len > 0)
			sbuf_putc(&group, ' ');
		sbuf_puts(&group, f[*i]);
		size_t len = strlen(f[*i]);
		if (f[*i][len - 1] == '}') {
			(*i)++;
			return sbuf_detach(&group);
		}
	}
	sbuf_free(&group);
	return NULL;
}

/* Sorts the fields after the command into overrides and arguments. */
static int mastercf_arguments(struct mastercf_parser *p, char **f, size_t nf,
    struct mastercf_entry *e)
{
	size_t i = MASTERCF_COLUMNS;

	while (i < nf) {
		const char *arg = f[i++];
		if (strncmp(arg, "-o", 2) != 0) {
			mastercf_push(&e->args, &e->nargs, xstrdup(arg));
			continue;
		}
		char *raw = arg[2] != '\0' ? xstrdup(arg + 2) :
		    mastercf_override_value(f, nf, &i);
		if (raw == NULL) {
			mastercf_error(p, e->line, "service %s: -o without a "
			    "name=value after it", e->service);
			return -1;
		}
		char *text = mastercf_override_text(raw);
		if (text == NULL) {
			mastercf_error(p, e->line, "service %s: invalid override "
			    "\"%s\": expected -o name=value", e->service, raw);
			free(raw);
			return -1;
		}
		free(raw);
		mastercf_push(&e->overrides, &e->noverrides, text);
	}
	return 0;
}

/* Parses one logical line that started at line. Returns 0 or -1. */
static int mastercf_parse_line(struct mastercf_parser *p, const char *text,
    int line)
{
	struct mastercf_entry e;
	size_t nf;
	char **f = str_split(text, " \t\r", &nf);
	int rc = -1;

	memset(&e, 0, sizeof(e));
	if (nf < MASTERCF_COLUMNS) {
		static const char *const names[] = {"service", "type", "private",
		    "unpriv", "chroot", "wakeup", "maxproc", "command"};
		mastercf_error(p, line, "missing %s column: expected service type "
		    "private unpriv chroot wakeup maxproc command [args]",
		    names[nf]);
		goto out;
	}
	if (mastercf_columns(p, f, line, &e) < 0 ||
	    mastercf_arguments(p, f, nf, &e) < 0)
		goto out;

	for (size_t k = 0; k < p->count; k++) {
		const struct mastercf_entry *old = &p->entries[k];
		if (strcmp(old->service, e.service) == 0 &&
		    strcmp(old->type, e.type) == 0) {
			mastercf_error(p, line, "duplicate service %s/%s, first "
			    "defined on line %d", e.service, e.type, old->line);
			goto out;
		}
	}
	p->entries = xrealloc(p->entries, (p->count + 1) * sizeof(e));
	p->entries[p->count++] = e;
	memset(&e, 0, sizeof(e));
	rc = 0;

out:
	mastercf_entry_clear(&e);
	free(f);
	return rc;
}

static int mastercf_skip_line(const char *s)
{
	s += strspn(s, " \t\r");
	return *s == '\0' || *s == '#';
}

int mastercf_parse(const char *text, const char *origin,
    struct mastercf_entry **entries_out, size_t *count_out, char **err_out)
{
	struct mastercf_parser p = {.origin = origin};
	struct sbuf logical;
	int lineno = 0, start = 0, rc = 0;

	sbuf_init(&logical, 0);
	while (*text && rc == 0) {
		size_t len = strcspn(text, "\n");
		char *line = xstrndup(text, len);
		text += len + (text[len] == '\n');
		lineno++;

		if (mastercf_skip_line(line)) {
			free(line);
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (start == 0) {
				mastercf_error(&p, lineno, "continuation line without "
				    "a service before it");
				rc = -1;
			}
			sbuf_putc(&logical, ' ');
			sbuf_puts(&logical, line);
			free(line);
			continue;
		}
		if (start > 0)
			rc = mastercf_parse_line(&p, sbuf_cstr(&logical), start);
		sbuf_reset(&logical);
		sbuf_puts(&logical, line);
		start = lineno;
		free(line);
	}
	if (rc == 0 && start > 0)
		rc = mastercf_parse_line(&p, sbuf_cstr(&logical), start);
	sbuf_free(&logical);

	if (rc < 0) {
		mastercf_free(&p.entries, p.count);
		if (err_out != NULL)
			*err_out = p.err;
		else
			free(p.err);
		return -1;
	}
	*entries_out = p.entries;
	*count_out = p.count;
	return 0;
}

int mastercf_load(const char *path, struct mastercf_entry **entries_out,
    size_t *count_out, char **err_out)
{
	struct sbuf text;
	int rc;

	sbuf_init(&text, MASTERCF_FILE_MAX);
	if (iox_read_file(path, &text, err_out) < 0) {
		sbuf_free(&text);
		return -1;
	}
	rc = mastercf_parse(sbuf_cstr(&text), path, entries_out, count_out,
	    err_out);
	sbuf_free(&text);
	return rc;
}
