/*
 * config - main.cf parameters (see config.h for the contract).
 *
 * Each known parameter has up to three raw values: the override from
 * "-o name=value", the value from main.cf, and the compiled-in default
 * (or one computed at load time). After every load and override all
 * parameters are expanded at once, so that the getters only read and
 * several threads may call them.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "sbuf.h"

#ifndef POSTERN_CONFIG_DIR
#define POSTERN_CONFIG_DIR "/etc/postern"
#endif
#ifndef POSTERN_QUEUE_DIR
#define POSTERN_QUEUE_DIR "/var/spool/postern"
#endif
#ifndef POSTERN_DAEMON_DIR
#define POSTERN_DAEMON_DIR "/usr/libexec/postern"
#endif

/* Deepest chain of $name references followed before a loop is assumed. */
#define CONFIG_EXPAND_DEPTH 20
/* Largest main.cf read, as a guard against reading a wrong file. */
#define CONFIG_FILE_MAX (4u * 1024 * 1024)

struct config_value {
	char *file;      /* from main.cf, or NULL */
	char *override;  /* from -o name=value, or NULL */
	char *computed;  /* default computed at load time, for NULL defaults */
	char *expanded;  /* expanded effective value */
	int expanding;   /* set while the value is being expanded */
};

static size_t config_count;
static struct config_value *config_values;
static size_t *config_sorted;     /* indexes into config_params, by name */
static char *config_directory_loaded;
static int config_loop_warned;

/* Unknown-name warnings of the last load, kept for config_warn_unknown():
 * a program warns while it loads, before it knows its log target. */
#define CONFIG_UNKNOWN_MAX 32
static char *config_unknown[CONFIG_UNKNOWN_MAX];
static int config_unknown_count;

static int config_sorted_cmp(const void *a, const void *b)
{
	return strcmp(config_params[*(const size_t *)a].name,
	    config_params[*(const size_t *)b].name);
}

/* Sets up the value table once. */
static void config_setup(void)
{
	if (config_values != NULL)
		return;
	while (config_params[config_count].name != NULL)
		config_count++;
	config_values = xcalloc(config_count, sizeof(*config_values));
	config_sorted = xcalloc(config_count, sizeof(*config_sorted));
	for (size_t i = 0; i < config_count; i++)
		config_sorted[i] = i;
	qsort(config_sorted, config_count, sizeof(*config_sorted),
	    config_sorted_cmp);
}

/* Returns the index of name in config_params, or -1. */
static long config_index(const char *name)
{
	size_t lo = 0, hi;

	config_setup();
	hi = config_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(name, config_params[config_sorted[mid]].name);
		if (cmp == 0)
			return (long)config_sorted[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static size_t config_index_or_panic(const char *name)
{
	long i = config_index(name);

	if (i < 0)
		log_panic("request for unknown configuration parameter \"%s\"",
		    name);
	return (size_t)i;
}

/* The default before expansion: the table's, or the computed one. */
static const char *config_default_raw(size_t i)
{
	if (config_params[i].default_value != NULL)
		return config_params[i].default_value;
	return config_values[i].computed != NULL ? config_values[i].computed : "";
}

static const char *config_effective_raw(size_t i)
{
	if (config_values[i].override != NULL)
		return config_values[i].override;
	if (config_values[i].file != NULL)
		return config_values[i].file;
	return config_default_raw(i);
}

int config_known(const char *name)
{
	return config_index(name) >= 0;
}

static int config_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static const char *config_expand_param(size_t i, int depth);

/* Appends the expansion of one "$name" reference. */
static void config_expand_ref(struct sbuf *out, const char *name, int depth)
{
	long i = config_index(name);

	if (i < 0) {
		log_warn("unknown parameter name \"%s\" in a $%s reference "
		    "expands to an empty value", name, name);
		return;
	}
	sbuf_puts(out, config_expand_param((size_t)i, depth));
}

/* Expands text into out; depth counts the references followed so far. */
static void config_expand_into(struct sbuf *out, const char *text, int depth)
{
	const char *p = text;

	while (*p) {
		const char *dollar = strchr(p, '$');
		if (dollar == NULL) {
			sbuf_puts(out, p);
			return;
		}
		sbuf_append(out, p, (size_t)(dollar - p));
		p = dollar + 1;

		if (*p == '$') {
			sbuf_putc(out, '$');
			p++;
		} else if (*p == '{') {
			const char *close = strchr(p, '}');
			size_t len = close != NULL ? (size_t)(close - p - 1) : 0;
			char *name = close != NULL ? xstrndup(p + 1, len) : NULL;
			if (name == NULL || len == 0) {
				/* Unterminated or empty: keep the text as written. */
				sbuf_putc(out, '$');
				free(name);
				continue;
			}
			config_expand_ref(out, name, depth);
			free(name);
			p = close + 1;
		} else if (config_name_char(*p)) {
			const char *start = p;
			while (config_name_char(*p))
				p++;
			char *name = xstrndup(start, (size_t)(p - start));
			config_expand_ref(out, name, depth);
			free(name);
		} else {
			/* A lone '$' stays as it is. */
			sbuf_putc(out, '$');
		}
	}
}

/* Returns the expanded value of parameter i, computing it once. */
static const char *config_expand_param(size_t i, int depth)
{
	struct config_value *v = &config_values[i];
	struct sbuf out;

	if (v->expanded != NULL)
		return v->expanded;
	if (depth > CONFIG_EXPAND_DEPTH || v->expanding > CONFIG_EXPAND_DEPTH) {
		if (!config_loop_warned)
			log_warn("parameter %s: $name references loop more than %d "
			    "levels deep; the loop expands to an empty value",
			    config_params[i].name, CONFIG_EXPAND_DEPTH);
		config_loop_warned = 1;
		return "";
	}

	v->expanding++;
	sbuf_init(&out, 0);
	config_expand_into(&out, config_effective_raw(i), depth + 1);
	v->expanding--;

	/* A loop may have stored a value for i while it was expanded. */
	if (v->expanded != NULL) {
		sbuf_free(&out);
		return v->expanded;
	}
	v->expanded = sbuf_detach(&out);
	return v->expanded;
}

static void config_set_computed(const char *name, const char *value)
{
	long i = config_index(name);

	if (i < 0 || config_params[i].default_value != NULL)
		return;
	free(config_values[i].computed);
	config_values[i].computed = xstrdup(value);
}

/* Returns gethostname(), with ".localdomain" added when it has no dot. */
static char *config_host_name(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL)
		return xasprintf("%s.localdomain", host);
	return xstrdup(host);
}

static void config_clear_expanded(void)
{
	for (size_t i = 0; i < config_count; i++) {
		free(config_values[i].expanded);
		config_values[i].expanded = NULL;
		config_values[i].expanding = 0;
	}
}

/* Computes the NULL defaults and expands every parameter again. */
static void config_recompute(void)
{
	config_setup();
	config_clear_expanded();
	config_loop_warned = 0;

	char *host = config_host_name();
	config_set_computed("myhostname", host);
	free(host);
	config_set_computed("config_directory", config_directory_loaded != NULL ?
	    config_directory_loaded : POSTERN_CONFIG_DIR);
	config_set_computed("queue_directory", POSTERN_QUEUE_DIR);
	config_set_computed("daemon_directory", POSTERN_DAEMON_DIR);

	/* mydomain follows the effective myhostname, set or computed. */
	long h = config_index("myhostname");
	if (h >= 0) {
		const char *name = config_expand_param((size_t)h, 0);
		const char *dot = strchr(name, '.');
		char *domain = xstrdup(dot != NULL && dot[1] != '\0' ? dot + 1 :
		    "localdomain");
		config_set_computed("mydomain", domain);
		free(domain);
		/* Values expanded so far may have used the old mydomain. */
		config_clear_expanded();
	}

	for (size_t i = 0; i < config_count; i++)
		config_expand_param(i, 0);
}

/* Makes sure the getters see computed values before any load. */
static void config_ready(void)
{
	config_setup();
	if (config_count > 0 && config_values[0].expanded == NULL)
		config_recompute();
}

/* Stores one logical "name = value" line into file_values. Returns 0, or
 * -1 with a message in *err_out. */
static int config_parse_line(char *line, const char *origin, int lineno,
    char **file_values, char **err_out)
{
	char *eq = strchr(line, '=');

	if (eq == NULL) {
		*err_out = xasprintf("%s, line %d: missing '=' in \"%.60s\": "
		    "expected name = value", origin, lineno, line);
		return -1;
	}
	*eq = '\0';
	char *name = str_trim(line);
	char *value = str_trim(eq + 1);
	if (name[0] == '\0') {
		*err_out = xasprintf("%s, line %d: missing parameter name before "
		    "'=': expected name = value", origin, lineno);
		return -1;
	}
	for (const char *c = name; *c; c++) {
		if (!config_name_char(*c)) {
			*err_out = xasprintf("%s, line %d: invalid parameter name "
			    "\"%.60s\": use letters, digits and '_'", origin, lineno,
			    name);
			return -1;
		}
	}

	long i = config_index(name);
	if (i < 0) {
		char *msg = xasprintf("%s, line %d: unknown parameter name \"%s\" "
		    "is ignored", origin, lineno, name);
		log_warn("%s", msg);
		if (config_unknown_count < CONFIG_UNKNOWN_MAX)
			config_unknown[config_unknown_count++] = msg;
		else
			free(msg);
		return 0;
	}
	/* As in Postfix, a later line for the same name wins. */
	free(file_values[i]);
	file_values[i] = xstrdup(value);
	return 0;
}

static int config_blank_line(const char *s)
{
	return s[strspn(s, " \t\r")] == '\0';
}

static int config_comment_line(const char *s)
{
	return s[strspn(s, " \t")] == '#';
}

/* Parses main.cf text into file_values. Returns 0 or -1 with *err_out. */
static int config_parse_text(const char *text, const char *origin,
    char **file_values, char **err_out)
{
	struct sbuf logical;
	const char *p = text;
	int lineno = 0, logical_lineno = 0, rc = 0;

	sbuf_init(&logical, 0);
	while (*p && rc == 0) {
		size_t len = strcspn(p, "\n");
		char *line = xstrndup(p, len);
		p += len + (p[len] == '\n');
		lineno++;

		if (config_blank_line(line) || config_comment_line(line)) {
			free(line);
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (logical_lineno == 0) {
				*err_out = xasprintf("%s, line %d: continuation line "
				    "without a parameter before it", origin, lineno);
				rc = -1;
			} else {
				sbuf_putc(&logical, ' ');
				sbuf_puts(&logical, str_trim(line));
			}
			free(line);
			continue;
		}
		if (logical_lineno > 0)
			rc = config_parse_line(logical.data, origin, logical_lineno,
			    file_values, err_out);
		sbuf_reset(&logical);
		sbuf_puts(&logical, line);
		logical_lineno = lineno;
		free(line);
	}
	if (rc == 0 && logical_lineno > 0)
		rc = config_parse_line(logical.data, origin, logical_lineno,
		    file_values, err_out);
	sbuf_free(&logical);
	return rc;
}

static void config_free_values(char **values)
{
	for (size_t i = 0; i < config_count; i++)
		free(values[i]);
	free(values);
}

int config_load_text(const char *text, const char *origin, char **err_out)
{
	char *err = NULL;

	config_setup();
	while (config_unknown_count > 0)
		free(config_unknown[--config_unknown_count]);
	char **file_values = xcalloc(config_count + 1, sizeof(char *));
	if (config_parse_text(text, origin, file_values, &err) < 0) {
		config_free_values(file_values);
		if (err_out != NULL)
			*err_out = err;
		else
			free(err);
		return -1;
	}

	/* Replace the old values only once the whole text parsed. */
	for (size_t i = 0; i < config_count; i++) {
		free(config_values[i].file);
		config_values[i].file = file_values[i];
	}
	free(file_values);
	config_recompute();
	return 0;
}

int config_load(const char *dir, char **err_out)
{
	struct sbuf text;
	int rc;

	if (dir == NULL)
		dir = POSTERN_CONFIG_DIR;
	char *path = xasprintf("%s/main.cf", dir);

	sbuf_init(&text, CONFIG_FILE_MAX);
	if (iox_read_file(path, &text, err_out) < 0) {
		sbuf_free(&text);
		free(path);
		return -1;
	}

	free(config_directory_loaded);
	config_directory_loaded = xstrdup(dir);
	rc = config_load_text(sbuf_cstr(&text), path, err_out);
	sbuf_free(&text);
	free(path);
	return rc;
}

int config_override(const char *name_equals_value)
{
	const char *eq = strchr(name_equals_value, '=');

	if (eq == NULL)
		return -1;
	char *name = xstrndup(name_equals_value, (size_t)(eq - name_equals_value));
	str_trim(name);
	long i = config_index(name);
	if (i < 0) {
		log_warn("unknown parameter name \"%s\" in override \"%s\" is "
		    "ignored", name, name_equals_value);
		free(name);
		return 0;
	}
	free(name);

	char *value = xstrdup(eq + 1);
	free(config_values[i].override);
	config_values[i].override = str_trim(value);
	/* NOTE: strings returned by config_str() before this call are freed
	 * here, so overrides belong before the first use of the values. */
	config_recompute();
	return 0;
}

const char *config_dir(void)
{
	return config_directory_loaded != NULL ? config_directory_loaded :
	    POSTERN_CONFIG_DIR;
}

const char *config_str(const char *name)
{
	size_t i = config_index_or_panic(name);

	config_ready();
	return config_values[i].expanded;
}

const char *config_raw(const char *name)
{
	size_t i = config_index_or_panic(name);

	config_ready();
	return config_effective_raw(i);
}

long config_int(const char *name)
{
	const char *value = config_str(name);
	char *end;

	errno = 0;
	long n = strtol(value, &end, 10);
	if (value[0] == '\0' || *end != '\0' || errno == ERANGE || isspace(
	    (unsigned char)value[0]))
		log_fatal("invalid value \"%s\" for parameter %s: expected an "
		    "integer", value, name);
	return n;
}

int config_bool(const char *name)
{
	const char *value = config_str(name);
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (str_casecmp_eq(value, yes[i]))
			return 1;
		if (str_casecmp_eq(value, no[i]))
			return 0;
	}
	log_fatal("invalid value \"%s\" for parameter %s: expected yes or no",
	    value, name);
}

long config_time(const char *name)
{
	const char *value = config_str(name);
	char *end;
	long unit = 1;

	errno = 0;
	long n = strtol(value, &end, 10);
	if (end == value || !isdigit((unsigned char)value[0]) || errno == ERANGE)
		goto bad;
	if (*end != '\0') {
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: goto bad;
		}
		if (end[1] != '\0')
			goto bad;
	}
	if (n > LONG_MAX / unit)
		goto bad;
	return n * unit;

bad:
	log_fatal("invalid value \"%s\" for parameter %s: expected a time such "
	    "as 300s, 5m, 1h, 5d or 1w (a bare number is seconds)", value, name);
}

char **config_list(const char *name, size_t *count_out)
{
	return str_split(config_str(name), ", \t\r\n", count_out);
}

int config_is_set(const char *name)
{
	size_t i = config_index_or_panic(name);

	return config_values[i].file != NULL || config_values[i].override != NULL;
}

char *config_expand(const char *value)
{
	struct sbuf out;

	config_ready();
	sbuf_init(&out, 0);
	config_expand_into(&out, value, 0);
	return sbuf_detach(&out);
}

/* Prints parameter i as what selects; returns 1 when printed. */
static int config_print_one(FILE *out, int what, size_t i)
{
	const char *value;

	if (what == 1 && config_values[i].file == NULL &&
	    config_values[i].override == NULL)
		return 0;
	value = what == 2 ? config_default_raw(i) : config_effective_raw(i);
	fprintf(out, "%s = %s\n", config_params[i].name, value);
	return 1;
}

void config_warn_unknown(void)
{
	for (int k = 0; k < config_unknown_count; k++)
		log_warn("%s", config_unknown[k]);
}

int config_print(FILE *out, int what, char *const *names)
{
	int rc = 0;

	config_ready();
	if (names == NULL) {
		for (size_t k = 0; k < config_count; k++)
			config_print_one(out, what, config_sorted[k]);
		return 0;
	}
	for (char *const *n = names; *n != NULL; n++) {
		long i = config_index(*n);
		if (i < 0) {
			fprintf(stderr, "postern: warning: unknown parameter name "
			    "\"%s\"\n", *n);
			rc = 1;
			continue;
		}
		config_print_one(out, what, (size_t)i);
	}
	return rc;
}
