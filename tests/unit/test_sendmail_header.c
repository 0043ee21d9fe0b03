/* Unit tests of the sendmail header section and address-list parsers. */
#include "header.h"
#include "sendmail.h"
#include "testlib.h"

TEST(test_sendmail_header_name_len)
{
	static const struct {
		const char *line;
		size_t want;
	} cases[] = {
		{"Subject: x", 7}, {"To:", 2}, {"X-A : y", 3}, {"Subject x", 0},
		{": no name", 0}, {" Folded: x", 0}, {"", 0}, {"From me", 0},
		{"Bad\x01Name: x", 0}, {"Name\t:", 4},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = sm_header_name_len(cases[i].line, strlen(cases[i].line));

		if (got != cases[i].want)
			printf("  case %zu \"%s\": got %zu, want %zu\n", i,
			    cases[i].line, got, cases[i].want);
		CHECK_INT(got, cases[i].want);
	}
}

TEST(test_sendmail_header_fields)
{
	struct sm_headers h;
	char *value;

	sm_headers_init(&h, 64);
	CHECK_INT(sm_headers_append(&h, " early", 6), -1);
	CHECK_INT(sm_headers_start(&h, "To: a@x.test,", 13, 2), 0);
	CHECK_INT(sm_headers_append(&h, "\tb@x.test", 9), 0);
	CHECK_INT(sm_headers_start(&h, "BCC: c@x.test", 13, 3), 0);
	CHECK_INT(h.count, 2);
	CHECK_INT(sm_headers_find(&h, "to"), 0);
	CHECK_INT(sm_headers_find(&h, "Bcc"), 1);
	CHECK_INT(sm_headers_find(&h, "Cc"), -1);
	value = sm_headers_value(&h, 0);
	CHECK_STR(value, "a@x.test,\tb@x.test");
	free(value);
	CHECK_STR(sbuf_cstr(&h.raw), "To: a@x.test,\n\tb@x.test\nBCC: c@x.test\n");
	h.fields[1].dropped = 1;
	CHECK_INT(sm_headers_find(&h, "Bcc"), -1);
	/* 64 bytes is the maximum; the section stays as it was. */
	CHECK_INT(sm_headers_start(&h, "Subject: a long line that does not fit", 38, 7), -1);
	CHECK_INT(h.count, 2);
	CHECK_STR(sbuf_cstr(&h.raw), "To: a@x.test,\n\tb@x.test\nBCC: c@x.test\n");
	sm_headers_free(&h);
}

/* Runs sm_address_list and joins the result with '|'. */
static char *addresses(const char *value, int *rc)
{
	char **list = NULL, *err = NULL;
	size_t count = 0;
	struct sbuf out;

	*rc = sm_address_list(value, &list, &count, 5, &err);
	sbuf_init(&out, 0);
	sbuf_puts(&out, "");
	for (size_t i = 0; i < count; i++) {
		sbuf_printf(&out, "%s%s", i ? "|" : "", list[i]);
		free(list[i]);
	}
	free(list);
	free(err);
	return sbuf_detach(&out);
}

TEST(test_sendmail_header_address_list)
{
	static const struct {
		const char *value;
		int rc;
		const char *want;
	} cases[] = {
		{"a@x.test", 0, "a@x.test"},
		{"A <a@x.test>, b@y.test", 0, "a@x.test|b@y.test"},
		{"\"Doe, J\" <j@x.test> (comment, here)", 0, "j@x.test"},
		{"team: a@x.test, b@x.test;, c@x.test", 0, "a@x.test|b@x.test|c@x.test"},
		{"undisclosed-recipients:;", 0, ""},
		{"\"john doe\"@x.test", 0, "\"john doe\"@x.test"},
		{"<@r1,@r2:u@x.test>", 0, "u@x.test"},
		{"u@[192.0.2.1]", 0, "u@[192.0.2.1]"},
		{"alice", 0, "alice"},
		{"a (nested (comment)) @x.test", 0, "a@x.test"},
		{"\"unterminated@x.test", -1, ""},
		{"a@x.test (open", -1, ""},
		{"<a@x.test", -1, ""},
		{"a@x.test>", -1, ""},
		{"<a<b@x.test>>", -1, ""},
		{"u@[192.0.2.1", -1, ""},
		{"a@x, b@x, c@x, d@x, e@x, f@x", -1, "a@x|b@x|c@x|d@x|e@x"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		char *got = addresses(cases[i].value, &rc);

		if (rc != cases[i].rc || strcmp(got, cases[i].want) != 0)
			printf("  case %zu \"%s\": rc %d \"%s\"\n", i, cases[i].value,
			    rc, got);
		CHECK_INT(rc, cases[i].rc);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
}

TEST(test_sendmail_header_canonical)
{
	static const struct {
		const char *text;
		int allow_null;
		const char *want;  /* NULL: rejected */
	} cases[] = {
		{"alice", 0, "alice@origin.test"},
		{"Alice <alice@x.test>", 0, "alice@x.test"},
		{"<>", 1, ""},
		{"", 1, ""},
		{"<>", 0, NULL},
		{"\"a b\"", 0, "\"a b\"@origin.test"},
		{"a@x.test, b@x.test", 0, NULL},
		{"a@-bad-.test", 0, NULL},
		{"a..b@x.test", 0, NULL},
		{"a@x.test\nX-Extra: b", 1, NULL},
		{"a@x.test\r", 0, NULL},
		{"a\t@x.test", 0, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		char *got = sm_address_canonical(cases[i].text, "origin.test",
		    cases[i].allow_null, &err);

		if ((got == NULL) != (cases[i].want == NULL))
			printf("  case %zu \"%s\": got %s (%s)\n", i, cases[i].text,
			    got ? got : "NULL", err ? err : "");
		CHECK_STR(got, cases[i].want);
		CHECK((got == NULL) == (err != NULL));
		free(got);
		free(err);
	}
}

TEST_MAIN(
    TEST_CASE(test_sendmail_header_name_len),
    TEST_CASE(test_sendmail_header_fields),
    TEST_CASE(test_sendmail_header_address_list),
    TEST_CASE(test_sendmail_header_canonical))
