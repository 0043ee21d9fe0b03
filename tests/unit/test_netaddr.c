/*
 * Unit tests of lib/netaddr.c: CIDR lists, IPv4-mapped IPv6 matching,
 * host:port splitting and address formatting.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "netaddr.h"

TEST(test_netaddr_cidr_match)
{
	static const struct {
		const char *addr;
		int match;
	} cases[] = {
		{"127.0.0.1", 1}, {"127.255.255.254", 1}, {"128.0.0.1", 0},
		{"::1", 1}, {"[::1]", 1}, {"::2", 0},
		{"192.0.2.7", 1}, {"192.0.2.8", 0},
		{"2001:db8::", 1}, {"2001:db8:ffff::5", 1}, {"2001:db9::1", 0},
		{"::ffff:127.0.0.1", 1}, {"::ffff:192.0.2.7", 1},
		{"::ffff:192.0.2.9", 0}, {"10.1.2.3", 1}, {"10.1.3.3", 0},
		{"not-an-address", 0}, {"", 0}, {"127.0.0.1/8", 0},
	};
	char *err = NULL;
	struct cidr_list *l = cidr_list_parse(
	    "127.0.0.0/8, [::1]/128 192.0.2.7\t2001:db8::/32,,10.1.2.0/24", &err);

	CHECK(l != NULL);
	CHECK(err == NULL);
	if (l == NULL)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = cidr_list_match_str(l, cases[i].addr);
		if (got != cases[i].match)
			printf("  case %zu: %s\n", i, cases[i].addr);
		CHECK_INT(got, cases[i].match);
	}
	cidr_list_free(&l);
	CHECK(l == NULL);
}

TEST(test_netaddr_cidr_sockaddr_mapped)
{
	struct cidr_list *l = cidr_list_parse("127.0.0.2/32", NULL);
	struct sockaddr_in6 sin6 = {0};
	struct sockaddr_in sin = {0};

	CHECK(l != NULL);
	if (l == NULL)
		return;
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &sin6.sin6_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin6), 1);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin6), 0);
	/* The IPv4-compatible form (no ffff) is not the same address. */
	inet_pton(AF_INET6, "::127.0.0.2", &sin6.sin6_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin6), 0);

	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
	CHECK_INT(cidr_list_match(l, (struct sockaddr *)&sin), 1);
	CHECK_INT(cidr_list_match(NULL, (struct sockaddr *)&sin), 0);
	cidr_list_free(&l);

	/* An entry in IPv6 mapped form matches a plain IPv4 client too. */
	l = cidr_list_parse("::ffff:192.0.2.0/120", NULL);
	CHECK(l != NULL);
	CHECK_INT(cidr_list_match_str(l, "192.0.2.77"), 1);
	CHECK_INT(cidr_list_match_str(l, "192.0.3.77"), 0);
	cidr_list_free(&l);
}

TEST(test_netaddr_cidr_edges)
{
	struct cidr_list *l = cidr_list_parse("0.0.0.0/0", NULL);

	CHECK(l != NULL);
	CHECK_INT(cidr_list_match_str(l, "203.0.113.9"), 1);
	CHECK_INT(cidr_list_match_str(l, "2001:db8::1"), 0);
	cidr_list_free(&l);

	/* An IPv6 network never lets IPv4 clients in. */
	l = cidr_list_parse("::/0", NULL);
	CHECK_INT(cidr_list_match_str(l, "2001:db8::1"), 1);
	CHECK_INT(cidr_list_match_str(l, "203.0.113.9"), 0);
	CHECK_INT(cidr_list_match_str(l, "::ffff:203.0.113.9"), 0);
	cidr_list_free(&l);

	l = cidr_list_parse("192.0.2.128/25", NULL);
	CHECK_INT(cidr_list_match_str(l, "192.0.2.128"), 1);
	CHECK_INT(cidr_list_match_str(l, "192.0.2.127"), 0);
	cidr_list_free(&l);

	l = cidr_list_parse("", NULL);
	CHECK(l != NULL);
	CHECK_INT(cidr_list_match_str(l, "127.0.0.1"), 0);
	cidr_list_free(&l);
}

TEST(test_netaddr_cidr_bad_entries)
{
	static const char *const specs[] = {
		"127.0.0.1/33", "10.0.0.0/", "300.1.1.1", "[127.0.0.1]",
		"[::1", "::1]", "[::1]]/128", "10.0.0.1/8", "abc", "2001:db8::/129",
		"1.2.3.4/8x", "1.2.3.4/-1", "1.2.3", "1.2.3.4/0008",
		"127.0.0.0/8 bogus", "[]", "2001:db8::1/64",
	};

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		char *err = NULL;
		struct cidr_list *l = cidr_list_parse(specs[i], &err);
		if (l != NULL || err == NULL)
			printf("  case %zu: \"%s\" was accepted\n", i, specs[i]);
		CHECK(l == NULL);
		CHECK(err != NULL);
		if (err != NULL)
			CHECK(strstr(err, "invalid network \"") != NULL);
		free(err);
		cidr_list_free(&l);
	}

	char *err = NULL;
	struct cidr_list *l = cidr_list_parse("127.0.0.0/8 bogus", &err);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "\"bogus\"") != NULL);
	free(err);
	cidr_list_free(&l);

	/* A leading '/' names a file of networks, which must exist. */
	err = NULL;
	l = cidr_list_parse("/8", &err);
	CHECK(l == NULL);
	CHECK(err != NULL && strstr(err, "cannot open the network list /8"));
	free(err);
	cidr_list_free(&l);
}

TEST(test_netaddr_hostport_split)
{
	static const struct {
		const char *text;
		const char *host;
		const char *port;
		int bracketed;
	} cases[] = {
		{"25", NULL, "25", 0},
		{"mail.example.test:2525", "mail.example.test", "2525", 0},
		{"127.0.0.1:25", "127.0.0.1", "25", 0},
		{"[::1]:25", "::1", "25", 1},
		{"[mx.example.test]", "mx.example.test", NULL, 1},
		{"[mx.example.test]:smtp", "mx.example.test", "smtp", 1},
		{"example.test", "example.test", NULL, 0},
		{"2001:db8::1", "2001:db8::1", NULL, 0},
		{"smtp", "smtp", NULL, 0},
		{"*:25", "*", "25", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *host = NULL, *port = NULL;
		int bracketed = -1;
		int rc = hostport_split(cases[i].text, &host, &port, &bracketed);
		if (rc != 0)
			printf("  case %zu: \"%s\" was rejected\n", i, cases[i].text);
		CHECK_INT(rc, 0);
		CHECK_STR(host, cases[i].host);
		CHECK_STR(port, cases[i].port);
		CHECK_INT(bracketed, cases[i].bracketed);
		free(host);
		free(port);
	}
}

TEST(test_netaddr_hostport_malformed)
{
	static const char *const texts[] = {
		"", ":25", "host:", "[::1", "[]:25", "[::1]x", "[::1]:", "host:2 5",
		"a]:25", "host:p@rt", "[[::1]]:25", " host:25", "[a]:b:c",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *host = (char *)"unchanged", *port = (char *)"unchanged";
		int rc = hostport_split(texts[i], &host, &port, NULL);
		if (rc != -1)
			printf("  case %zu: \"%s\" was accepted\n", i, texts[i]);
		CHECK_INT(rc, -1);
		CHECK(host == NULL);
		CHECK(port == NULL);
	}
}

TEST(test_netaddr_sockaddr_format)
{
	struct sockaddr_in6 sin6 = {0};
	struct sockaddr_in sin = {0};
	char buf[INET6_ADDRSTRLEN];

	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(2525);
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	CHECK_STR(sockaddr_to_str((struct sockaddr *)&sin6, buf, sizeof(buf)),
	    "192.0.2.1");
	CHECK_INT(sockaddr_port((struct sockaddr *)&sin6), 2525);

	inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
	CHECK_STR(sockaddr_to_str((struct sockaddr *)&sin6, buf, sizeof(buf)),
	    "2001:db8::5");

	sin.sin_family = AF_INET;
	sin.sin_port = htons(25);
	inet_pton(AF_INET, "198.51.100.4", &sin.sin_addr);
	CHECK_STR(sockaddr_to_str((struct sockaddr *)&sin, buf, sizeof(buf)),
	    "198.51.100.4");
	CHECK_INT(sockaddr_port((struct sockaddr *)&sin), 25);

	/* A buffer too small gives an empty string, never a partial one. */
	char small[4];
	CHECK_STR(sockaddr_to_str((struct sockaddr *)&sin, small, sizeof(small)), "");
}

TEST_MAIN(
	TEST_CASE(test_netaddr_cidr_match),
	TEST_CASE(test_netaddr_cidr_sockaddr_mapped),
	TEST_CASE(test_netaddr_cidr_edges),
	TEST_CASE(test_netaddr_cidr_bad_entries),
	TEST_CASE(test_netaddr_hostport_split),
	TEST_CASE(test_netaddr_hostport_malformed),
	TEST_CASE(test_netaddr_sockaddr_format)
)
