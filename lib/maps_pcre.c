/*
 * maps_pcre - pcre: tables, a file of "/regex/flags result" lines tried
 * in order; the first pattern that matches the key gives the result,
 * with $1..$9 and ${N} replaced by the captured groups and $$ by '$'.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "maps_impl.h"
#include "sbuf.h"

struct pcre_rule {
	pcre2_code *code;
	pcre2_match_data *match;
	char *result;
	unsigned long lineno;
};

struct map_pcre {
	struct pcre_rule *rules;
	size_t count;
	char *path;
};

/*
 * Reads a "$N" or "${N}" reference at s (which points at '$'). Returns
 * the group number and sets *len_out to the bytes used, 0 for "$$", or -1
 * when the text after '$' is neither.
 */
static int pcre_parse_ref(const char *s, size_t *len_out)
{
	if (s[1] == '$') {
		*len_out = 2;
		return 0;
	}
	if (isdigit((unsigned char)s[1]) && s[1] != '0') {
		*len_out = 2;
		return s[1] - '0';
	}
	if (s[1] == '{') {
		char *end;
		long n = strtol(s + 2, &end, 10);
		if (end != s + 2 && *end == '}' && n >= 1 && n <= 99 &&
		    isdigit((unsigned char)s[2])) {
			*len_out = (size_t)(end + 1 - s);
			return (int)n;
		}
	}
	return -1;
}

/* Checks that every reference in result names a group the pattern has. */
static int pcre_check_result(const char *path, unsigned long lineno,
    const char *result, uint32_t groups, char **err_out)
{
	for (const char *p = result; *p != '\0'; p++) {
		size_t len;
		int n;

		if (*p != '$')
			continue;
		n = pcre_parse_ref(p, &len);
		if (n < 0) {
			*err_out = xasprintf("%s line %lu: invalid '$' in result "
			    "\"%s\"; use $1..$9, ${N}, or $$ for a '$'", path,
			    lineno, result);
			return -1;
		}
		if ((uint32_t)n > groups) {
			*err_out = xasprintf("%s line %lu: result \"%s\" uses group "
			    "%d, but the pattern has %u", path, lineno, result, n,
			    groups);
			return -1;
		}
		p += len - 1;
	}
	return 0;
}

/*
 * Splits "/regex/flags result" in place into the pattern, its compile
 * options and the result. Returns 0, or -1 with a message.
 */
static int pcre_split_line(char *line, const char *path,
    unsigned long lineno, char **pattern_out, uint32_t *options_out,
    char **result_out, char **err_out)
{
	uint32_t options = PCRE2_CASELESS;
	char *p = line + 1;

	if (line[0] != '/') {
		*err_out = xasprintf("%s line %lu: expected \"/regex/flags "
		    "result\", got \"%s\"", path, lineno, line);
		return -1;
	}
	/* Find the closing '/', skipping escaped characters such as "\/". */
	while (*p != '\0' && *p != '/') {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	if (*p != '/') {
		*err_out = xasprintf("%s line %lu: the regex has no closing '/'",
		    path, lineno);
		return -1;
	}
	*p++ = '\0';
	for (; *p != '\0' && !isspace((unsigned char)*p); p++) {
		if (*p == 'i') {
			options ^= PCRE2_CASELESS;
		} else if (*p == 'x') {
			options |= PCRE2_EXTENDED;
		} else {
			*err_out = xasprintf("%s line %lu: unknown flag '%c' after "
			    "the regex; known flags are i and x", path, lineno, *p);
			return -1;
		}
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		*err_out = xasprintf("%s line %lu: the regex has no result after "
		    "it", path, lineno);
		return -1;
	}
	*pattern_out = line + 1;
	*options_out = options;
	*result_out = p;
	return 0;
}

/* Compiles one logical line into rule. */
static int pcre_compile_line(char *line, const char *path,
    unsigned long lineno, struct pcre_rule *rule, char **err_out)
{
	char *pattern, *result;
	uint32_t options, groups;
	int errcode;
	PCRE2_SIZE erroffset;

	if (pcre_split_line(line, path, lineno, &pattern, &options, &result,
	    err_out) < 0)
		return -1;
	rule->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    options, &errcode, &erroffset, NULL);
	if (rule->code == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		*err_out = xasprintf("%s line %lu: invalid regex /%s/: %s at "
		    "offset %zu", path, lineno, pattern, (const char *)msg,
		    (size_t)erroffset);
		return -1;
	}
	pcre2_pattern_info(rule->code, PCRE2_INFO_CAPTURECOUNT, &groups);
	if (pcre_check_result(path, lineno, result, groups, err_out) < 0) {
		pcre2_code_free(rule->code);
		return -1;
	}
	rule->match = pcre2_match_data_create_from_pattern(rule->code, NULL);
	rule->result = xstrdup(result);
	rule->lineno = lineno;
	return 0;
}

static void pcre_free_state(struct map_pcre *st)
{
	for (size_t i = 0; i < st->count; i++) {
		pcre2_match_data_free(st->rules[i].match);
		pcre2_code_free(st->rules[i].code);
		free(st->rules[i].result);
	}
	free(st->rules);
	free(st->path);
	free(st);
}

static int pcre_open(struct map *m, const char *name, char **err_out)
{
	struct map_source *src = map_source_open(name, err_out);
	struct map_pcre *st;
	size_t alloc = 0;
	char *line, *err = NULL;
	unsigned long lineno;
	int rc;

	if (src == NULL) {
		err = *err_out;
		*err_out = xasprintf("table %s: %s", m->spec, err);
		free(err);
		return -1;
	}
	st = xcalloc(1, sizeof(*st));
	st->path = xstrdup(name);
	while ((rc = map_source_next(src, &line, &lineno, &err)) == 1) {
		if (st->count == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			st->rules = xrealloc(st->rules, alloc * sizeof(*st->rules));
		}
		rc = pcre_compile_line(line, name, lineno, &st->rules[st->count],
		    &err);
		free(line);
		if (rc < 0)
			break;
		st->count++;
	}
	map_source_close(&src);
	if (rc < 0) {
		*err_out = xasprintf("table %s: %s", m->spec, err);
		free(err);
		pcre_free_state(st);
		return -1;
	}
	m->state = st;
	return 0;
}

/* Writes result with its references replaced by the groups matched. */
static char *pcre_expand(const struct pcre_rule *rule, const char *subject)
{
	PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(rule->match);
	uint32_t pairs = pcre2_get_ovector_count(rule->match);
	struct sbuf out;

	sbuf_init(&out, 0);
	for (const char *p = rule->result; *p != '\0'; p++) {
		size_t len;
		int n;

		if (*p != '$') {
			sbuf_putc(&out, *p);
			continue;
		}
		/* References were checked when the table was opened. */
		n = pcre_parse_ref(p, &len);
		p += len - 1;
		if (n == 0) {
			sbuf_putc(&out, '$');
		} else if ((uint32_t)n < pairs &&
		    ovector[2 * n] != PCRE2_UNSET) {
			sbuf_append(&out, subject + ovector[2 * n],
			    ovector[2 * n + 1] - ovector[2 * n]);
		}
	}
	if (out.data == NULL)
		return xstrdup("");
	return sbuf_detach(&out);
}

static int pcre_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	struct map_pcre *st = m->state;

	for (size_t i = 0; i < st->count; i++) {
		struct pcre_rule *rule = &st->rules[i];
		int rc = pcre2_match(rule->code, (PCRE2_SPTR)key,
		    PCRE2_ZERO_TERMINATED, 0, 0, rule->match, NULL);

		if (rc == PCRE2_ERROR_NOMATCH)
			continue;
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof(msg));
			*err_out = xasprintf("table %s: matching the regex of %s "
			    "line %lu failed: %s", m->spec, st->path, rule->lineno,
			    (const char *)msg);
			return -1;
		}
		*value_out = pcre_expand(rule, key);
		return 1;
	}
	return 0;
}

static void pcre_close(struct map *m)
{
	pcre_free_state(m->state);
	m->state = NULL;
}

const struct map_type map_type_pcre = {
	"pcre", 0, pcre_open, pcre_lookup, pcre_close
};
