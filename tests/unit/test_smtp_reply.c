/*
 * Unit tests of the smtp agent's reply parser and EHLO capabilities.
 */
#include <string.h>

#include "smtp.h"
#include "testlib.h"

/* Parses text in one call; returns the parser result. */
static int parse_all(struct smtp_reply *r, const char *text, size_t *used,
    const char **err)
{
	smtp_reply_reset(r);
	return smtp_reply_parse(r, text, strlen(text), used, err);
}

TEST(test_smtp_reply_single_line)
{
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, "250 2.1.0 Ok\r\n", &used, &err),
	    SMTP_PARSE_DONE);
	CHECK_INT(r.code, 250);
	CHECK_INT(r.nlines, 1);
	CHECK_INT(used, 14);
	CHECK_STR(sbuf_cstr(&r.text), "250 2.1.0 Ok");
	CHECK_STR(sbuf_cstr(&r.lines), "2.1.0 Ok\n");
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_multi_line)
{
	const char *text = "250-mx.example\r\n250-PIPELINING\r\n"
	    "250 SIZE 1000\r\n354 next\r\n";
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, text, &used, &err), SMTP_PARSE_DONE);
	CHECK_INT(r.nlines, 3);
	CHECK_INT(used, strlen(text) - strlen("354 next\r\n"));
	CHECK_STR(sbuf_cstr(&r.text), "250 mx.example PIPELINING SIZE 1000");
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_bare_code_and_lf)
{
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, "250\n", &used, &err), SMTP_PARSE_DONE);
	CHECK_INT(r.code, 250);
	CHECK_STR(sbuf_cstr(&r.text), "250");
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_incremental)
{
	const char *text = "451-4.3.0 first\r\n451 4.3.0 second\r\n";
	size_t len = strlen(text);
	struct smtp_reply r;

	smtp_reply_init(&r);
	/* Feed every prefix as if it were all that has arrived: the parser
	 * keeps unfinished lines for the next call. */
	for (size_t split = 0; split <= len; split++) {
		char buf[128];
		size_t have = split, used = 0;
		const char *err = NULL;
		int rc;

		smtp_reply_reset(&r);
		memcpy(buf, text, split);
		rc = smtp_reply_parse(&r, buf, have, &used, &err);
		CHECK(rc != SMTP_PARSE_ERROR);
		memmove(buf, buf + used, have - used);
		have -= used;
		if (rc == SMTP_PARSE_DONE) {
			CHECK_INT(split, len);
			continue;
		}
		memcpy(buf + have, text + split, len - split);
		have += len - split;
		rc = smtp_reply_parse(&r, buf, have, &used, &err);
		if (rc != SMTP_PARSE_DONE)
			printf("  split %zu\n", split);
		CHECK_INT(rc, SMTP_PARSE_DONE);
		CHECK_INT(r.nlines, 2);
		CHECK_STR(sbuf_cstr(&r.text), "451 4.3.0 first 4.3.0 second");
	}
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_truncated)
{
	static const char *const cases[] = {
		"", "2", "25", "250", "250-first\r\n", "250-first\r\n250 la",
	};
	struct smtp_reply r;

	smtp_reply_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t used;
		const char *err = NULL;
		int rc = parse_all(&r, cases[i], &used, &err);

		if (rc != SMTP_PARSE_MORE)
			printf("  case %zu: \"%s\"\n", i, cases[i]);
		CHECK_INT(rc, SMTP_PARSE_MORE);
	}
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_malformed)
{
	static const char *const cases[] = {
		"hello\r\n",
		"25\r\n",
		"2x0 Ok\r\n",
		"250xOk\r\n",
		"150 too small\r\n",
		"600 too large\r\n",
		"250-first\r\n251 other code\r\n",
		"\r\n",
		" 250 Ok\r\n",
	};
	struct smtp_reply r;

	smtp_reply_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t used;
		const char *err = NULL;
		int rc = parse_all(&r, cases[i], &used, &err);

		if (rc != SMTP_PARSE_ERROR)
			printf("  case %zu: \"%s\"\n", i, cases[i]);
		CHECK_INT(rc, SMTP_PARSE_ERROR);
		CHECK(err != NULL);
	}
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_line_too_long)
{
	char line[SMTP_REPLY_MAX_LINE + 16];
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	smtp_reply_init(&r);

	/* A finished line one byte over the limit. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	memcpy(line + SMTP_REPLY_MAX_LINE - 1, "\r\n", 3);
	CHECK_INT(parse_all(&r, line, &used, &err), SMTP_PARSE_ERROR);

	/* A line of exactly the limit is accepted. */
	memcpy(line + SMTP_REPLY_MAX_LINE - 2, "\r\n", 3);
	CHECK_INT(parse_all(&r, line, &used, &err), SMTP_PARSE_DONE);
	CHECK(r.text.len <= SMTP_REPLY_MAX_TEXT);

	/* An unfinished line at the limit cannot become valid. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	line[SMTP_REPLY_MAX_LINE] = '\0';
	CHECK_INT(parse_all(&r, line, &used, &err), SMTP_PARSE_ERROR);
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_too_many_lines)
{
	struct sbuf text;
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	sbuf_init(&text, 0);
	for (int i = 0; i < SMTP_REPLY_MAX_LINES; i++)
		sbuf_puts(&text, "250-line\r\n");
	sbuf_puts(&text, "250 last\r\n");
	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, text.data, &used, &err), SMTP_PARSE_ERROR);
	CHECK_STR(err, "too many reply lines");

	/* One line fewer fits. */
	sbuf_consume(&text, strlen("250-line\r\n"));
	CHECK_INT(parse_all(&r, text.data, &used, &err), SMTP_PARSE_DONE);
	CHECK_INT(r.nlines, SMTP_REPLY_MAX_LINES);
	smtp_reply_free(&r);
	sbuf_free(&text);
}

TEST(test_smtp_reply_control_chars)
{
	struct smtp_reply r;
	size_t used;
	const char *err = NULL;

	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, "550 bad\tte\033xt\r\n", &used, &err),
	    SMTP_PARSE_DONE);
	CHECK_STR(sbuf_cstr(&r.text), "550 bad?te?xt");
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_dsn)
{
	static const struct {
		const char *reply;
		const char *dsn;
	} cases[] = {
		{"250 2.0.0 Ok\r\n", "2.0.0"},
		{"550 5.1.1 No such user\r\n", "5.1.1"},
		{"451 4.7.1 Try later\r\n", "4.7.1"},
		{"550 No such user\r\n", "5.0.0"},
		{"451 5.1.1 class mismatch\r\n", "4.0.0"},
		{"550 5.1 incomplete\r\n", "5.0.0"},
		{"550 5.1.1234 too long\r\n", "5.0.0"},
		{"421\r\n", "4.0.0"},
	};
	struct smtp_reply r;

	smtp_reply_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dsn[16];
		size_t used;
		const char *err = NULL;

		CHECK_INT(parse_all(&r, cases[i].reply, &used, &err),
		    SMTP_PARSE_DONE);
		smtp_reply_dsn(&r, dsn, sizeof(dsn));
		if (strcmp(dsn, cases[i].dsn) != 0)
			printf("  case %zu\n", i);
		CHECK_STR(dsn, cases[i].dsn);
	}
	smtp_reply_free(&r);
}

TEST(test_smtp_reply_ehlo_caps)
{
	const char *text = "250-mx.example ESMTP\r\n250-pipelining\r\n"
	    "250-SIZE 10240000\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n";
	struct smtp_reply r;
	unsigned long long size = 1;
	size_t used;
	const char *err = NULL;
	unsigned caps;

	smtp_reply_init(&r);
	CHECK_INT(parse_all(&r, text, &used, &err), SMTP_PARSE_DONE);
	caps = smtp_ehlo_parse(&r, &size);
	CHECK(caps & SMTP_CAP_PIPELINING);
	CHECK(caps & SMTP_CAP_SIZE);
	CHECK(caps & SMTP_CAP_8BITMIME);
	CHECK(caps & SMTP_CAP_ENHANCEDSTATUSCODES);
	CHECK_INT(size, 10240000);

	/* The greeting line is not a keyword, and SIZE may have no value. */
	CHECK_INT(parse_all(&r, "250-PIPELINING\r\n250 SIZE\r\n", &used,
	    &err), SMTP_PARSE_DONE);
	caps = smtp_ehlo_parse(&r, &size);
	CHECK_INT(caps, SMTP_CAP_SIZE);
	CHECK_INT(size, 0);
	smtp_reply_free(&r);
}

TEST_MAIN(
	TEST_CASE(test_smtp_reply_single_line),
	TEST_CASE(test_smtp_reply_multi_line),
	TEST_CASE(test_smtp_reply_bare_code_and_lf),
	TEST_CASE(test_smtp_reply_incremental),
	TEST_CASE(test_smtp_reply_truncated),
	TEST_CASE(test_smtp_reply_malformed),
	TEST_CASE(test_smtp_reply_line_too_long),
	TEST_CASE(test_smtp_reply_too_many_lines),
	TEST_CASE(test_smtp_reply_control_chars),
	TEST_CASE(test_smtp_reply_dsn),
	TEST_CASE(test_smtp_reply_ehlo_caps)
)
