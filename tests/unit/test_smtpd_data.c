/*
 * Tests of the smtpd DATA state machine: end detection at every chunk
 * boundary, dot-unstuffing, bare CR and LF in both modes, size limits.
 */
#include <string.h>

#include "sbuf.h"
#include "smtpd.h"
#include "testlib.h"

struct collected {
	struct sbuf out;
	int fail;       /* the sink returns -1 when set */
	int calls;
};

static int collect(void *ctx, const char *data, size_t len)
{
	struct collected *c = ctx;

	c->calls++;
	if (c->fail)
		return -1;
	return sbuf_append(&c->out, data, len);
}

struct run_result {
	size_t consumed;  /* bytes the machine took before it stopped */
	int done;
	int flags;
	unsigned long long size;
	char *out;        /* what reached the sink (caller frees) */
};

/* Feeds in[0..split) then in[split..len), as two reads would. */
static struct run_result run_split(const char *in, size_t len, size_t split,
    int normalize, unsigned long long size_limit, size_t header_limit)
{
	struct smtpd_data *d = xmalloc(sizeof(*d));
	struct collected c;
	struct run_result r;

	memset(&c, 0, sizeof(c));
	sbuf_init(&c.out, 0);
	smtpd_data_init(d, normalize, size_limit, header_limit, collect, &c);
	r.consumed = smtpd_data_feed(d, in, split);
	if (!smtpd_data_done(d))
		r.consumed += smtpd_data_feed(d, in + split, len - split);
	r.done = smtpd_data_done(d);
	r.flags = d->flags;
	r.size = d->size;
	r.out = xstrdup(sbuf_cstr(&c.out));
	sbuf_free(&c.out);
	free(d);
	return r;
}

static struct run_result run(const char *in, int normalize)
{
	return run_split(in, strlen(in), 0, normalize, 0, 0);
}

TEST(test_smtpd_data_every_split)
{
	static const char in[] =
	    "Subject: hello\r\n"
	    "X-Long: a\r\n"
	    "\tcontinued\r\n"
	    "\r\n"
	    "body line\r\n"
	    "..starts with a dot\r\n"
	    ".\r\n"
	    "QUIT\r\n";
	static const char want[] =
	    "Subject: hello\n"
	    "X-Long: a\n"
	    "\tcontinued\n"
	    "\n"
	    "body line\n"
	    ".starts with a dot\n";
	size_t len = strlen(in), end = len - strlen("QUIT\r\n");

	for (size_t split = 0; split <= len; split++) {
		struct run_result r = run_split(in, len, split, 0, 0, 0);
		int failed_before = testlib_case_failed;

		CHECK_INT(r.done, 1);
		CHECK_INT(r.consumed, end);
		CHECK_INT(r.flags, 0);
		CHECK_STR(r.out, want);
		CHECK_INT(r.size, strlen(want));
		if (testlib_case_failed && !failed_before)
			printf("  at split %zu\n", split);
		free(r.out);
	}
}

TEST(test_smtpd_data_byte_by_byte)
{
	static const char in[] = "a\r\n..\r\n.x\r\n\r\n.\r\nRSET\r\n";
	struct smtpd_data d;
	struct collected c;
	size_t consumed = 0;

	memset(&c, 0, sizeof(c));
	sbuf_init(&c.out, 0);
	smtpd_data_init(&d, 0, 0, 0, collect, &c);
	for (size_t i = 0; i < strlen(in) && !smtpd_data_done(&d); i++)
		consumed += smtpd_data_feed(&d, in + i, 1);
	CHECK_INT(smtpd_data_done(&d), 1);
	CHECK_INT(consumed, strlen(in) - strlen("RSET\r\n"));
	CHECK_STR(sbuf_cstr(&c.out), "a\n.\nx\n\n");
	sbuf_free(&c.out);
}

TEST(test_smtpd_data_empty_message)
{
	struct run_result r = run(".\r\n", 0);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.consumed, 3);
	CHECK_STR(r.out, "");
	free(r.out);
}

TEST(test_smtpd_data_no_end_yet)
{
	static const char *const inputs[] = {
		"text\r\n",
		"text\r\n.",
		"text\r\n.\r",
		"text\r\n.x\r\n",
		"text\r.\r\n",        /* the CR before the dot is bare */
		"text\r\n.\n",        /* LF after the dot is bare */
		" .\r\n",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct run_result r = run(inputs[i], 0);
		int failed_before = testlib_case_failed;

		CHECK_INT(r.done, 0);
		CHECK_INT(r.consumed, strlen(inputs[i]));
		if (testlib_case_failed && !failed_before)
			printf("  in case %zu\n", i);
		free(r.out);
	}
}

TEST(test_smtpd_data_bare_lf_rejected)
{
	struct run_result r = run("line one\nline two\r\n.\r\n", 0);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.flags, SMTPD_DATA_BARE_LF);
	CHECK_STR(r.out, "");
	free(r.out);
}

TEST(test_smtpd_data_bare_cr_rejected)
{
	struct run_result r = run("line one\rline two\r\n.\r\n", 0);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.flags, SMTPD_DATA_BARE_CR);
	free(r.out);
}

/* "<LF>.<CRLF>" is not the end in either mode (SMTP smuggling). */
TEST(test_smtpd_data_smuggling_reject)
{
	static const char in[] =
	    "a\r\n.\nMAIL FROM:<x@y>\r\n\r\n.\r\n";
	struct run_result r = run(in, 0);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.consumed, strlen(in));
	CHECK(r.flags & SMTPD_DATA_BARE_LF);
	free(r.out);

	r = run("a\n.\r\nRCPT TO:<x@y>\r\n.\r\n", 0);
	CHECK_INT(r.done, 1);
	CHECK_INT(r.consumed, strlen("a\n.\r\nRCPT TO:<x@y>\r\n.\r\n"));
	free(r.out);
}

TEST(test_smtpd_data_smuggling_normalize)
{
	static const char in[] = "a\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\n";
	struct run_result r = run(in, 1);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.consumed, strlen(in));
	CHECK_INT(r.flags, 0);
	CHECK_STR(r.out, "a\n.\nMAIL FROM:<x@y>\n\n");
	free(r.out);
}

TEST(test_smtpd_data_normalize)
{
	struct run_result r = run("H: v\nb\rc\r\rd\r\n..e\n..f\r\n.\r\n", 1);

	CHECK_INT(r.done, 1);
	CHECK_INT(r.flags, 0);
	CHECK_STR(r.out, "H: v\nb\nc\n\nd\n.e\n.f\n");
	free(r.out);
}

TEST(test_smtpd_data_dot_stuffing)
{
	struct run_result r = run("..\r\n...\r\n.a.\r\nb.\r\n.\r\n", 0);

	CHECK_INT(r.done, 1);
	CHECK_STR(r.out, ".\n..\na.\nb.\n");
	free(r.out);
}

TEST(test_smtpd_data_size_limit)
{
	static const char fits[] = "123456789\r\n.\r\n";
	static const char over[] = "1234567890\r\n.\r\nNOOP\r\n";
	struct run_result r;

	r = run_split(fits, strlen(fits), 5, 0, 10, 0);
	CHECK_INT(r.done, 1);
	CHECK_INT(r.flags, 0);
	CHECK_STR(r.out, "123456789\n");
	free(r.out);

	r = run_split(over, strlen(over), 5, 0, 10, 0);
	CHECK_INT(r.done, 1);
	CHECK_INT(r.consumed, strlen(over) - strlen("NOOP\r\n"));
	CHECK_INT(r.flags, SMTPD_DATA_TOO_BIG);
	CHECK_STR(r.out, "");
	free(r.out);
}

TEST(test_smtpd_data_header_limit)
{
	struct run_result r;

	r = run_split("Subject: 0123456789012345\r\n\r\nb\r\n.\r\n",
	    strlen("Subject: 0123456789012345\r\n\r\nb\r\n.\r\n"), 0, 0, 0, 20);
	CHECK_INT(r.flags, SMTPD_DATA_HEADER_TOO_BIG);
	CHECK_INT(r.done, 1);
	free(r.out);

	/* A continuation line belongs to the same header. */
	r = run_split("X: 0123456789\r\n 0123456789\r\n\r\n.\r\n",
	    strlen("X: 0123456789\r\n 0123456789\r\n\r\n.\r\n"), 0, 0, 0, 20);
	CHECK_INT(r.flags, SMTPD_DATA_HEADER_TOO_BIG);
	free(r.out);

	/* Each header is measured on its own. */
	r = run_split("A: 0123456789\r\nB: 0123456789\r\n\r\n.\r\n",
	    strlen("A: 0123456789\r\nB: 0123456789\r\n\r\n.\r\n"), 0, 0, 0, 20);
	CHECK_INT(r.flags, 0);
	free(r.out);

	/* Body lines and a first line that is no header are not headers. */
	r = run_split("A: b\r\n\r\n0123456789012345678901234\r\n.\r\n",
	    strlen("A: b\r\n\r\n0123456789012345678901234\r\n.\r\n"), 0, 0,
	    0, 20);
	CHECK_INT(r.flags, 0);
	free(r.out);
	r = run_split("no header here at all, just text\r\n.\r\n",
	    strlen("no header here at all, just text\r\n.\r\n"), 0, 0, 0, 20);
	CHECK_INT(r.flags, 0);
	free(r.out);
}

TEST(test_smtpd_data_large_body)
{
	struct sbuf in, want;
	struct run_result r;

	sbuf_init(&in, 0);
	sbuf_init(&want, 0);
	for (int i = 0; i < 3000; i++) {
		sbuf_printf(&in, "%s%04d line of the body, long enough\r\n",
		    i % 7 == 0 ? ".." : "", i);
		sbuf_printf(&want, "%s%04d line of the body, long enough\n",
		    i % 7 == 0 ? "." : "", i);
	}
	sbuf_puts(&in, ".\r\n");
	for (size_t split = 1; split < in.len; split += 4099) {
		int failed_before = testlib_case_failed;

		r = run_split(in.data, in.len, split, 0, 0, 0);
		CHECK_INT(r.done, 1);
		CHECK_INT(r.consumed, in.len);
		CHECK_INT(strlen(r.out), want.len);
		CHECK(strcmp(r.out, want.data) == 0);
		if (testlib_case_failed && !failed_before)
			printf("  at split %zu\n", split);
		free(r.out);
	}
	sbuf_free(&in);
	sbuf_free(&want);
}

TEST(test_smtpd_data_sink_failure)
{
	static const char in[] = "a\r\nb\r\n.\r\n";
	struct smtpd_data d;
	struct collected c;

	memset(&c, 0, sizeof(c));
	sbuf_init(&c.out, 0);
	c.fail = 1;
	smtpd_data_init(&d, 0, 0, 0, collect, &c);
	CHECK_INT(smtpd_data_feed(&d, in, strlen(in)), strlen(in));
	CHECK_INT(smtpd_data_done(&d), 1);
	CHECK_INT(d.flags, SMTPD_DATA_WRITE_ERROR);
	CHECK_INT(c.calls, 1);
	sbuf_free(&c.out);
}

TEST(test_smtpd_data_truncated_prefixes)
{
	static const char in[] = "A: b\r\n\r\n.x\r\n\r\n.\r\n";
	size_t len = strlen(in);

	/* No proper prefix ends the data, and each is consumed whole. */
	for (size_t n = 0; n < len; n++) {
		struct run_result r = run_split(in, n, 0, 0, 0, 0);
		int failed_before = testlib_case_failed;

		CHECK_INT(r.done, 0);
		CHECK_INT(r.consumed, n);
		if (testlib_case_failed && !failed_before)
			printf("  at prefix length %zu\n", n);
		free(r.out);
	}
}

TEST_MAIN(
	TEST_CASE(test_smtpd_data_every_split),
	TEST_CASE(test_smtpd_data_byte_by_byte),
	TEST_CASE(test_smtpd_data_empty_message),
	TEST_CASE(test_smtpd_data_no_end_yet),
	TEST_CASE(test_smtpd_data_bare_lf_rejected),
	TEST_CASE(test_smtpd_data_bare_cr_rejected),
	TEST_CASE(test_smtpd_data_smuggling_reject),
	TEST_CASE(test_smtpd_data_smuggling_normalize),
	TEST_CASE(test_smtpd_data_normalize),
	TEST_CASE(test_smtpd_data_dot_stuffing),
	TEST_CASE(test_smtpd_data_size_limit),
	TEST_CASE(test_smtpd_data_header_limit),
	TEST_CASE(test_smtpd_data_large_body),
	TEST_CASE(test_smtpd_data_sink_failure),
	TEST_CASE(test_smtpd_data_truncated_prefixes)
)
