/*
 * maps_db - hash: and btree: tables on Berkeley DB files, and building
 * them from text sources.
 *
 * Keys are stored lowercased without a trailing NUL. Files built by other
 * tools store "key\0" and "value\0", as the newaliases of Debian's postfix
 * package does, so a lookup that misses also tries the key with its NUL,
 * and a trailing NUL of a value is dropped.
 */
#include <ctype.h>
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maps_impl.h"
#include "sbuf.h"
#include "service.h"

struct map_db {
	DB *db;
	DBTYPE dbtype;
	char *db_path;       /* the .db file */
	char *source_path;   /* the text file it is built from */
	dev_t dev;           /* identity of the open file, to notice a rebuild */
	ino_t ino;
	struct timespec mtime;
	time_t checked_at;   /* CLOCK_MONOTONIC seconds of the last stat() */
};

static time_t map_db_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Berkeley DB writes its own diagnostics to stderr unless given a
 * callback. The caller reports the error code, so they go to debug. */
static void map_db_errcall(const DB_ENV *env, const char *prefix,
    const char *message)
{
	log_debug("Berkeley DB: %s", message);
}

/* Opens path read-only, returns the handle or NULL with *dberr set. */
static DB *map_db_open_file(const char *path, DBTYPE dbtype, int *dberr)
{
	DB *db;

	*dberr = db_create(&db, NULL, 0);
	if (*dberr != 0)
		return NULL;
	db->set_errcall(db, map_db_errcall);
	*dberr = db->open(db, NULL, path, NULL, dbtype, DB_RDONLY, 0);
	if (*dberr != 0) {
		db->close(db, 0);
		return NULL;
	}
	return db;
}

static char *map_db_open_error(const struct map *m, const struct map_db *st,
    int dberr)
{
	if (dberr == ENOENT)
		return xasprintf("table %s: %s does not exist; run \"postern map "
		    "%s\" to build it from %s", m->spec, st->db_path, m->spec,
		    st->source_path);
	if (dberr == EINVAL)
		return xasprintf("table %s: %s is not a %s database; rebuild it "
		    "with \"postern map %s\"", m->spec, st->db_path,
		    m->type->name, m->spec);
	return xasprintf("table %s: cannot open %s: %s", m->spec, st->db_path,
	    db_strerror(dberr));
}

/* Opens st->db_path and records its identity. Returns 0 or the DB error. */
static int map_db_attach(struct map_db *st)
{
	struct stat sb;
	int dberr;

	/* stat() comes first, so a rebuild between the two calls leaves the
	 * old identity and causes one more reopen, never a missed one. */
	if (stat(st->db_path, &sb) < 0)
		return errno;
	DB *db = map_db_open_file(st->db_path, st->dbtype, &dberr);
	if (db == NULL)
		return dberr;
	if (st->db != NULL)
		st->db->close(st->db, 0);
	st->db = db;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->mtime = sb.st_mtim;
	st->checked_at = map_db_now();
	return 0;
}

static int map_db_open(struct map *m, const char *name, DBTYPE dbtype,
    char **err_out)
{
	struct map_db *st = xcalloc(1, sizeof(*st));
	int dberr;

	st->dbtype = dbtype;
	st->source_path = xstrdup(name);
	st->db_path = xasprintf("%s.db", name);
	dberr = map_db_attach(st);
	if (dberr != 0) {
		*err_out = map_db_open_error(m, st, dberr);
		free(st->db_path);
		free(st->source_path);
		free(st);
		return -1;
	}
	m->state = st;
	return 0;
}

static int map_db_open_hash(struct map *m, const char *name, char **err_out)
{
	return map_db_open(m, name, DB_HASH, err_out);
}

static int map_db_open_btree(struct map *m, const char *name, char **err_out)
{
	return map_db_open(m, name, DB_BTREE, err_out);
}

/* Reopens the file when it was replaced since it was opened. A failed
 * reopen keeps the old handle, which still reads the old file. */
static void map_db_refresh(struct map *m, struct map_db *st)
{
	struct stat sb;
	time_t now = map_db_now();

	if (now == st->checked_at)
		return;
	st->checked_at = now;
	/* After a chroot the path is out of reach, so the file opened before
	 * stays in use. New processes (postern reload) open a rebuilt one. */
	if (service_chrooted())
		return;
	if (stat(st->db_path, &sb) < 0) {
		if (log_ratelimit(st->db_path, 1, 60))
			log_warn("table %s: stat of %s failed: %s; still using the "
			    "file opened before", m->spec, st->db_path,
			    strerror(errno));
		return;
	}
	if (sb.st_dev == st->dev && sb.st_ino == st->ino &&
	    sb.st_mtim.tv_sec == st->mtime.tv_sec &&
	    sb.st_mtim.tv_nsec == st->mtime.tv_nsec)
		return;

	int dberr = map_db_attach(st);
	if (dberr != 0) {
		char *err = map_db_open_error(m, st, dberr);
		log_warn("%s; still using the file opened before", err);
		free(err);
	} else {
		log_info("table %s: reopened the rebuilt %s", m->spec, st->db_path);
	}
}

/* One get(); returns 1 with the value, 0 not found, -1 with a message. */
static int map_db_get(struct map *m, struct map_db *st, const char *key,
    size_t key_len, char **value_out, char **err_out)
{
	DBT k, d;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)key;
	k.size = (u_int32_t)key_len;
	int dberr = st->db->get(st->db, NULL, &k, &d, 0);
	if (dberr == DB_NOTFOUND)
		return 0;
	if (dberr != 0) {
		*err_out = xasprintf("table %s: reading %s failed: %s", m->spec,
		    st->db_path, db_strerror(dberr));
		return -1;
	}

	size_t len = d.size;
	if (len > 0 && ((const char *)d.data)[len - 1] == '\0')
		len--;
	*value_out = xstrndup(d.data, len);
	return 1;
}

static int map_db_lookup(struct map *m, const char *key, char **value_out,
    char **err_out)
{
	struct map_db *st = m->state;
	size_t len = strlen(key);

	map_db_refresh(m, st);
	int rc = map_db_get(m, st, key, len, value_out, err_out);
	if (rc != 0)
		return rc;
	/* Key with its NUL, as other tools store it. */
	return map_db_get(m, st, key, len + 1, value_out, err_out);
}

static void map_db_close(struct map *m)
{
	struct map_db *st = m->state;

	st->db->close(st->db, 0);
	free(st->db_path);
	free(st->source_path);
	free(st);
	m->state = NULL;
}

const struct map_type map_type_hash = {
	"hash", 1, map_db_open_hash, map_db_lookup, map_db_close
};

const struct map_type map_type_btree = {
	"btree", 1, map_db_open_btree, map_db_lookup, map_db_close
};

/* Building. */

/*
 * Splits a logical source line into key and value in place: the key is
 * the first word (a trailing ':' as in aliases(5) is dropped), the value
 * the rest after the white space. Returns 0, or -1 when either is empty.
 */
static int map_db_split_line(char *line, char **key_out, char **value_out)
{
	char *p = line;

	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;

	size_t key_len = strlen(line);
	if (key_len > 0 && line[key_len - 1] == ':')
		line[--key_len] = '\0';
	if (key_len == 0 || *p == '\0')
		return -1;
	*key_out = line;
	*value_out = p;
	return 0;
}

/* Stores key/value, warning when the key was already there. */
static int map_db_put(DB *db, const char *source_path, unsigned long lineno,
    const char *key, const char *value, char **err_out)
{
	DBT k, d;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	d.data = (void *)value;
	d.size = (u_int32_t)strlen(value);

	int dberr = db->put(db, NULL, &k, &d, DB_NOOVERWRITE);
	if (dberr == DB_KEYEXIST) {
		log_warn("%s line %lu: duplicate key \"%s\"; this line replaces "
		    "the earlier value", source_path, lineno, key);
		dberr = db->put(db, NULL, &k, &d, 0);
	}
	if (dberr != 0) {
		*err_out = xasprintf("%s line %lu: storing key \"%s\" failed: %s",
		    source_path, lineno, key, db_strerror(dberr));
		return -1;
	}
	return 0;
}

/* Reads every line of the source into db. */
static int map_db_fill(DB *db, const char *source_path, char **err_out)
{
	struct map_source *src = map_source_open(source_path, err_out);
	char *line;
	unsigned long lineno;
	int rc;

	if (src == NULL)
		return -1;
	while ((rc = map_source_next(src, &line, &lineno, err_out)) == 1) {
		char *key, *value;

		if (map_db_split_line(line, &key, &value) < 0) {
			*err_out = xasprintf("%s line %lu: expected \"key value\" "
			    "or \"key: value\", got \"%s\"", source_path, lineno,
			    line);
			free(line);
			rc = -1;
			break;
		}
		str_lower(key);
		rc = map_db_put(db, source_path, lineno, key, value, err_out);
		free(line);
		if (rc < 0)
			break;
	}
	map_source_close(&src);
	return rc;
}

/* Gives the new file the source's permissions (and owner, as root), so a
 * table that is secret in its text form stays secret. */
static void map_db_copy_mode(int fd, const char *source_path)
{
	struct stat sb;

	if (stat(source_path, &sb) < 0)
		return;
	if (fchmod(fd, sb.st_mode & 0777) < 0)
		log_warn("chmod of the new table for %s failed: %s", source_path,
		    strerror(errno));
	if (geteuid() == 0 && fchown(fd, sb.st_uid, sb.st_gid) < 0)
		log_warn("chown of the new table for %s failed: %s", source_path,
		    strerror(errno));
}

/* Makes the rename of the new file durable. */
static void map_db_sync_dir(const char *db_path)
{
	char *copy = xstrdup(db_path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Creates tmp_path as a new database and fills it from the source. */
static int map_db_write(const char *tmp_path, DBTYPE dbtype,
    const char *source_path, char **err_out)
{
	DB *db;
	int dberr = db_create(&db, NULL, 0);

	if (dberr != 0) {
		*err_out = xasprintf("creating a database handle failed: %s",
		    db_strerror(dberr));
		return -1;
	}
	db->set_errcall(db, map_db_errcall);
	/* The file exists empty from mkstemp(); DB_TRUNCATE lets Berkeley DB
	 * format it. */
	dberr = db->open(db, NULL, tmp_path, NULL, dbtype,
	    DB_CREATE | DB_TRUNCATE, 0600);
	if (dberr != 0) {
		*err_out = xasprintf("cannot create %s: %s", tmp_path,
		    db_strerror(dberr));
		db->close(db, 0);
		return -1;
	}
	int rc = map_db_fill(db, source_path, err_out);
	dberr = db->close(db, 0);
	if (rc == 0 && dberr != 0) {
		*err_out = xasprintf("writing %s failed: %s", tmp_path,
		    db_strerror(dberr));
		rc = -1;
	}
	return rc;
}

int map_db_build(const char *path, int is_btree, char **err_out)
{
	char *db_path = xasprintf("%s.db", path);
	char *tmp_path = xasprintf("%s.db.tmpXXXXXX", path);
	int rc = -1;
	int fd = mkstemp(tmp_path);

	if (fd < 0) {
		*err_out = xasprintf("cannot create a temporary file next to %s: "
		    "%s", db_path, strerror(errno));
		goto out;
	}
	if (map_db_write(tmp_path, is_btree ? DB_BTREE : DB_HASH, path,
	    err_out) < 0)
		goto out_unlink;

	map_db_copy_mode(fd, path);
	if (fsync(fd) < 0) {
		*err_out = xasprintf("fsync of %s failed: %s", tmp_path,
		    strerror(errno));
		goto out_unlink;
	}
	if (rename(tmp_path, db_path) < 0) {
		*err_out = xasprintf("renaming %s to %s failed: %s", tmp_path,
		    db_path, strerror(errno));
		goto out_unlink;
	}
	map_db_sync_dir(db_path);
	rc = 0;
	goto out_close;

out_unlink:
	unlink(tmp_path);
out_close:
	close(fd);
out:
	free(tmp_path);
	free(db_path);
	return rc;
}
