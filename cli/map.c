/*
 * postern map - builds lookup tables and queries them.
 *
 *   postern map [hash:|btree:]FILE...   builds FILE.db from FILE
 *   postern map -q KEY [type:]FILE      prints the value of KEY
 *
 * With -q the exit status is 0 when the key is found, 1 when it is not,
 * and 2 when the table cannot be opened or read or the usage is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "maps.h"
#include "sbuf.h"

static int map_usage(void)
{
	fprintf(stderr, "usage: postern map [hash:|btree:]FILE...\n"
	    "       postern map -q KEY [type:]FILE\n");
	return 2;
}

/* Looks key up in spec; a bare file name means hash:FILE. */
static int map_query(const char *key, const char *spec)
{
	char *full = strchr(spec, ':') ? xstrdup(spec)
	    : xasprintf("hash:%s", spec);
	char *err = NULL, *value = NULL;
	int status = 2;

	struct map *m = map_open(full, &err);
	if (m == NULL) {
		fprintf(stderr, "postern map: %s\n", err);
		goto out;
	}
	int rc = map_lookup(m, key, &value, &err);
	if (rc < 0) {
		fprintf(stderr, "postern map: %s\n", err);
	} else if (rc == 0) {
		fprintf(stderr, "postern map: \"%s\" not found in %s\n", key, full);
		status = 1;
	} else {
		printf("%s\n", value);
		status = 0;
	}
	map_close(&m);
out:
	free(value);
	free(err);
	free(full);
	return status;
}

int cmd_map(int argc, char **argv)
{
	const char *query = NULL;
	int opt;

	/* 0 makes glibc getopt() start over on this new vector. */
	optind = 0;
	while ((opt = getopt(argc, argv, "q:")) != -1) {
		switch (opt) {
		case 'q':
			query = optarg;
			break;
		default:
			return map_usage();
		}
	}
	if (optind >= argc)
		return map_usage();
	if (query != NULL) {
		if (argc - optind != 1)
			return map_usage();
		return map_query(query, argv[optind]);
	}

	int status = 0;
	for (int i = optind; i < argc; i++) {
		char *err = NULL;

		if (map_build(argv[i], &err) < 0) {
			fprintf(stderr, "postern map: %s\n", err);
			free(err);
			status = 1;
		}
	}
	return status;
}
