/*
 * maps_impl - the interface between maps.c and the files that implement
 * each table type (maps_db.c, maps_pcre.c, maps_simple.c, maps_cidr.c).
 * Not for use outside lib/maps*.c.
 */
#ifndef POSTERN_MAPS_IMPL_H
#define POSTERN_MAPS_IMPL_H

#include "maps.h"

struct map_type;

struct map {
	char *spec;                  /* "type:name" as given to map_open */
	const struct map_type *type;
	void *state;                 /* owned by the type's open/close */
};

struct map_type {
	const char *name;            /* "hash", "pcre", ... */
	int fold_case;               /* 1: maps.c lowercases keys before lookup */

	/*
	 * Opens the table; name is the text after "type:". Sets m->state.
	 * Returns 0, or -1 with a message (caller frees) that names m->spec
	 * and the fix.
	 */
	int (*open)(struct map *m, const char *name, char **err_out);

	/* Same results as map_lookup(); err_out is never NULL here. */
	int (*lookup)(struct map *m, const char *key, char **value_out,
	    char **err_out);

	/* Releases m->state; called only after a successful open. */
	void (*close)(struct map *m);
};

extern const struct map_type map_type_hash;
extern const struct map_type map_type_btree;
extern const struct map_type map_type_pcre;
extern const struct map_type map_type_inline;
extern const struct map_type map_type_static;
extern const struct map_type map_type_unix;
extern const struct map_type map_type_cidr;

/* Builds path.db from the text file path; is_btree selects the format. */
int map_db_build(const char *path, int is_btree, char **err_out);

/*
 * Reads the next logical line of a source file into *line_out (caller
 * frees): skips blank lines and '#' comments, joins continuation lines
 * (those that start with white space) with a single space, and trims the
 * ends. *first_line_out receives the number of the logical line's first
 * physical line. Returns 1 with a line, 0 at the end of the file, -1 with
 * a message on a read error, a NUL byte, or a continuation line with
 * nothing to continue.
 */
struct map_source;
struct map_source *map_source_open(const char *path, char **err_out);
int map_source_next(struct map_source *src, char **line_out,
    unsigned long *first_line_out, char **err_out);
void map_source_close(struct map_source **src);

/*
 * Parses a braced value such as "{a b, c}" at *p (which points at '{'):
 * returns the text between the braces (caller frees) and advances *p past
 * the closing brace, or returns NULL when the brace is not closed. Braces
 * may nest.
 */
char *map_brace_value(const char **p);

#endif
