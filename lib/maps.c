/*
 * maps - opening "type:name" specs, lists of maps, and the source file
 * reader shared by the file-based table types.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maps_impl.h"
#include "sbuf.h"

static const struct map_type *const map_types[] = {
	&map_type_hash,
	&map_type_btree,
	&map_type_pcre,
	&map_type_inline,
	&map_type_static,
	&map_type_unix,
	&map_type_cidr,
};

#define MAP_TYPE_COUNT (sizeof(map_types) / sizeof(map_types[0]))
#define MAP_TYPE_NAMES "hash, btree, pcre, inline, static, unix, cidr"

/* Finds the type named by the len bytes at name, or NULL. */
static const struct map_type *map_find_type(const char *name, size_t len)
{
	for (size_t i = 0; i < MAP_TYPE_COUNT; i++) {
		if (strlen(map_types[i]->name) == len &&
		    memcmp(map_types[i]->name, name, len) == 0)
			return map_types[i];
	}
	return NULL;
}

int map_spec_valid(const char *spec)
{
	const char *colon = strchr(spec, ':');

	if (colon == NULL || colon[1] == '\0')
		return 0;
	return map_find_type(spec, (size_t)(colon - spec)) != NULL;
}

struct map *map_open(const char *spec, char **err_out)
{
	const char *colon = strchr(spec, ':');

	if (colon == NULL) {
		*err_out = xasprintf("table \"%s\" has no type; write it as "
		    "type:name, for example hash:%s", spec, spec);
		return NULL;
	}
	const struct map_type *type = map_find_type(spec, (size_t)(colon - spec));
	if (type == NULL) {
		*err_out = xasprintf("table \"%s\": unknown type \"%.*s\"; "
		    "known types are " MAP_TYPE_NAMES, spec,
		    (int)(colon - spec), spec);
		return NULL;
	}

	struct map *m = xcalloc(1, sizeof(*m));
	m->spec = xstrdup(spec);
	m->type = type;
	if (type->open(m, colon + 1, err_out) < 0) {
		free(m->spec);
		free(m);
		return NULL;
	}
	return m;
}

void map_close(struct map **m)
{
	if (*m == NULL)
		return;
	(*m)->type->close(*m);
	free((*m)->spec);
	free(*m);
	*m = NULL;
}

const char *map_spec(const struct map *m)
{
	return m->spec;
}

int map_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	char *err = NULL;
	char *folded = NULL;
	int rc;

	*value_out = NULL;
	if (m->type->fold_case) {
		folded = xstrdup(key);
		str_lower(folded);
		key = folded;
	}
	rc = m->type->lookup(m, key, value_out, &err);
	free(folded);
	if (rc < 0 && err == NULL)
		err = xasprintf("table %s: lookup failed", m->spec);
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return rc;
}

/*
 * Splitting lists. Items are separated by commas and white space, but a
 * "{...}" group (inline:{ a=b, c=d }, static:{x y}) stays in one item.
 */
char **map_split_list(const char *spec, size_t *count_out, char **err_out)
{
	size_t len = strlen(spec);
	size_t count = 0;
	/* Worst case: every other byte starts an item. */
	size_t slots = len / 2 + 2;
	char **items = xmalloc(slots * sizeof(char *) + len + 1);
	char *text = (char *)(items + slots);
	const char *p = spec;
	char *w = text;

	while (*p != '\0') {
		if (*p == ',' || isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		items[count++] = w;
		int depth = 0;
		while (*p != '\0' &&
		    (depth > 0 || (*p != ',' && !isspace((unsigned char)*p)))) {
			if (*p == '{')
				depth++;
			else if (*p == '}' && --depth < 0)
				break;
			*w++ = *p++;
		}
		*w++ = '\0';
		if (depth != 0) {
			*err_out = xasprintf("table list \"%s\": %s brace in \"%s\"",
			    spec, depth > 0 ? "unclosed" : "unmatched closing",
			    items[count - 1]);
			free(items);
			return NULL;
		}
	}
	items[count] = NULL;
	if (count_out != NULL)
		*count_out = count;
	return items;
}

struct maplist {
	struct map **maps;
	size_t count;
};

struct maplist *maplist_open(const char *spec, char **err_out)
{
	size_t count;
	char **items = map_split_list(spec, &count, err_out);

	if (items == NULL)
		return NULL;

	struct maplist *l = xcalloc(1, sizeof(*l));
	l->maps = xcalloc(count + 1, sizeof(struct map *));
	for (size_t i = 0; i < count; i++) {
		l->maps[i] = map_open(items[i], err_out);
		if (l->maps[i] == NULL) {
			free(items);
			maplist_close(&l);
			return NULL;
		}
		l->count++;
	}
	free(items);
	return l;
}

void maplist_close(struct maplist **l)
{
	if (*l == NULL)
		return;
	for (size_t i = 0; i < (*l)->count; i++)
		map_close(&(*l)->maps[i]);
	free((*l)->maps);
	free(*l);
	*l = NULL;
}

int maplist_lookup(struct maplist *l, const char *key, char **value_out,
    char **err_out)
{
	*value_out = NULL;
	if (err_out != NULL)
		*err_out = NULL;
	for (size_t i = 0; i < l->count; i++) {
		int rc = map_lookup(l->maps[i], key, value_out, err_out);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int maplist_lookup_parent(struct maplist *l, const char *key,
    char **value_out, char **err_out)
{
	*value_out = NULL;
	if (err_out != NULL)
		*err_out = NULL;
	for (size_t i = 0; i < l->count; i++) {
		if (l->maps[i]->type == &map_type_cidr)
			continue;
		int rc = map_lookup(l->maps[i], key, value_out, err_out);
		if (rc != 0)
			return rc;
	}
	return 0;
}

size_t maplist_count(const struct maplist *l)
{
	return l->count;
}

int map_build(const char *spec, char **err_out)
{
	const char *colon = strchr(spec, ':');
	const struct map_type *type = NULL;

	if (colon != NULL)
		type = map_find_type(spec, (size_t)(colon - spec));
	if (type == NULL)
		return map_db_build(spec, 0, err_out);
	if (type == &map_type_hash || type == &map_type_btree) {
		if (colon[1] == '\0') {
			*err_out = xasprintf("table \"%s\" names no file", spec);
			return -1;
		}
		return map_db_build(colon + 1, type == &map_type_btree, err_out);
	}
	*err_out = xasprintf("table \"%s\": only hash: and btree: tables are "
	    "built; %s: tables are read as they are", spec, type->name);
	return -1;
}

char *map_brace_value(const char **p)
{
	const char *start = *p + 1;
	int depth = 0;

	for (const char *q = *p; *q != '\0'; q++) {
		if (*q == '{') {
			depth++;
		} else if (*q == '}' && --depth == 0) {
			*p = q + 1;
			return xstrndup(start, (size_t)(q - start));
		}
	}
	return NULL;
}

/* Source files: logical lines with comments and continuations. */

struct map_source {
	FILE *fp;
	char *path;
	unsigned long lineno;  /* physical lines read so far */
	char *pending;         /* a line read ahead, not yet used */
	unsigned long pending_lineno;
};

struct map_source *map_source_open(const char *path, char **err_out)
{
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		*err_out = xasprintf("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct map_source *src = xcalloc(1, sizeof(*src));
	src->fp = fp;
	src->path = xstrdup(path);
	return src;
}

void map_source_close(struct map_source **src)
{
	if (*src == NULL)
		return;
	fclose((*src)->fp);
	free((*src)->path);
	free((*src)->pending);
	free(*src);
	*src = NULL;
}

/* Reads one physical line without its line ending. Returns 1, 0 at EOF, -1. */
static int map_source_read(struct map_source *src, char **line_out,
    char **err_out)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t n;

	errno = 0;
	n = getline(&line, &size, src->fp);
	if (n < 0) {
		free(line);
		if (ferror(src->fp)) {
			*err_out = xasprintf("%s: read failed after line %lu: %s",
			    src->path, src->lineno, strerror(errno));
			return -1;
		}
		return 0;
	}
	src->lineno++;
	if (strlen(line) != (size_t)n) {
		*err_out = xasprintf("%s line %lu: contains a NUL byte",
		    src->path, src->lineno);
		free(line);
		return -1;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	*line_out = line;
	return 1;
}

static int map_source_skippable(const char *line)
{
	while (isspace((unsigned char)*line))
		line++;
	return *line == '\0' || *line == '#';
}

int map_source_next(struct map_source *src, char **line_out,
    unsigned long *first_line_out, char **err_out)
{
	struct sbuf logical;
	int have = 0;

	sbuf_init(&logical, 0);
	for (;;) {
		char *line;
		unsigned long lineno;

		if (src->pending != NULL) {
			line = src->pending;
			lineno = src->pending_lineno;
			src->pending = NULL;
		} else {
			int rc = map_source_read(src, &line, err_out);
			if (rc < 0) {
				sbuf_free(&logical);
				return -1;
			}
			if (rc == 0)
				break;
			lineno = src->lineno;
		}

		if (map_source_skippable(line)) {
			free(line);
			continue;
		}
		if (isspace((unsigned char)line[0])) {
			if (!have) {
				*err_out = xasprintf("%s line %lu: line starts with "
				    "white space but there is no line before it to "
				    "continue", src->path, lineno);
				free(line);
				sbuf_free(&logical);
				return -1;
			}
			sbuf_putc(&logical, ' ');
			sbuf_puts(&logical, str_trim(line));
			free(line);
			continue;
		}
		if (have) {
			src->pending = line;
			src->pending_lineno = lineno;
			break;
		}
		have = 1;
		*first_line_out = lineno;
		sbuf_puts(&logical, str_trim(line));
		free(line);
	}
	if (!have) {
		sbuf_free(&logical);
		return 0;
	}
	*line_out = sbuf_detach(&logical);
	return 1;
}
