/*
 * Unit tests of lib/maps: real Berkeley DB files and real PCRE2 patterns
 * in a temporary directory.
 */
#include <db.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "testlib.h"

static char test_dir[] = "/tmp/postern-test-maps-XXXXXX";

/* Checks that text is not NULL and contains part. */
#define CHECK_CONTAINS(text, part) do { \
	const char *text_ = (text); \
	if (text_ == NULL || strstr(text_, (part)) == NULL) { \
		printf("  %s:%d: %s is \"%s\", want it to contain \"%s\"\n", \
		    __FILE__, __LINE__, #text, text_ ? text_ : "(null)", (part)); \
		testlib_case_failed = 1; \
	} \
} while (0)

/* Writes text to DIR/name and returns the path (caller frees). */
static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", test_dir, name);
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Looks key up in m; returns the value (caller frees) or NULL, and the
 * result code in *rc_out. */
static char *lookup(struct map *m, const char *key, int *rc_out)
{
	char *value = NULL, *err = NULL;

	*rc_out = map_lookup(m, key, &value, &err);
	if (err != NULL)
		printf("  lookup of \"%s\" failed: %s\n", key, err);
	free(err);
	return value;
}

/* Checks that key gives want (NULL: not found) in m. */
#define CHECK_LOOKUP(m, key, want) do { \
	int rc_; \
	char *value_ = lookup((m), (key), &rc_); \
	CHECK_INT(rc_, (want) != NULL ? 1 : 0); \
	CHECK_STR(value_, (want)); \
	free(value_); \
} while (0)

/* Counts the entries of the test directory other than . and .. */
static int dir_entries(void)
{
	DIR *d = opendir(test_dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void clear_dir(void)
{
	DIR *d = opendir(test_dir);
	struct dirent *e;

	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *path = xasprintf("%s/%s", test_dir, e->d_name);
		unlink(path);
		free(path);
	}
	closedir(d);
}

/* Opens spec, failing the case with the message when it does not open. */
static struct map *open_ok(const char *spec)
{
	char *err = NULL;
	struct map *m = map_open(spec, &err);

	if (m == NULL) {
		printf("  map_open(%s): %s\n", spec, err);
		testlib_case_failed = 1;
	}
	free(err);
	return m;
}

/* Returns the message of a failed map_open (caller frees), or NULL. */
static char *open_error(const char *spec)
{
	char *err = NULL;
	struct map *m = map_open(spec, &err);

	if (m != NULL) {
		map_close(&m);
		return NULL;
	}
	return err;
}

static const char aliases_text[] =
	"# aliases for the test\n"
	"alice   alice@example.test\n"
	"Bob: bob@example.test\n"
	"\n"
	"carol   first,\n"
	"  second\n"
	"   # a comment between continuation lines\n"
	"\tthird\n";

static void check_aliases_table(const char *type)
{
	char *path = write_file("aliases", aliases_text);
	char *spec = xasprintf("%s:%s", type, path);
	char *err = NULL;

	CHECK_INT(map_build(spec, &err), 0);
	CHECK_STR(err, NULL);
	struct map *m = open_ok(spec);
	if (m != NULL) {
		CHECK_LOOKUP(m, "alice", "alice@example.test");
		CHECK_LOOKUP(m, "ALICE", "alice@example.test");
		CHECK_LOOKUP(m, "bob", "bob@example.test");
		CHECK_LOOKUP(m, "carol", "first, second third");
		CHECK_LOOKUP(m, "dave", NULL);
		CHECK_LOOKUP(m, "", NULL);
		CHECK_STR(map_spec(m), spec);
		map_close(&m);
	}
	CHECK(m == NULL);
	free(err);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_hash_build_lookup)
{
	check_aliases_table("hash");
}

TEST(test_maps_btree_build_lookup)
{
	check_aliases_table("btree");
}

TEST(test_maps_bare_path_builds_hash)
{
	char *path = write_file("plain", "key value\n");
	char *spec = xasprintf("hash:%s", path);
	char *err = NULL;

	CHECK_INT(map_build(path, &err), 0);
	struct map *m = open_ok(spec);
	if (m != NULL)
		CHECK_LOOKUP(m, "key", "value");
	map_close(&m);

	/* The same file opened as btree is the wrong format. */
	char *btree_spec = xasprintf("btree:%s", path);
	err = open_error(btree_spec);
	CHECK_CONTAINS(err, "not a btree database");
	CHECK_CONTAINS(err, "postern map btree:");
	free(err);
	free(btree_spec);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_hash_missing_db)
{
	char *path = write_file("never-built", "key value\n");
	char *spec = xasprintf("hash:%s", path);
	char *err = open_error(spec);

	CHECK(err != NULL);
	if (err != NULL) {
		CHECK(strstr(err, spec) != NULL);
		CHECK(strstr(err, "does not exist") != NULL);
		CHECK(strstr(err, "postern map") != NULL);
	}
	free(err);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_hash_rebuilt_picked_up)
{
	char *path = write_file("transport", "example.test smtp:[192.0.2.1]\n");
	char *spec = xasprintf("hash:%s", path);
	char *err = NULL;

	CHECK_INT(map_build(spec, &err), 0);
	struct map *m = open_ok(spec);
	if (m == NULL)
		goto out;
	CHECK_LOOKUP(m, "example.test", "smtp:[192.0.2.1]");

	free(write_file("transport", "example.test smtp:[192.0.2.2]\n"
	    "new.test local:\n"));
	CHECK_INT(map_build(spec, &err), 0);
	/* The file is checked at most once a second. */
	struct timespec pause = {1, 100 * 1000 * 1000};
	nanosleep(&pause, NULL);
	CHECK_LOOKUP(m, "example.test", "smtp:[192.0.2.2]");
	CHECK_LOOKUP(m, "new.test", "local:");
	map_close(&m);
out:
	free(err);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_build_duplicate_last_wins)
{
	char *path = write_file("dup", "a 1\nb 2\nA 3\n");
	char *spec = xasprintf("hash:%s", path);
	char *err = NULL;

	CHECK_INT(map_build(spec, &err), 0);
	struct map *m = open_ok(spec);
	if (m != NULL) {
		CHECK_LOOKUP(m, "a", "3");
		CHECK_LOOKUP(m, "b", "2");
	}
	map_close(&m);
	free(err);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_build_malformed)
{
	static const struct {
		const char *text;
		const char *want; /* part of the message */
	} cases[] = {
		{"good value\nlonely\n", "line 2: expected \"key value\""},
		{"key:\n", "line 1: expected"},
		{": value\n", "line 1: expected"},
		{"  indented value\n", "line 1: line starts with white space"},
		{"a 1\nb 2\nc\n", "line 3"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_file("bad", cases[i].text);
		char *err = NULL;

		if (map_build(path, &err) != -1 || err == NULL ||
		    strstr(err, cases[i].want) == NULL ||
		    strstr(err, path) == NULL) {
			printf("  case %zu: got \"%s\", want \"%s\"\n", i,
			    err ? err : "(success)", cases[i].want);
			testlib_case_failed = 1;
		}
		/* Neither the .db nor a temporary file is left behind. */
		CHECK_INT(dir_entries(), 1);
		free(err);
		free(path);
		clear_dir();
	}

	char *err = NULL;
	char *missing = xasprintf("%s/missing", test_dir);
	CHECK_INT(map_build(missing, &err), -1);
	CHECK_CONTAINS(err, "cannot open");
	CHECK_INT(dir_entries(), 0);
	free(err);
	free(missing);

	err = NULL;
	CHECK_INT(map_build("pcre:/etc/hostname", &err), -1);
	CHECK_CONTAINS(err, "only hash: and btree:");
	free(err);
}

/* A file built by another tool stores keys and values with their NUL. */
TEST(test_maps_hash_nul_terminated_keys)
{
	char *path = xasprintf("%s/foreign", test_dir);
	char *db_path = xasprintf("%s.db", path);
	char *spec = xasprintf("hash:%s", path);
	DB *db;
	DBT k, d;

	CHECK_INT(db_create(&db, NULL, 0), 0);
	CHECK_INT(db->open(db, NULL, db_path, NULL, DB_HASH, DB_CREATE, 0644), 0);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = "postmaster";
	k.size = sizeof("postmaster");
	d.data = "root";
	d.size = sizeof("root");
	CHECK_INT(db->put(db, NULL, &k, &d, 0), 0);
	db->close(db, 0);

	struct map *m = open_ok(spec);
	if (m != NULL) {
		CHECK_LOOKUP(m, "postmaster", "root");
		CHECK_LOOKUP(m, "PostMaster", "root");
		CHECK_LOOKUP(m, "postmaste", NULL);
	}
	map_close(&m);
	free(spec);
	free(db_path);
	free(path);
	clear_dir();
}

TEST(test_maps_pcre_match)
{
	char *path = write_file("rules.pcre",
	    "# routes\n"
	    "/^(.*)@example\\.test$/    local:$1\n"
	    "/^Exact$/i                 case-sensitive\n"
	    "/^x(a)(b)?$/               ${1}-$2-$$\n"
	    "/^ q \\d+ $/x               extended\n"
	    "/^slash\\/ok$/             slash\n"
	    "/^multi/                   first\n"
	    "   continued\n");
	char *spec = xasprintf("pcre:%s", path);
	struct map *m = open_ok(spec);

	if (m != NULL) {
		CHECK_LOOKUP(m, "bob@EXAMPLE.test", "local:bob");
		CHECK_LOOKUP(m, "Exact", "case-sensitive");
		CHECK_LOOKUP(m, "exact", NULL);
		CHECK_LOOKUP(m, "xa", "a--$");
		CHECK_LOOKUP(m, "xab", "a-b-$");
		CHECK_LOOKUP(m, "q42", "extended");
		CHECK_LOOKUP(m, "slash/ok", "slash");
		CHECK_LOOKUP(m, "multiple", "first continued");
		CHECK_LOOKUP(m, "nothing", NULL);
	}
	map_close(&m);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_pcre_bad_regex)
{
	char *path = write_file("bad.pcre", "/ok/ fine\n\n/(unclosed/ x\n");
	char *spec = xasprintf("pcre:%s", path);
	char *err = open_error(spec);

	CHECK(err != NULL);
	if (err != NULL) {
		CHECK(strstr(err, path) != NULL);
		CHECK(strstr(err, "line 3") != NULL);
		CHECK(strstr(err, "missing closing parenthesis") != NULL);
	}
	free(err);
	free(spec);
	free(path);
	clear_dir();
}

TEST(test_maps_pcre_malformed)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{"no-slash result\n", "expected \"/regex/flags result\""},
		{"/unterminated result\n", "no closing '/'"},
		{"/abc\\/ result\n", "no closing '/'"},
		{"/abc/q result\n", "unknown flag 'q'"},
		{"/abc/\n", "no result"},
		{"/abc/i   \n", "no result"},
		{"/(a)/ $2\n", "uses group 2, but the pattern has 1"},
		{"/a/ cost $x\n", "invalid '$'"},
		{"/a/ ${1\n", "invalid '$'"},
		{"/a/ $0\n", "invalid '$'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_file("bad.pcre", cases[i].text);
		char *spec = xasprintf("pcre:%s", path);
		char *err = open_error(spec);

		if (err == NULL || strstr(err, cases[i].want) == NULL ||
		    strstr(err, "line 1") == NULL) {
			printf("  case %zu: got \"%s\", want \"%s\"\n", i,
			    err ? err : "(opened)", cases[i].want);
			testlib_case_failed = 1;
		}
		free(err);
		free(spec);
		free(path);
	}
	clear_dir();

	char *err = open_error("pcre:/nonexistent/postern.pcre");
	CHECK_CONTAINS(err, "cannot open");
	free(err);
}

/* Every prefix of a rule that ends before its result must be rejected. */
TEST(test_maps_pcre_truncated_lines)
{
	static const char rule[] = "/^(a+)@x$/i r$1";
	size_t result_at = strlen(rule) - 3;

	for (size_t len = 0; len <= strlen(rule); len++) {
		char *text = xasprintf("%.*s\n", (int)len, rule);
		char *path = write_file("cut.pcre", text);
		char *spec = xasprintf("pcre:%s", path);
		char *err = open_error(spec);

		/* An empty file is an empty table; so is a result cut before
		 * its '$' reference. */
		int want_ok = len == 0 || len == result_at + 1 || len == strlen(rule);
		if ((err == NULL) != want_ok) {
			printf("  prefix %zu \"%.*s\": %s\n", len, (int)len, rule,
			    err ? err : "opened");
			testlib_case_failed = 1;
		}
		free(err);
		free(spec);
		free(path);
		free(text);
	}
	clear_dir();
}

TEST(test_maps_inline)
{
	struct map *m = open_ok("inline:{ a=1, B=2 c = 3, d=, e={x y, z},"
	    " f = {}, a=4 }");

	if (m != NULL) {
		CHECK_LOOKUP(m, "A", "4");
		CHECK_LOOKUP(m, "b", "2");
		CHECK_LOOKUP(m, "c", "3");
		CHECK_LOOKUP(m, "d", "");
		CHECK_LOOKUP(m, "e", "x y, z");
		CHECK_LOOKUP(m, "f", "");
		CHECK_LOOKUP(m, "g", NULL);
	}
	map_close(&m);

	m = open_ok("inline:{}");
	if (m != NULL)
		CHECK_LOOKUP(m, "a", NULL);
	map_close(&m);

	/* Postfix's form for values with commas or spaces. */
	m = open_ok("inline:{ a=1, { Both = x@example.test, y@example.test },"
	    "{k=}, {  sp  =  two words  } }");
	if (m != NULL) {
		CHECK_LOOKUP(m, "a", "1");
		CHECK_LOOKUP(m, "both", "x@example.test, y@example.test");
		CHECK_LOOKUP(m, "k", "");
		CHECK_LOOKUP(m, "sp", "two words");
	}
	map_close(&m);
}

TEST(test_maps_inline_syntax_errors)
{
	static const char *const specs[] = {
		"inline:a=1",
		"inline:{a=1",
		"inline:a=1}",
		"inline:{ a }",
		"inline:{ =1 }",
		"inline:{ a=1 } junk",
		"inline:{ a={x y }",
		"inline:",
		"inline:{ { a } }",
		"inline:{ { =1 } }",
		"inline:{ {} }",
		"inline:{ { a=1 }",
	};

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		char *err = open_error(specs[i]);

		if (err == NULL || strstr(err, specs[i]) == NULL) {
			printf("  case %zu \"%s\": got \"%s\"\n", i, specs[i],
			    err ? err : "(opened)");
			testlib_case_failed = 1;
		}
		free(err);
	}

	/* Every prefix of a valid table lacks its closing brace. */
	static const char full[] = "inline:{ a=1, b={x y}, c= }";
	for (size_t len = 0; len < strlen(full); len++) {
		char *spec = xstrndup(full, len);
		char *err = open_error(spec);
		if (err == NULL) {
			printf("  prefix \"%s\" opened\n", spec);
			testlib_case_failed = 1;
		}
		free(err);
		free(spec);
	}
	struct map *m = open_ok(full);
	map_close(&m);
}

TEST(test_maps_static)
{
	struct map *m = open_ok("static:OK");

	if (m != NULL) {
		CHECK_LOOKUP(m, "anything", "OK");
		CHECK_LOOKUP(m, "", "OK");
	}
	map_close(&m);

	m = open_ok("static:{550 5.1.1 no such user}");
	if (m != NULL)
		CHECK_LOOKUP(m, "x", "550 5.1.1 no such user");
	map_close(&m);

	static const char *const bad[] = {"static:", "static:{a", "static:{a} b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = open_error(bad[i]);
		if (err == NULL) {
			printf("  case %zu \"%s\" opened\n", i, bad[i]);
			testlib_case_failed = 1;
		}
		free(err);
	}
}

TEST(test_maps_unix_passwd_root)
{
	struct map *m = open_ok("unix:passwd.byname");
	int rc;

	if (m != NULL) {
		char *value = lookup(m, "ROOT", &rc);
		CHECK_INT(rc, 1);
		CHECK_CONTAINS(value, "root:x:0:0:");
		CHECK(value == NULL || strncmp(value, "root:", 5) == 0);
		free(value);
		CHECK_LOOKUP(m, "no-such-user-postern-test", NULL);
		CHECK_LOOKUP(m, "", NULL);
	}
	map_close(&m);

	char *err = open_error("unix:group.byname");
	CHECK_CONTAINS(err, "unix:passwd.byname");
	free(err);
}

TEST(test_maps_spec_errors)
{
	char *err = open_error("nosuch:thing");
	CHECK_CONTAINS(err, "unknown type \"nosuch\"");
	free(err);

	err = open_error("/etc/aliases");
	CHECK_CONTAINS(err, "hash:/etc/aliases");
	free(err);

	CHECK_INT(map_spec_valid("hash:/etc/aliases"), 1);
	CHECK_INT(map_spec_valid("inline:{a=b}"), 1);
	CHECK_INT(map_spec_valid("hash:"), 0);
	CHECK_INT(map_spec_valid("example.com"), 0);
	CHECK_INT(map_spec_valid("nosuch:x"), 0);
}

TEST(test_maps_split_list)
{
	size_t count;
	char *err = NULL;
	char **items = map_split_list(" inline:{ a=1, b=2 } hash:/x,,"
	    "static:{y z}\t", &count, &err);

	CHECK(items != NULL);
	if (items != NULL) {
		CHECK_INT(count, 3);
		CHECK_STR(items[0], "inline:{ a=1, b=2 }");
		CHECK_STR(items[1], "hash:/x");
		CHECK_STR(items[2], "static:{y z}");
		CHECK_STR(items[3], NULL);
	}
	free(items);

	items = map_split_list("", &count, &err);
	CHECK(items != NULL);
	CHECK_INT(count, 0);
	if (items != NULL)
		CHECK_STR(items[0], NULL);
	free(items);

	items = map_split_list("inline:{a=1, b=2", &count, &err);
	CHECK(items == NULL);
	CHECK_CONTAINS(err, "unclosed brace");
	free(err);
	err = NULL;

	items = map_split_list("static:a}", &count, &err);
	CHECK(items == NULL);
	CHECK_CONTAINS(err, "unmatched closing brace");
	free(err);
}

TEST(test_maps_maplist)
{
	char *err = NULL, *value = NULL;
	struct maplist *l = maplist_open("inline:{ a=1, b=2 }, static:fallback",
	    &err);

	CHECK(l != NULL);
	if (l != NULL) {
		CHECK_INT(maplist_count(l), 2);
		CHECK_INT(maplist_lookup(l, "A", &value, &err), 1);
		CHECK_STR(value, "1");
		free(value);
		CHECK_INT(maplist_lookup(l, "z", &value, &err), 1);
		CHECK_STR(value, "fallback");
		free(value);
	}
	maplist_close(&l);

	l = maplist_open("", &err);
	CHECK(l != NULL);
	if (l != NULL) {
		CHECK_INT(maplist_count(l), 0);
		CHECK_INT(maplist_lookup(l, "a", &value, &err), 0);
	}
	maplist_close(&l);

	l = maplist_open("inline:{ a=1 }, nosuch:x", &err);
	CHECK(l == NULL);
	CHECK_CONTAINS(err, "nosuch");
	free(err);
}

static void remove_test_dir(void)
{
	clear_dir();
	rmdir(test_dir);
}

/* Runs before main(), which TEST_MAIN defines. */
__attribute__((constructor)) static void make_test_dir(void)
{
	log_init("test_maps");
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(remove_test_dir);
}

TEST_MAIN(
	TEST_CASE(test_maps_hash_build_lookup),
	TEST_CASE(test_maps_btree_build_lookup),
	TEST_CASE(test_maps_bare_path_builds_hash),
	TEST_CASE(test_maps_hash_missing_db),
	TEST_CASE(test_maps_hash_rebuilt_picked_up),
	TEST_CASE(test_maps_build_duplicate_last_wins),
	TEST_CASE(test_maps_build_malformed),
	TEST_CASE(test_maps_hash_nul_terminated_keys),
	TEST_CASE(test_maps_pcre_match),
	TEST_CASE(test_maps_pcre_bad_regex),
	TEST_CASE(test_maps_pcre_malformed),
	TEST_CASE(test_maps_pcre_truncated_lines),
	TEST_CASE(test_maps_inline),
	TEST_CASE(test_maps_inline_syntax_errors),
	TEST_CASE(test_maps_static),
	TEST_CASE(test_maps_unix_passwd_root),
	TEST_CASE(test_maps_spec_errors),
	TEST_CASE(test_maps_split_list),
	TEST_CASE(test_maps_maplist))
