/*
 * postern conf - prints main.cf parameters: every effective value, only
 * those set in main.cf (-n), or the compiled-in defaults (-d), for all
 * parameters or only the names given. Values are printed as written,
 * with $name references unexpanded, unless -x is given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"

static void conf_usage(void)
{
	fprintf(stderr, "usage: postern conf [-n | -d] [-x] [NAME...]\n"
	    "  -n  only the parameters set in main.cf\n"
	    "  -d  the compiled-in defaults\n"
	    "  -x  expand $name references in the values (not with -d)\n");
}

static int conf_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the names given, or every parameter, with expanded values. */
static int conf_print_expanded(int what, char **names, int count)
{
	const char **list;
	size_t n = 0;
	int rc = 0;

	if (count > 0) {
		list = calloc((size_t)count, sizeof(*list));
		for (int i = 0; list != NULL && i < count; i++)
			list[n++] = names[i];
	} else {
		while (config_params[n].name != NULL)
			n++;
		list = calloc(n ? n : 1, sizeof(*list));
		for (size_t i = 0; list != NULL && i < n; i++)
			list[i] = config_params[i].name;
		if (list != NULL)
			qsort(list, n, sizeof(*list), conf_name_cmp);
	}
	if (list == NULL) {
		fprintf(stderr, "postern: out of memory\n");
		return 1;
	}

	for (size_t i = 0; i < n; i++) {
		if (!config_known(list[i])) {
			fprintf(stderr, "postern: warning: unknown parameter name "
			    "\"%s\"\n", list[i]);
			rc = 1;
			continue;
		}
		if (what == 1 && !config_is_set(list[i]))
			continue;
		printf("%s = %s\n", list[i], config_str(list[i]));
	}
	free(list);
	return rc;
}

int cmd_conf(int argc, char **argv)
{
	int what = 0, expand = 0, opt;

	while ((opt = getopt(argc, argv, "ndx")) != -1) {
		switch (opt) {
		case 'n':
			what = 1;
			break;
		case 'd':
			what = 2;
			break;
		case 'x':
			expand = 1;
			break;
		default:
			conf_usage();
			return 2;
		}
	}
	char **names = argv + optind;
	int count = argc - optind;

	if (expand && what == 2) {
		fprintf(stderr, "postern: conf: -x cannot be combined with -d\n");
		conf_usage();
		return 2;
	}

	if (expand)
		return conf_print_expanded(what, names, count);
	if (count == 0)
		return config_print(stdout, what, NULL);
	/* config_print takes a NULL-terminated list; argv is one. */
	return config_print(stdout, what, names);
}
