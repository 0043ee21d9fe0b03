/*
 * Unit tests of cidr: tables (lib/maps_cidr.c) and of the file and table
 * entries of network lists (cidr_list_parse in lib/netaddr.c), on real
 * files in a temporary directory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maps.h"
#include "netaddr.h"
#include "sbuf.h"
#include "testlib.h"

static char test_dir[] = "/tmp/postern-test-cidr-XXXXXX";

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

/* Opens "cidr:DIR/name" after writing text there; NULL on failure, with
 * the message in *err_out (caller frees). */
static struct map *open_cidr(const char *name, const char *text,
    char **err_out)
{
	char *path = write_file(name, text);
	char *spec = xasprintf("cidr:%s", path);
	struct map *m = map_open(spec, err_out);

	free(spec);
	free(path);
	return m;
}

/* Checks that key gives want (NULL: not found, return code 0). */
#define CHECK_LOOKUP(m, key, want) do { \
	char *value_ = NULL, *err_ = NULL; \
	int rc_ = map_lookup((m), (key), &value_, &err_); \
	CHECK_INT(rc_, (want) != NULL ? 1 : 0); \
	CHECK_STR(value_, (want)); \
	if (err_ != NULL) \
		printf("  lookup of \"%s\": %s\n", (key), err_); \
	free(value_); \
	free(err_); \
} while (0)

TEST(test_maps_cidr_ipv4)
{
	char *err = NULL;
	struct map *m = open_cidr("v4.cidr",
	    "# clients\n"
	    "192.0.2.0/24 REJECT listed\n"
	    "198.51.100.7 OK\n"
	    "10.0.0.0/8    554 5.7.1 go away\n"
	    "203.0.113.128/25 DUNNO\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		printf("  %s\n", err);
		free(err);
		return;
	}
	CHECK_LOOKUP(m, "192.0.2.0", "REJECT listed");
	CHECK_LOOKUP(m, "192.0.2.255", "REJECT listed");
	CHECK_LOOKUP(m, "192.0.3.0", NULL);
	CHECK_LOOKUP(m, "198.51.100.7", "OK");
	CHECK_LOOKUP(m, "198.51.100.8", NULL);
	CHECK_LOOKUP(m, "10.200.1.1", "554 5.7.1 go away");
	CHECK_LOOKUP(m, "203.0.113.128", "DUNNO");
	CHECK_LOOKUP(m, "203.0.113.127", NULL);
	map_close(&m);
	CHECK(m == NULL);
}

TEST(test_maps_cidr_ipv6)
{
	char *err = NULL;
	struct map *m = open_cidr("v6.cidr",
	    "[2001:db8::]/32 REJECT bracketed\n"
	    "2001:db9::1 OK single\n"
	    "fe80::/10 DUNNO\n"
	    "::/0 DEFER any v6\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		printf("  %s\n", err);
		free(err);
		return;
	}
	CHECK_LOOKUP(m, "2001:db8::1", "REJECT bracketed");
	CHECK_LOOKUP(m, "2001:DB8:FFFF::1", "REJECT bracketed");
	CHECK_LOOKUP(m, "[2001:db8::2]", "REJECT bracketed");
	CHECK_LOOKUP(m, "2001:db9::1", "OK single");
	CHECK_LOOKUP(m, "2001:db9::2", "DEFER any v6");
	CHECK_LOOKUP(m, "fe80::1", "DUNNO");
	/* A plain IPv6 network never matches an IPv4 key. */
	CHECK_LOOKUP(m, "192.0.2.1", NULL);
	CHECK_LOOKUP(m, "::ffff:192.0.2.1", NULL);
	map_close(&m);
}

TEST(test_maps_cidr_first_match_wins)
{
	char *err = NULL;
	struct map *m = open_cidr("order.cidr",
	    "192.0.2.0/24 first\n"
	    "192.0.2.1 second\n"
	    "0.0.0.0/0 everything\n"
	    "192.0.2.2 never\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		free(err);
		return;
	}
	/* The more specific later line does not win over an earlier one. */
	CHECK_LOOKUP(m, "192.0.2.1", "first");
	CHECK_LOOKUP(m, "192.0.2.2", "first");
	CHECK_LOOKUP(m, "127.0.0.1", "everything");
	map_close(&m);
}

TEST(test_maps_cidr_non_address_keys)
{
	char *err = NULL;
	struct map *m = open_cidr("keys.cidr", "0.0.0.0/0 v4\n::/0 v6\n",
	    &err);

	CHECK(m != NULL);
	if (m == NULL) {
		free(err);
		return;
	}
	static const char *const keys[] = {
		"", "example.com", "192.0.2", "192.0", "192", "2001:db8",
		"192.0.2.1/32", "192.0.2.256", "[192.0.2.1]", "1.2.3.4 ",
		"unknown", "[::1", "user@192.0.2.1",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *value = NULL, *lookup_err = NULL;
		int rc = map_lookup(m, keys[i], &value, &lookup_err);
		if (rc != 0)
			printf("  case %zu: \"%s\" gave %d\n", i, keys[i], rc);
		CHECK_INT(rc, 0);
		CHECK(value == NULL);
		free(value);
		free(lookup_err);
	}
	map_close(&m);
}

TEST(test_maps_cidr_ipv4_mapped)
{
	char *err = NULL;
	struct map *m = open_cidr("mapped.cidr",
	    "::ffff:198.51.100.0/120 mapped entry\n"
	    "192.0.2.0/24 plain entry\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		free(err);
		return;
	}
	/* Both spellings of an IPv4 address match both kinds of entry. */
	CHECK_LOOKUP(m, "198.51.100.9", "mapped entry");
	CHECK_LOOKUP(m, "::ffff:198.51.100.9", "mapped entry");
	CHECK_LOOKUP(m, "::FFFF:192.0.2.9", "plain entry");
	CHECK_LOOKUP(m, "192.0.2.9", "plain entry");
	CHECK_LOOKUP(m, "::ffff:198.51.101.9", NULL);
	map_close(&m);
}

TEST(test_maps_cidr_comments_continuations)
{
	char *err = NULL;
	struct map *m = open_cidr("cont.cidr",
	    "# a comment\n"
	    "\n"
	    "   # an indented comment\n"
	    "192.0.2.0/24 REJECT first part\n"
	    "   and second part\n"
	    "198.51.100.1\n"
	    "\tOK\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		printf("  %s\n", err);
		free(err);
		return;
	}
	CHECK_LOOKUP(m, "192.0.2.5", "REJECT first part and second part");
	CHECK_LOOKUP(m, "198.51.100.1", "OK");
	map_close(&m);
}

TEST(test_maps_cidr_bad_lines)
{
	static const struct {
		const char *text;
		const char *want;   /* part of the message */
	} cases[] = {
		{"192.0.2.0/24\n", "line 1: expected \"network result\""},
		{"# c\n192.0.2.0/33 OK\n", "line 2: invalid network \"192.0.2.0/33\""},
		{"192.0.2.1/24 OK\n", "address bits are set after the /24"},
		{"300.1.1.1 OK\n", "invalid network \"300.1.1.1\""},
		{"[192.0.2.1] OK\n", "invalid network \"[192.0.2.1]\""},
		{"2001:db8::/129 OK\n", "invalid network \"2001:db8::/129\""},
		{"example.com OK\n", "invalid network \"example.com\""},
		{"192.0.2.0/ OK\n", "invalid network \"192.0.2.0/\""},
		{"192.0.2 OK\n", "invalid network \"192.0.2\""},
		{"[2001:db8::/32 OK\n", "invalid network"},
		{"  192.0.2.1 OK\n", "line 1: line starts with white space"},
		{"10.0.0.0/8 OK\n192.0.2.0/24\n", "line 2: expected"},
		{"10.0.0.0/8 OK\n\n\n1.2.3.4/8x OK\n", "line 4: invalid network"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		struct map *m = open_cidr("bad.cidr", cases[i].text, &err);

		if (m != NULL || err == NULL || strstr(err, cases[i].want) == NULL)
			printf("  case %zu: got \"%s\", want \"%s\"\n", i,
			    err ? err : "(accepted)", cases[i].want);
		CHECK(m == NULL);
		CHECK(err != NULL && strstr(err, cases[i].want) != NULL);
		CHECK(err != NULL && strstr(err, "bad.cidr") != NULL);
		free(err);
		map_close(&m);
	}
}

TEST(test_maps_cidr_missing_file)
{
	char *err = NULL;
	char *spec = xasprintf("cidr:%s/absent.cidr", test_dir);
	struct map *m = map_open(spec, &err);

	CHECK(m == NULL);
	CHECK(err != NULL && strstr(err, "absent.cidr") != NULL);
	CHECK(err != NULL && strstr(err, "No such file") != NULL);
	free(err);
	free(spec);
}

/* Every prefix of a valid file either opens or fails with a message that
 * names the file; an opened prefix answers lookups. */
TEST(test_maps_cidr_truncated)
{
	static const char text[] =
	    "# list\n192.0.2.0/24 REJECT a\n[2001:db8::]/32 OK\n"
	    "198.51.100.7\n  DUNNO\n";
	size_t len = strlen(text);

	for (size_t cut = 0; cut <= len; cut++) {
		char *prefix = xstrndup(text, cut);
		char *err = NULL;
		struct map *m = open_cidr("cut.cidr", prefix, &err);

		if (m == NULL) {
			if (err == NULL || strstr(err, "cut.cidr") == NULL)
				printf("  cut %zu: message \"%s\"\n", cut,
				    err ? err : "(null)");
			CHECK(err != NULL && strstr(err, "cut.cidr") != NULL);
		} else {
			char *value = NULL, *lookup_err = NULL;
			CHECK(map_lookup(m, "192.0.2.9", &value, &lookup_err) >= 0);
			free(value);
			free(lookup_err);
		}
		free(err);
		map_close(&m);
		free(prefix);
	}

	/* The whole file gives every entry. */
	char *err = NULL;
	struct map *m = open_cidr("cut.cidr", text, &err);
	CHECK(m != NULL);
	if (m != NULL) {
		CHECK_LOOKUP(m, "192.0.2.9", "REJECT a");
		CHECK_LOOKUP(m, "2001:db8::9", "OK");
		CHECK_LOOKUP(m, "198.51.100.7", "DUNNO");
	}
	free(err);
	map_close(&m);
}

/* Sleeps long enough for the once-a-second change check to run again. */
static void wait_for_next_check(void)
{
	struct timespec ts = {1, 100000000};

	nanosleep(&ts, NULL);
}

TEST(test_maps_cidr_reload)
{
	char *err = NULL;
	struct map *m = open_cidr("reload.cidr", "192.0.2.0/24 old\n", &err);

	CHECK(m != NULL);
	if (m == NULL) {
		free(err);
		return;
	}
	CHECK_LOOKUP(m, "192.0.2.1", "old");

	wait_for_next_check();
	free(write_file("reload.cidr", "192.0.2.0/24 new\n10.0.0.0/8 added\n"));
	CHECK_LOOKUP(m, "192.0.2.1", "new");
	CHECK_LOOKUP(m, "10.1.1.1", "added");

	/* A broken file leaves the table read before in use. */
	wait_for_next_check();
	free(write_file("reload.cidr", "192.0.2.0/24 newer\nbogus line\n"));
	CHECK_LOOKUP(m, "192.0.2.1", "new");
	CHECK_LOOKUP(m, "10.1.1.1", "added");
	map_close(&m);
}

TEST(test_maps_cidr_not_built)
{
	char *err = NULL;
	char *path = write_file("build.cidr", "192.0.2.0/24 OK\n");
	char *spec = xasprintf("cidr:%s", path);

	CHECK(map_spec_valid(spec));
	CHECK_INT(map_build(spec, &err), -1);
	CHECK(err != NULL && strstr(err, "read as they are") != NULL);
	free(err);
	free(spec);
	free(path);
}

/* cidr: tables skip the shortened keys of parent lookups; other types
 * in the same list still see them. */
TEST(test_maps_cidr_parent_lookup)
{
	char *path = write_file("parent.cidr", "2001:db8::5 cidr hit\n");
	char *spec = xasprintf("cidr:%s inline:{ 2001:db8::5=inline-hit }",
	    path);
	char *err = NULL, *value = NULL;
	struct maplist *l = maplist_open(spec, &err);

	CHECK(l != NULL);
	if (l == NULL) {
		printf("  %s\n", err);
		goto out;
	}
	CHECK_INT(maplist_lookup(l, "2001:db8::5", &value, &err), 1);
	CHECK_STR(value, "cidr hit");
	free(value);
	CHECK_INT(maplist_lookup_parent(l, "2001:db8::5", &value, &err), 1);
	CHECK_STR(value, "inline-hit");
	free(value);
	value = NULL;
	CHECK_INT(maplist_lookup_parent(l, "192.0.2.1", &value, &err), 0);
	CHECK(value == NULL);
out:
	maplist_close(&l);
	free(err);
	free(spec);
	free(path);
}

TEST(test_maps_cidr_list_file_entries)
{
	char *path = write_file("networks",
	    "# trusted\n"
	    "127.0.0.2/32 192.0.2.0/24, 10.1.0.0/16 # office\n"
	    "\n"
	    "[2001:db8::]/32\n");
	char *spec = xasprintf("127.0.0.1 %s", path);
	char *err = NULL;
	struct cidr_list *l = cidr_list_parse(spec, &err);

	CHECK(l != NULL);
	if (l == NULL)
		printf("  %s\n", err);
	CHECK_INT(cidr_list_match_str(l, "127.0.0.1"), 1);
	CHECK_INT(cidr_list_match_str(l, "127.0.0.2"), 1);
	CHECK_INT(cidr_list_match_str(l, "127.0.0.3"), 0);
	CHECK_INT(cidr_list_match_str(l, "192.0.2.200"), 1);
	CHECK_INT(cidr_list_match_str(l, "10.1.255.1"), 1);
	CHECK_INT(cidr_list_match_str(l, "10.2.0.1"), 0);
	CHECK_INT(cidr_list_match_str(l, "2001:db8::1"), 1);
	cidr_list_free(&l);
	free(spec);
	free(path);
	free(err);

	/* A bad network names the file and line. */
	path = write_file("bad-networks", "127.0.0.1\n# c\n10.0.0.1/8\n");
	err = NULL;
	l = cidr_list_parse(path, &err);
	CHECK(l == NULL);
	CHECK(err != NULL && strstr(err, "bad-networks line 3") != NULL);
	CHECK(err != NULL && strstr(err, "\"10.0.0.1/8\"") != NULL);
	free(err);
	free(path);
}

TEST(test_maps_cidr_list_table_entries)
{
	char *path = write_file("mynetworks.cidr",
	    "127.0.0.2/32 OK\n"
	    "192.0.2.0/24 REJECT\n"
	    "2001:db8::/32 anything\n");
	char *spec = xasprintf("cidr:%s, inline:{ 198.51.100.7=yes }", path);
	char *err = NULL;
	struct cidr_list *l = cidr_list_parse(spec, &err);

	CHECK(l != NULL);
	if (l == NULL)
		printf("  %s\n", err);
	/* Any found key matches, whatever its value. */
	CHECK_INT(cidr_list_match_str(l, "127.0.0.2"), 1);
	CHECK_INT(cidr_list_match_str(l, "192.0.2.9"), 1);
	CHECK_INT(cidr_list_match_str(l, "127.0.0.1"), 0);
	CHECK_INT(cidr_list_match_str(l, "198.51.100.7"), 1);
	CHECK_INT(cidr_list_match_str(l, "2001:db8::7"), 1);
	CHECK_INT(cidr_list_match_str(l, "not an address"), 0);

	/* The client of a dual-stack socket is looked up as IPv4. */
	struct sockaddr_in6 sin6 = {0};
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &sin6.sin6_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin6), 1);
	inet_pton(AF_INET6, "::ffff:127.0.0.3", &sin6.sin6_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin6), 0);
	cidr_list_free(&l);
	free(err);
	free(spec);
	free(path);

	/* A table that cannot be opened, and "!" exclusions, are errors. */
	err = NULL;
	l = cidr_list_parse("127.0.0.1 cidr:/nonexistent/postern.cidr", &err);
	CHECK(l == NULL);
	CHECK(err != NULL && strstr(err, "/nonexistent/postern.cidr") != NULL);
	free(err);
	err = NULL;
	l = cidr_list_parse("!127.0.0.3 127.0.0.0/8", &err);
	CHECK(l == NULL);
	CHECK(err != NULL && strstr(err, "\"!127.0.0.3\"") != NULL);
	free(err);
}

static void remove_test_dir(void)
{
	char *cmd = xasprintf("rm -rf '%s'", test_dir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", test_dir);
	free(cmd);
}

__attribute__((constructor)) static void make_test_dir(void)
{
	log_init("test_maps_cidr");
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(remove_test_dir);
}

TEST_MAIN(
	TEST_CASE(test_maps_cidr_ipv4),
	TEST_CASE(test_maps_cidr_ipv6),
	TEST_CASE(test_maps_cidr_first_match_wins),
	TEST_CASE(test_maps_cidr_non_address_keys),
	TEST_CASE(test_maps_cidr_ipv4_mapped),
	TEST_CASE(test_maps_cidr_comments_continuations),
	TEST_CASE(test_maps_cidr_bad_lines),
	TEST_CASE(test_maps_cidr_missing_file),
	TEST_CASE(test_maps_cidr_truncated),
	TEST_CASE(test_maps_cidr_reload),
	TEST_CASE(test_maps_cidr_not_built),
	TEST_CASE(test_maps_cidr_parent_lookup),
	TEST_CASE(test_maps_cidr_list_file_entries),
	TEST_CASE(test_maps_cidr_list_table_entries))
