/*
 * config - main.cf parameters.
 *
 * Every parameter Postern knows has a compiled-in default in the table of
 * config_params.c. config_load() reads CONFIG_DIR/main.cf on top of the
 * defaults: "name = value" lines, '#' comments, and continuation lines that
 * start with white space. A name that is not in the table is logged as a
 * warning and otherwise ignored. "-o name=value" overrides given to a
 * service win over main.cf.
 *
 * Values are expanded when read: "$name" and "${name}" are replaced by the
 * expanded value of that parameter, "$$" by "$". An unknown name in an
 * expansion expands to "" with a warning; a loop of references is cut
 * after 20 levels with a warning.
 *
 * The getters abort (log_panic) when asked for a name that is not in the
 * table, because that is a programming error, and exit (log_fatal) when a
 * configured value does not parse as the requested type, naming the
 * parameter, the value and the expected form.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdio.h>

struct config_param {
	const char *name;
	const char *default_value; /* may contain $references; NULL means computed */
};

/* Loads main.cf from config_dir (NULL: the compiled-in directory).
 * Returns 0, or -1 with a message in *err_out (caller frees) when the
 * file cannot be read or has a syntax error (with its line number). */
int config_load(const char *config_dir, char **err_out);

/* Parses main.cf text (for tests and `postern conf`); same rules. */
int config_load_text(const char *text, const char *origin, char **err_out);

/* Sets an override as for "-o name=value". Returns -1 when arg has no '='. */
int config_override(const char *name_equals_value);

/* Directory main.cf was loaded from. */
const char *config_dir(void);

/* Expanded value; never NULL. The string stays valid until the next
 * config_load() call. */
const char *config_str(const char *name);

/* Value as given in main.cf or the default, without expansion. */
const char *config_raw(const char *name);

/* Integer value. */
long config_int(const char *name);

/* "yes"/"no" (also true/false, 1/0, on/off). */
int config_bool(const char *name);

/* Time in seconds; the value is a number with an optional unit letter
 * s, m, h, d or w (default unit: s). */
long config_time(const char *name);

/* Expanded value split into items at commas and white space; see str_split(). */
char **config_list(const char *name, size_t *count_out);

/* 1 when main.cf or an override sets the name, 0 when the default applies. */
int config_is_set(const char *name);

/* 1 when the name is a known parameter. */
int config_known(const char *name);

/* Expands $references in an arbitrary string (caller frees). */
char *config_expand(const char *value);

/*
 * Prints "name = value" lines to out, sorted by name: what = 0 for every
 * effective value, 1 for only those set in main.cf, 2 for the compiled-in
 * defaults. When names is not NULL, only those (NULL-terminated) are
 * printed, and an unknown one gives a warning on stderr and a nonzero
 * return.
 */
int config_print(FILE *out, int what, char *const *names);

/* Logs again the unknown-name warnings of the last load: a program calls
 * it once its log target is set, as loading warns before that. */
void config_warn_unknown(void);

/* The table of known parameters, terminated by a {NULL, NULL} entry. */
extern const struct config_param config_params[];

#endif
