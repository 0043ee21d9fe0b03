/*
 * maps_cidr - cidr: tables, text files of "network result" lines read
 * as they are (no build step).
 *
 * A network is "192.0.2.0/24", "2001:db8::/32", "[2001:db8::]/32" or a
 * bare address (/32 or /128). Keys are numeric IP addresses, tried
 * against the lines in file order, and the first network that contains
 * the key gives the result. A key that is not an address is not found.
 * IPv4-mapped keys and networks (::ffff:192.0.2.1) count as IPv4, so a
 * plain IPv6 network never matches an IPv4 key.
 *
 * The file is read again when it changes (by inode, size and mtime,
 * checked at most once a second), except after a chroot.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "maps_impl.h"
#include "netaddr.h"
#include "sbuf.h"
#include "service.h"

struct map_cidr_entry {
	struct cidr_net net;
	char *result;
};

/* The parsed lines of one version of the file. */
struct map_cidr_table {
	struct map_cidr_entry *entries;
	size_t count;
	size_t capacity;
};

struct map_cidr {
	char *path;
	struct map_cidr_table table;
	dev_t dev;           /* identity of the file that was read */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	time_t checked_at;   /* CLOCK_MONOTONIC seconds of the last stat() */
};

static time_t map_cidr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void map_cidr_table_free(struct map_cidr_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->entries[i].result);
	free(t->entries);
	memset(t, 0, sizeof(*t));
}

/*
 * Parses one logical line "network result" into t. Returns 0, or -1 with
 * a message naming the file and line.
 */
static int map_cidr_parse_line(struct map_cidr_table *t, const char *path,
    unsigned long lineno, char *line, char **err_out)
{
	char *result = line;
	struct cidr_net net;
	char *err = NULL;

	while (*result != '\0' && !isspace((unsigned char)*result))
		result++;
	if (*result != '\0')
		*result++ = '\0';
	while (isspace((unsigned char)*result))
		result++;
	if (*result == '\0') {
		*err_out = xasprintf("%s line %lu: expected \"network result\", "
		    "such as \"192.0.2.0/24 REJECT\", got \"%s\" with no result",
		    path, lineno, line);
		return -1;
	}
	if (cidr_net_parse(line, &net, &err) < 0) {
		*err_out = xasprintf("%s line %lu: %s", path, lineno, err);
		free(err);
		return -1;
	}

	if (t->count == t->capacity) {
		t->capacity = t->capacity ? t->capacity * 2 : 16;
		t->entries = xrealloc(t->entries,
		    t->capacity * sizeof(*t->entries));
	}
	t->entries[t->count].net = net;
	t->entries[t->count].result = xstrdup(result);
	t->count++;
	return 0;
}

/* Reads the whole file into *t. Returns 0, or -1 with a message. */
static int map_cidr_read(const char *path, struct map_cidr_table *t,
    char **err_out)
{
	struct map_source *src = map_source_open(path, err_out);
	unsigned long lineno;
	char *line;
	int rc;

	memset(t, 0, sizeof(*t));
	if (src == NULL)
		return -1;
	while ((rc = map_source_next(src, &line, &lineno, err_out)) == 1) {
		rc = map_cidr_parse_line(t, path, lineno, line, err_out);
		free(line);
		if (rc < 0)
			break;
	}
	map_source_close(&src);
	if (rc < 0) {
		map_cidr_table_free(t);
		return -1;
	}
	return 0;
}

/*
 * Reads st->path and, on success, replaces the table and the recorded
 * identity. Returns 0, or -1 with a message, keeping the old table.
 */
static int map_cidr_load(struct map_cidr *st, char **err_out)
{
	struct map_cidr_table fresh;
	struct stat sb;

	/* stat() comes first, so a change between the two calls leaves the
	 * old identity and causes one more read, never a missed one. */
	if (stat(st->path, &sb) < 0) {
		*err_out = xasprintf("cannot open %s: %s", st->path,
		    strerror(errno));
		return -1;
	}
	if (map_cidr_read(st->path, &fresh, err_out) < 0)
		return -1;
	map_cidr_table_free(&st->table);
	st->table = fresh;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->checked_at = map_cidr_now();
	return 0;
}

static int map_cidr_open(struct map *m, const char *name, char **err_out)
{
	struct map_cidr *st = xcalloc(1, sizeof(*st));
	char *err = NULL;

	st->path = xstrdup(name);
	if (map_cidr_load(st, &err) < 0) {
		*err_out = xasprintf("table %s: %s", m->spec, err);
		free(err);
		free(st->path);
		free(st);
		return -1;
	}
	m->state = st;
	return 0;
}

/* Reads the file again when it changed since it was read. A file that
 * cannot be read or parsed now leaves the old table in use. */
static void map_cidr_refresh(struct map *m, struct map_cidr *st)
{
	struct stat sb;
	time_t now = map_cidr_now();
	char *err = NULL;

	if (now == st->checked_at)
		return;
	st->checked_at = now;
	/* After a chroot the path is out of reach, so the table read before
	 * stays in use. New processes (postern reload) read the new file. */
	if (service_chrooted())
		return;
	if (stat(st->path, &sb) < 0) {
		if (log_ratelimit(st->path, 1, 60))
			log_warn("table %s: stat of %s failed: %s; still using the "
			    "table read before", m->spec, st->path, strerror(errno));
		return;
	}
	if (sb.st_dev == st->dev && sb.st_ino == st->ino &&
	    sb.st_size == st->size &&
	    sb.st_mtim.tv_sec == st->mtime.tv_sec &&
	    sb.st_mtim.tv_nsec == st->mtime.tv_nsec)
		return;

	if (map_cidr_load(st, &err) < 0) {
		log_warn("table %s: %s; still using the table read before",
		    m->spec, err);
		free(err);
	} else {
		log_info("table %s: read the changed %s", m->spec, st->path);
	}
}

static int map_cidr_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	struct map_cidr *st = m->state;
	struct cidr_net addr;

	map_cidr_refresh(m, st);
	if (cidr_addr_parse(key, &addr) < 0)
		return 0;
	for (size_t i = 0; i < st->table.count; i++) {
		if (cidr_net_contains(&st->table.entries[i].net, &addr)) {
			*value_out = xstrdup(st->table.entries[i].result);
			return 1;
		}
	}
	return 0;
}

static void map_cidr_close(struct map *m)
{
	struct map_cidr *st = m->state;

	map_cidr_table_free(&st->table);
	free(st->path);
	free(st);
	m->state = NULL;
}

/* Keys are addresses, and results keep their case. */
const struct map_type map_type_cidr = {
	"cidr", 0, map_cidr_open, map_cidr_lookup, map_cidr_close
};
