/*
 * Tests of the mapping from smtpd_tls_protocols / smtpd_tls_ciphers
 * values onto GnuTLS priority strings (tlsproxy/priority.c).
 */
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "tlsproxy.h"

struct priority_case {
	const char *protocols;
	const char *ciphers;
	const char *want;        /* NULL: an error is expected */
};

static const struct priority_case priority_cases[] = {
	{">=TLSv1.2", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"},
	{">=TLSv1", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"},
	{">=TLSv1.3", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.3"},
	{"<=TLSv1.2", "high", "SECURE128:-VERS-ALL:+VERS-TLS1.2"},
	{"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "", "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"},
	{"!TLSv1.2", "low", "NORMAL:-VERS-ALL:+VERS-TLS1.3"},
	{"TLSv1.2", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2"},
	{"TLSv1.2 TLSv1.3", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"},
	{"TLSv1.3 !TLSv1.3", "medium", NULL},
	{"TLSv1 TLSv1.1", "medium", NULL},
	{">=TLSv1.2 <=TLSv1.2", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2"},
	{"", "medium", "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"},
	{">=TLSv1.4", "medium", NULL},
	{"TLSv2", "medium", NULL},
	{">=TLSv1.2", "export", NULL},
	{">=TLSv1.2", "null", NULL},
};

TEST(test_tls_priority_table)
{
	size_t n = sizeof(priority_cases) / sizeof(priority_cases[0]);

	for (size_t i = 0; i < n; i++) {
		const struct priority_case *c = &priority_cases[i];
		char *err = NULL;
		char *got = tlsproxy_priority_build(c->protocols, c->ciphers, &err);

		if (c->want == NULL) {
			if (got != NULL || err == NULL)
				printf("  case %zu: \"%s\" / \"%s\" should fail\n", i,
				    c->protocols, c->ciphers);
			CHECK(got == NULL);
			CHECK(err != NULL);
		} else {
			if (got == NULL)
				printf("  case %zu: error %s\n", i, err);
			CHECK_STR(got, c->want);
		}
		free(got);
		free(err);
	}
}

TEST(test_tls_priority_error_names_value)
{
	char *err = NULL;
	char *got = tlsproxy_priority_build("TLSv9", "medium", &err);

	CHECK(got == NULL);
	CHECK(err != NULL && strstr(err, "\"TLSv9\"") != NULL);
	free(err);
}

TEST_MAIN(
	TEST_CASE(test_tls_priority_table),
	TEST_CASE(test_tls_priority_error_names_value)
)
