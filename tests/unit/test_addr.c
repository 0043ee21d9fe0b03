/*
 * Unit tests of lib/addr.c: RFC 5321 path parsing into internal form,
 * the error for each kind of bad path, and externalization.
 */
#include "addr.h"
#include "sbuf.h"
#include "testlib.h"

struct path_case {
	const char *input;
	int allow_empty;
	int allow_postmaster;
	enum addr_error want_err;
	const char *want_addr;  /* internal form when want_err is ADDR_OK */
	const char *want_rest;
};

/* Runs one table of cases; prints the index, got and want of failures. */
static void run_path_cases(const struct path_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct path_case *c = &cases[i];
		char *addr = NULL;
		const char *rest = NULL;
		enum addr_error err = addr_parse_path(c->input, c->allow_empty,
		    c->allow_postmaster, &addr, &rest);

		if (err != c->want_err)
			printf("  case %zu (%s): error %d (%s), want %d\n", i, c->input,
			    err, addr_strerror(err), c->want_err);
		CHECK_INT(err, c->want_err);
		if (c->want_err == ADDR_OK) {
			CHECK_STR(addr, c->want_addr);
			CHECK_STR(rest, c->want_rest);
		} else {
			CHECK(addr == NULL);
			CHECK(rest == NULL);
		}
		free(addr);
	}
}

TEST(test_addr_valid_paths)
{
	static const struct path_case cases[] = {
		{"<alice@example.test>", 0, 0, ADDR_OK, "alice@example.test", ""},
		{"  <alice@example.test>", 0, 0, ADDR_OK, "alice@example.test", ""},
		{"<a.b+c_d@sub.example.test> SIZE=100 BODY=8BITMIME", 0, 0, ADDR_OK,
		    "a.b+c_d@sub.example.test", " SIZE=100 BODY=8BITMIME"},
		{"<!#$%&'*+-/=?^_`{|}~@x.test>", 0, 0, ADDR_OK,
		    "!#$%&'*+-/=?^_`{|}~@x.test", ""},
		{"<User@EXAMPLE.Test>", 0, 0, ADDR_OK, "User@EXAMPLE.Test", ""},
		{"<a@b>", 0, 0, ADDR_OK, "a@b", ""},
		{"<a@x-y.example>", 0, 0, ADDR_OK, "a@x-y.example", ""},
		{"<a@[192.0.2.1]>", 0, 0, ADDR_OK, "a@[192.0.2.1]", ""},
		{"<a@[IPv6:2001:db8::1]>", 0, 0, ADDR_OK, "a@[IPv6:2001:db8::1]", ""},
		{"<a@b>x", 0, 0, ADDR_OK, "a@b", "x"},
	};

	run_path_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(test_addr_quoted_local_parts)
{
	static const struct path_case cases[] = {
		{"<\"john doe\"@example.test>", 0, 0, ADDR_OK, "john doe@example.test", ""},
		{"<\"a\\\"b\"@x.test>", 0, 0, ADDR_OK, "a\"b@x.test", ""},
		{"<\"a\\\\b\"@x.test>", 0, 0, ADDR_OK, "a\\b@x.test", ""},
		{"<\"a@b\"@x.test>", 0, 0, ADDR_OK, "a@b@x.test", ""},
		{"<\"\"@x.test>", 0, 0, ADDR_OK, "@x.test", ""},
		{"<\"..\"@x.test>", 0, 0, ADDR_OK, "..@x.test", ""},
		{"<\"a>b\"@x.test> NOTIFY=NEVER", 0, 0, ADDR_OK, "a>b@x.test", " NOTIFY=NEVER"},
		{"<\"unterminated@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<\"tab\there\"@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<\"nl\\\nhere\"@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<\"a\"b@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
	};

	run_path_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(test_addr_source_routes_dropped)
{
	static const struct path_case cases[] = {
		{"<@relay.test:user@x.test>", 0, 0, ADDR_OK, "user@x.test", ""},
		{"<@a.test,@[192.0.2.1]:user@x.test>", 0, 0, ADDR_OK, "user@x.test", ""},
		{"<@a.test,b.test:user@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<@a.test user@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<@:user@x.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<@relay.test:postmaster>", 0, 1, ADDR_ERR_NO_DOMAIN, NULL, NULL},
	};

	run_path_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(test_addr_null_and_postmaster)
{
	static const struct path_case cases[] = {
		{"<>", 1, 0, ADDR_OK, "", ""},
		{"<> SIZE=10", 1, 0, ADDR_OK, "", " SIZE=10"},
		{"<>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<postmaster>", 0, 1, ADDR_OK, "postmaster", ""},
		{"<PostMaster>", 0, 1, ADDR_OK, "PostMaster", ""},
		{"<postmaster>", 0, 0, ADDR_ERR_NO_DOMAIN, NULL, NULL},
		{"<alice>", 0, 1, ADDR_ERR_NO_DOMAIN, NULL, NULL},
	};

	run_path_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(test_addr_syntax_errors)
{
	static const struct path_case cases[] = {
		{"alice@example.test", 0, 0, ADDR_ERR_NO_BRACKETS, NULL, NULL},
		{"<alice@example.test", 0, 0, ADDR_ERR_NO_BRACKETS, NULL, NULL},
		{"", 1, 1, ADDR_ERR_NO_BRACKETS, NULL, NULL},
		{"< alice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@example.test >", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<al ice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<al\tice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<al\001ice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@exa\rmple.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<caf\xc3\xa9@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<.alice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice.@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<al..ice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@example.test.>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@-example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@example-.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@exa_mple.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@[300.0.0.1]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@[192.0.2.1>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@[IPv6:zz::1]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<alice@example.test>>", 0, 0, ADDR_OK, "alice@example.test", ">"},
		{"<<alice@example.test>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL},
		{"<a@b><c@d>", 0, 0, ADDR_OK, "a@b", "<c@d>"},
	};

	run_path_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Builds "<" + local + "@" + domain + ">" with parts of the given
 * lengths. The domain is labels of at most 63 octets joined by dots. */
static char *make_path(size_t local_len, size_t domain_len)
{
	struct sbuf sb;
	size_t left = domain_len;

	sbuf_init(&sb, 0);
	sbuf_putc(&sb, '<');
	for (size_t i = 0; i < local_len; i++)
		sbuf_putc(&sb, 'l');
	sbuf_putc(&sb, '@');
	while (left > 0) {
		/* Leave room for a dot and a label of one octet after this one. */
		size_t label = left <= 63 ? left : (left - 2 < 63 ? left - 2 : 63);

		for (size_t j = 0; j < label; j++)
			sbuf_putc(&sb, 'd');
		left -= label;
		if (left > 0) {
			sbuf_putc(&sb, '.');
			left--;
		}
	}
	sbuf_putc(&sb, '>');
	return sbuf_detach(&sb);
}

TEST(test_addr_length_limits)
{
	static const struct {
		size_t local_len, domain_len;
		enum addr_error want;
	} cases[] = {
		{64, 10, ADDR_OK},
		{65, 10, ADDR_ERR_LOCAL_LONG},
		/* "<" + 64 + "@" + 189 + ">" = 256 octets: the longest path. */
		{64, 189, ADDR_OK},
		{64, 190, ADDR_ERR_PATH_LONG},
		/* A domain of 255 octets is valid, but the path is 259 octets. */
		{1, 255, ADDR_ERR_PATH_LONG},
		{1, 256, ADDR_ERR_DOMAIN_LONG},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = make_path(cases[i].local_len, cases[i].domain_len);
		char *addr = NULL;
		const char *rest = NULL;
		enum addr_error err = addr_parse_path(path, 0, 0, &addr, &rest);

		if (err != cases[i].want)
			printf("  case %zu (path of %zu octets): error %d, want %d\n",
			    i, strlen(path), err, cases[i].want);
		CHECK_INT(strlen(path), cases[i].local_len + cases[i].domain_len + 3);
		CHECK_INT(err, cases[i].want);
		free(addr);
		free(path);
	}

	/* A label of 64 octets is a syntax error. */
	char *addr = NULL;
	const char *rest = NULL;
	char *long_label = xasprintf("<a@%064d.test>", 0);
	CHECK_INT(addr_parse_path(long_label, 0, 0, &addr, &rest), ADDR_ERR_SYNTAX);
	free(long_label);
	long_label = xasprintf("<a@%063d.test>", 0);
	CHECK_INT(addr_parse_path(long_label, 0, 0, &addr, &rest), ADDR_OK);
	free(addr);
	addr = NULL;
	free(long_label);

	/* A quoted local part counts as sent, quotes included. */
	char *quoted = xasprintf("<\"%062d\"@x.test>", 0);
	CHECK_INT(addr_parse_path(quoted, 0, 0, &addr, &rest), ADDR_OK);
	free(addr);
	free(quoted);
	quoted = xasprintf("<\"%063d\"@x.test>", 0);
	CHECK_INT(addr_parse_path(quoted, 0, 0, &addr, &rest), ADDR_ERR_LOCAL_LONG);
	free(quoted);
}

TEST(test_addr_externalize)
{
	static const struct {
		const char *internal, *external;
	} cases[] = {
		{"alice@example.test", "alice@example.test"},
		{"", ""},
		{"john doe@example.test", "\"john doe\"@example.test"},
		{"a\"b@x.test", "\"a\\\"b\"@x.test"},
		{"a\\b@x.test", "\"a\\\\b\"@x.test"},
		{"a@b@x.test", "\"a@b\"@x.test"},
		{"..@x.test", "\"..\"@x.test"},
		{"@x.test", "\"\"@x.test"},
		{"postmaster", "postmaster"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = addr_externalize(cases[i].internal);

		CHECK_STR(got, cases[i].external);
		free(got);
	}
}

/* External form parses back to the same internal form. */
TEST(test_addr_externalize_roundtrip)
{
	static const char *const internal[] = {
		"john doe@example.test", "a\"b@x.test", "a\\b@x.test", "a@b@x.test",
		"plain.name@x.test",
	};

	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		char *external = addr_externalize(internal[i]);
		char *path = xasprintf("<%s>", external);
		char *back = NULL;
		const char *rest = NULL;

		CHECK_INT(addr_parse_path(path, 0, 0, &back, &rest), ADDR_OK);
		CHECK_STR(back, internal[i]);
		free(back);
		free(path);
		free(external);
	}
}

TEST(test_addr_parts_and_domains)
{
	char *local = addr_localpart("a@b@x.test");

	CHECK_STR(local, "a@b");
	free(local);
	local = addr_localpart("postmaster");
	CHECK_STR(local, "postmaster");
	free(local);
	CHECK_STR(addr_domain("a@b@x.test"), "x.test");
	CHECK(addr_domain("postmaster") == NULL);

	CHECK(addr_domain_is_fqdn("example.test"));
	CHECK(addr_domain_is_fqdn("[192.0.2.1]"));
	CHECK(!addr_domain_is_fqdn("localhost"));

	CHECK(addr_domain_valid("example.test"));
	CHECK(addr_domain_valid("[IPv6:::1]"));
	CHECK(addr_domain_valid("a"));
	CHECK(!addr_domain_valid(""));
	CHECK(!addr_domain_valid("example..test"));
	CHECK(!addr_domain_valid("example.test "));
	CHECK(!addr_domain_valid("-x.test"));
	CHECK(!addr_domain_valid("[192.0.2.1"));
}

TEST(test_addr_strerror_texts)
{
	CHECK(strstr(addr_strerror(ADDR_ERR_LOCAL_LONG), "64") != NULL);
	CHECK(strstr(addr_strerror(ADDR_ERR_DOMAIN_LONG), "255") != NULL);
	CHECK(strstr(addr_strerror(ADDR_ERR_PATH_LONG), "256") != NULL);
	CHECK(strstr(addr_strerror(ADDR_ERR_NO_BRACKETS), "<>") != NULL);
	CHECK(strstr(addr_strerror(ADDR_ERR_NO_DOMAIN), "domain") != NULL);
}

TEST_MAIN(
	TEST_CASE(test_addr_valid_paths),
	TEST_CASE(test_addr_quoted_local_parts),
	TEST_CASE(test_addr_source_routes_dropped),
	TEST_CASE(test_addr_null_and_postmaster),
	TEST_CASE(test_addr_syntax_errors),
	TEST_CASE(test_addr_length_limits),
	TEST_CASE(test_addr_externalize),
	TEST_CASE(test_addr_externalize_roundtrip),
	TEST_CASE(test_addr_parts_and_domains),
	TEST_CASE(test_addr_strerror_texts)
)
