/*
 * Unit tests of the smtp agent's next hop parsing and address lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "testlib.h"

TEST(test_smtp_nexthop_forms)
{
	static const struct {
		const char *text;
		const char *host;
		const char *port;
		int bracketed;
	} cases[] = {
		{"[127.0.0.1]:2626", "127.0.0.1", "2626", 1},
		{"[127.0.0.1]", "127.0.0.1", "25", 1},
		{"[relay.example]:587", "relay.example", "587", 1},
		{"relay.example:2525", "relay.example", "2525", 0},
		{"relay.example", "relay.example", "25", 0},
		{"[::1]:2626", "::1", "2626", 1},
		{"[::1]", "::1", "25", 1},
		{"mx.example:65535", "mx.example", "65535", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_nexthop nh;
		char *err = NULL;
		int rc = smtp_nexthop_parse(cases[i].text, NULL, &nh, &err);

		if (rc != 0) {
			printf("  case %zu: %s\n", i, err);
			CHECK_INT(rc, 0);
			free(err);
			continue;
		}
		CHECK_STR(nh.host, cases[i].host);
		CHECK_STR(nh.port, cases[i].port);
		CHECK_INT(nh.bracketed, cases[i].bracketed);
		smtp_nexthop_free(&nh);
	}
}

TEST(test_smtp_nexthop_fallback_domain)
{
	struct smtp_nexthop nh;
	char *err = NULL;

	CHECK_INT(smtp_nexthop_parse("", "example.org", &nh, &err), 0);
	CHECK_STR(nh.host, "example.org");
	CHECK_STR(nh.port, "25");
	CHECK_INT(nh.bracketed, 0);
	smtp_nexthop_free(&nh);

	CHECK_INT(smtp_nexthop_parse(NULL, "example.org", &nh, &err), 0);
	CHECK_STR(nh.host, "example.org");
	smtp_nexthop_free(&nh);

	CHECK_INT(smtp_nexthop_parse("", NULL, &nh, &err), -1);
	CHECK(err != NULL);
	free(err);
}

TEST(test_smtp_nexthop_malformed)
{
	static const char *const cases[] = {
		"[127.0.0.1",
		"[]:25",
		"[127.0.0.1]x",
		"[127.0.0.1]:",
		"[127.0.0.1]:0",
		"[127.0.0.1]:65536",
		"[127.0.0.1]:25x",
		"host:-1",
		":25",
		"2525",
		"relay example",
		"[a]b]:25",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_nexthop nh;
		char *err = NULL;
		int rc = smtp_nexthop_parse(cases[i], NULL, &nh, &err);

		if (rc != -1)
			printf("  case %zu: \"%s\"\n", i, cases[i]);
		CHECK_INT(rc, -1);
		if (rc == 0)
			smtp_nexthop_free(&nh);
		CHECK(rc == 0 || err != NULL);
		free(err);
	}
}

TEST(test_smtp_nexthop_lookup_literal)
{
	struct smtp_nexthop nh;
	struct smtp_addr_list addrs;
	char *err = NULL;

	CHECK_INT(smtp_nexthop_parse("[127.0.0.1]:2626", NULL, &nh, &err), 0);
	CHECK_INT(smtp_nexthop_lookup(&nh, &addrs, &err), 0);
	CHECK_INT(addrs.count, 1);
	if (addrs.count == 1)
		CHECK_STR(addrs.addrs[0], "127.0.0.1");
	smtp_addr_list_free(&addrs);
	smtp_nexthop_free(&nh);
}

TEST(test_smtp_nexthop_lookup_invalid_name)
{
	struct smtp_nexthop nh;
	struct smtp_addr_list addrs;
	char *err = NULL;
	int rc;

	/* RFC 6761 reserves .invalid, so the lookup fails without a network;
	 * either failure kind is acceptable for a resolver that is offline. */
	CHECK_INT(smtp_nexthop_parse("[host.invalid]", NULL, &nh, &err), 0);
	rc = smtp_nexthop_lookup(&nh, &addrs, &err);
	CHECK(rc == -1 || rc == -2);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "host.invalid") != NULL);
	free(err);
	smtp_nexthop_free(&nh);
}

TEST_MAIN(
	TEST_CASE(test_smtp_nexthop_forms),
	TEST_CASE(test_smtp_nexthop_fallback_domain),
	TEST_CASE(test_smtp_nexthop_malformed),
	TEST_CASE(test_smtp_nexthop_lookup_literal),
	TEST_CASE(test_smtp_nexthop_lookup_invalid_name)
)
