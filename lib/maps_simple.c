/*
 * maps_simple - the table types that need no file of their own:
 * inline:{ key=value, ... }, static:value and unix:passwd.byname.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maps_impl.h"
#include "sbuf.h"
#include "service.h"

/* inline: */

struct map_inline {
	char **keys;
	char **values;
	size_t count;
};

static void inline_free_state(struct map_inline *st)
{
	for (size_t i = 0; i < st->count; i++) {
		free(st->keys[i]);
		free(st->values[i]);
	}
	free(st->keys);
	free(st->values);
	free(st);
}

static int inline_is_separator(char c)
{
	return c == ',' || isspace((unsigned char)c);
}

static void inline_skip_blanks(const char **p)
{
	while (isspace((unsigned char)**p))
		(*p)++;
}

/*
 * Parses Postfix's "{ key = text }" item at *p, whose text may hold
 * commas and spaces, and advances past it. Returns 0, or -1 with a
 * message.
 */
static int inline_parse_braced_item(const struct map *m, const char **p,
    char **key_out, char **value_out, char **err_out)
{
	char *item = map_brace_value(p);
	char *eq = item ? strchr(item, '=') : NULL;

	if (eq == NULL || eq == item) {
		*err_out = xasprintf("table %s: item \"{%s}\" is not "
		    "{ key = value }", m->spec, item ? item : "...");
		free(item);
		return -1;
	}

	char *key_end = eq;
	while (key_end > item && isspace((unsigned char)key_end[-1]))
		key_end--;
	const char *value = eq + 1;
	inline_skip_blanks(&value);
	size_t value_len = strlen(value);
	while (value_len > 0 && isspace((unsigned char)value[value_len - 1]))
		value_len--;

	char *key_start = item;
	while (isspace((unsigned char)*key_start))
		key_start++;
	if (key_end <= key_start) {
		*err_out = xasprintf("table %s: item \"{%s}\" has no key",
		    m->spec, item);
		free(item);
		return -1;
	}
	*key_out = xstrndup(key_start, (size_t)(key_end - key_start));
	str_lower(*key_out);
	*value_out = xstrndup(value, value_len);
	free(item);
	return 0;
}

/*
 * Parses one "key=value" item at *p and advances past it. The value may
 * be empty, or "{...}" to hold commas and spaces. Returns 0, or -1 with
 * a message.
 */
static int inline_parse_item(const struct map *m, const char **p,
    char **key_out, char **value_out, char **err_out)
{
	const char *start = *p;

	if (**p == '{')
		return inline_parse_braced_item(m, p, key_out, value_out,
		    err_out);

	while (**p != '\0' && **p != '=' && !inline_is_separator(**p))
		(*p)++;
	size_t key_len = (size_t)(*p - start);
	inline_skip_blanks(p);
	if (**p != '=' || key_len == 0) {
		*err_out = xasprintf("table %s: item \"%.*s\" is not key=value",
		    m->spec, key_len ? (int)key_len : 1, start);
		return -1;
	}
	(*p)++;
	inline_skip_blanks(p);

	char *value;
	if (**p == '{') {
		value = map_brace_value(p);
		if (value == NULL) {
			*err_out = xasprintf("table %s: the value of \"%.*s\" has "
			    "no closing '}'", m->spec, (int)key_len, start);
			return -1;
		}
	} else {
		const char *vstart = *p;
		while (**p != '\0' && !inline_is_separator(**p))
			(*p)++;
		value = xstrndup(vstart, (size_t)(*p - vstart));
	}
	*key_out = xstrndup(start, key_len);
	str_lower(*key_out);
	*value_out = value;
	return 0;
}

/* Returns the text between the outer braces of name, or NULL. */
static char *inline_body(const char *name)
{
	const char *p = name;

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '{')
		return NULL;
	char *body = map_brace_value(&p);
	if (body == NULL)
		return NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0') {
		free(body);
		return NULL;
	}
	return body;
}

static int inline_open(struct map *m, const char *name, char **err_out)
{
	char *body = inline_body(name);

	if (body == NULL) {
		*err_out = xasprintf("table %s: write inline tables as "
		    "inline:{ key=value, key2=value2 } with both braces",
		    m->spec);
		return -1;
	}

	struct map_inline *st = xcalloc(1, sizeof(*st));
	size_t alloc = 0;
	const char *p = body;
	for (;;) {
		while (inline_is_separator(*p))
			p++;
		if (*p == '\0')
			break;
		if (st->count == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			st->keys = xrealloc(st->keys, alloc * sizeof(char *));
			st->values = xrealloc(st->values, alloc * sizeof(char *));
		}
		if (inline_parse_item(m, &p, &st->keys[st->count],
		    &st->values[st->count], err_out) < 0) {
			inline_free_state(st);
			free(body);
			return -1;
		}
		st->count++;
	}
	free(body);
	m->state = st;
	return 0;
}

static int inline_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	struct map_inline *st = m->state;

	/* Search from the end so that a repeated key's last value wins. */
	for (size_t i = st->count; i-- > 0;) {
		if (strcmp(st->keys[i], key) == 0) {
			*value_out = xstrdup(st->values[i]);
			return 1;
		}
	}
	return 0;
}

static void inline_close(struct map *m)
{
	inline_free_state(m->state);
	m->state = NULL;
}

const struct map_type map_type_inline = {
	"inline", 1, inline_open, inline_lookup, inline_close
};

/* static: */

static int static_open(struct map *m, const char *name, char **err_out)
{
	const char *p = name;

	if (*p == '\0') {
		*err_out = xasprintf("table %s: static: needs a value, as in "
		    "static:value or static:{value with spaces}", m->spec);
		return -1;
	}
	if (*p != '{') {
		m->state = xstrdup(name);
		return 0;
	}
	char *value = map_brace_value(&p);
	if (value == NULL || *p != '\0') {
		free(value);
		*err_out = xasprintf("table %s: write static:{value with spaces} "
		    "with one pair of braces around the whole value", m->spec);
		return -1;
	}
	m->state = value;
	return 0;
}

static int static_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	*value_out = xstrdup(m->state);
	return 1;
}

static void static_close(struct map *m)
{
	free(m->state);
	m->state = NULL;
}

const struct map_type map_type_static = {
	"static", 0, static_open, static_lookup, static_close
};

/* unix:passwd.byname */

static int unix_open(struct map *m, const char *name, char **err_out)
{
	if (strcmp(name, "passwd.byname") != 0) {
		*err_out = xasprintf("table %s: unknown unix table \"%s\"; the "
		    "only one is unix:passwd.byname", m->spec, name);
		return -1;
	}
	m->state = NULL;
	return 0;
}

static int unix_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	struct passwd *pw;

	if (*key == '\0')
		return 0;
	errno = 0;
	pw = getpwnam(key);
	if (pw == NULL && service_chrooted() && access("/etc/passwd", R_OK) < 0) {
		/* Without this check every user would be "not found", and
		 * smtpd would reject valid local recipients with 550. */
		*err_out = xasprintf("table %s: no etc/passwd inside the chroot "
		    "(queue_directory): copy /etc/passwd there, or set the "
		    "chroot column of this service to n", m->spec);
		return -1;
	}
	if (pw == NULL) {
		/* getpwnam(3) lists these for "not found". */
		if (errno == 0 || errno == ENOENT || errno == ESRCH ||
		    errno == EBADF || errno == EPERM)
			return 0;
		*err_out = xasprintf("table %s: looking up user \"%s\" failed: %s",
		    m->spec, key, strerror(errno));
		return -1;
	}
	/* The password field is always "x": the caller needs the account,
	 * never its secret. */
	*value_out = xasprintf("%s:x:%lu:%lu:%s:%s:%s", pw->pw_name,
	    (unsigned long)pw->pw_uid, (unsigned long)pw->pw_gid,
	    pw->pw_gecos ? pw->pw_gecos : "", pw->pw_dir ? pw->pw_dir : "",
	    pw->pw_shell ? pw->pw_shell : "");
	return 1;
}

static void unix_close(struct map *m)
{
}

const struct map_type map_type_unix = {
	"unix", 1, unix_open, unix_lookup, unix_close
};
