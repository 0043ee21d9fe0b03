/*
 * Unit tests of alias value parsing and of the alias lookup key.
 */
#include <string.h>

#include "config.h"
#include "local.h"
#include "testlib.h"

static void load_config(const char *text)
{
	char *err = NULL;

	if (config_load_text(text, "test", &err) < 0) {
		printf("  config_load_text: %s\n", err ? err : "?");
		free(err);
	}
}

TEST(test_local_alias_parse_list)
{
	struct alias_target *t = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(alias_parse(" alice@example.test ,bob@example.test,  carol ",
	    "origin.test", &t, &n, &err), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(t[0].kind, ALIAS_ADDRESS);
		CHECK_STR(t[0].value, "alice@example.test");
		CHECK_STR(t[1].value, "bob@example.test");
		CHECK_STR(t[2].value, "carol@origin.test");
	}
	alias_targets_free(&t, n);
	CHECK(t == NULL);
}

TEST(test_local_alias_parse_brackets_and_quotes)
{
	struct alias_target *t = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(alias_parse("<dave@example.test>, \"john doe\"@example.test,"
	    " \"|/usr/bin/prog -a, -b\", \"/var/log/a b\"", "o.test", &t, &n,
	    &err), 0);
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_INT(t[0].kind, ALIAS_ADDRESS);
		CHECK_STR(t[0].value, "dave@example.test");
		CHECK_INT(t[1].kind, ALIAS_ADDRESS);
		CHECK_STR(t[1].value, "john doe@example.test");
		CHECK_INT(t[2].kind, ALIAS_COMMAND);
		CHECK_STR(t[2].value, "/usr/bin/prog -a, -b");
		CHECK_INT(t[3].kind, ALIAS_FILE);
		CHECK_STR(t[3].value, "/var/log/a b");
	}
	alias_targets_free(&t, n);
}

TEST(test_local_alias_parse_kinds)
{
	struct alias_target *t = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(alias_parse("|cat, /tmp/file, :include:/etc/list", "o", &t,
	    &n, &err), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(t[0].kind, ALIAS_COMMAND);
		CHECK_STR(t[0].value, "cat");
		CHECK_INT(t[1].kind, ALIAS_FILE);
		CHECK_STR(t[1].value, "/tmp/file");
		CHECK_INT(t[2].kind, ALIAS_INCLUDE);
		CHECK_STR(t[2].value, "/etc/list");
	}
	alias_targets_free(&t, n);
}

TEST(test_local_alias_parse_skips_empty_items)
{
	struct alias_target *t = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(alias_parse(",a@b.test,, ,", "o", &t, &n, &err), 0);
	CHECK_INT(n, 1);
	alias_targets_free(&t, n);
}

TEST(test_local_alias_parse_rejects_malformed)
{
	static const char *const bad[] = {
		"",
		" , ,",
		"\"unclosed@example.test",
		"a@b.test, \"|cmd",
		"<a@b.test",
		"<>",
		"a@",
		"a b@example.test",
		"a@b.test junk",
		"@example.test",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct alias_target *t = NULL;
		size_t n = 0;
		char *err = NULL;
		int rc = alias_parse(bad[i], "o.test", &t, &n, &err);

		if (rc != -1)
			printf("  case %zu: \"%s\" accepted\n", i, bad[i]);
		CHECK_INT(rc, -1);
		CHECK(err != NULL);
		CHECK(t == NULL);
		CHECK_INT(n, 0);
		free(err);
		alias_targets_free(&t, n);
	}
}

TEST(test_local_alias_parse_every_prefix)
{
	static const char value[] = "alice, \"|x y\", <b@c.test>";

	/* Every truncation either parses or fails cleanly. */
	for (size_t len = 0; len <= sizeof(value) - 1; len++) {
		char *prefix = strndup(value, len);
		struct alias_target *t = NULL;
		size_t n = 0;
		char *err = NULL;
		int rc = alias_parse(prefix, "o.test", &t, &n, &err);

		CHECK(rc == 0 || rc == -1);
		if (rc == 0) {
			CHECK(n > 0);
			CHECK(err == NULL);
		} else {
			CHECK(err != NULL);
			CHECK(t == NULL);
		}
		free(err);
		alias_targets_free(&t, n);
		free(prefix);
	}
}

TEST(test_local_part_key_extension)
{
	char *k;

	load_config("recipient_delimiter = +\n");
	k = local_part_key("Alice+Lists@Example.TEST", 1);
	CHECK_STR(k, "alice");
	free(k);
	k = local_part_key("Alice+Lists@Example.TEST", 0);
	CHECK_STR(k, "alice+lists");
	free(k);
	/* A leading delimiter is part of the name. */
	k = local_part_key("+x@example.test", 1);
	CHECK_STR(k, "+x");
	free(k);
}

TEST(test_local_part_key_no_delimiter)
{
	char *k;

	load_config("recipient_delimiter =\n");
	k = local_part_key("Bob+x@example.test", 1);
	CHECK_STR(k, "bob+x");
	free(k);
}

TEST_MAIN(
	TEST_CASE(test_local_alias_parse_list),
	TEST_CASE(test_local_alias_parse_brackets_and_quotes),
	TEST_CASE(test_local_alias_parse_kinds),
	TEST_CASE(test_local_alias_parse_skips_empty_items),
	TEST_CASE(test_local_alias_parse_rejects_malformed),
	TEST_CASE(test_local_alias_parse_every_prefix),
	TEST_CASE(test_local_part_key_extension),
	TEST_CASE(test_local_part_key_no_delimiter)
)
