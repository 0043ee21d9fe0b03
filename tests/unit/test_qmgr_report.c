/*
 * Unit tests of qmgr/report.c: RFC 3464 reports, header extraction and
 * xtext decoding.
 */
#define _GNU_SOURCE /* memmem */
#include <string.h>

#include "report.h"
#include "testlib.h"

static const char original[] =
    "Received: from x\nSubject: hi\n\nbody line\n--not-a-boundary\n";

/* A failed report for one remote recipient, built into out. */
static void build_failed(struct sbuf *out, const char *orig, size_t len,
    int headers_only)
{
	static const struct report_rcpt rcpt = {
		.addr = "bob@far.test",
		.orcpt = "rfc822;Bob+2BX@far.test",
		.status = "5.1.1",
		.reason = "host sink[127.0.0.1] said: 550 5.1.1 no such user",
		.remote_mta = "sink.far.test",
		.diagnostic = "550 5.1.1 no such user",
		.last_attempt = 1700000000,
	};
	struct report rep = {
		.action = REPORT_FAILED,
		.myhostname = "mail.example.test",
		.qid = "ORIGQID",
		.report_qid = "REPORTQID",
		.sender = "alice@example.test",
		.envid = "id+2B1",
		.arrival = 1700000000,
		.now = 1700000100,
		.rcpts = &rcpt,
		.nrcpt = 1,
		.original = orig,
		.original_len = len,
		.headers_only = headers_only,
	};

	sbuf_init(out, 0);
	CHECK_INT(report_build(&rep, out), 0);
}

static int has(const struct sbuf *sb, const char *s)
{
	return memmem(sb->data, sb->len, s, strlen(s)) != NULL;
}

TEST(test_qmgr_report_failed_fields)
{
	struct sbuf out;
	static const char *const want[] = {
		"From: MAILER-DAEMON@mail.example.test (Mail Delivery System)\n",
		"To: <alice@example.test>\n",
		"Subject: Undelivered Mail Returned to Sender\n",
		"Message-ID: <REPORTQID@mail.example.test>\n",
		"Auto-Submitted: auto-replied\n",
		"Content-Type: multipart/report; report-type=delivery-status;\n",
		"Content-Type: message/delivery-status\n\n"
		"Reporting-MTA: dns; mail.example.test\n",
		"X-Postern-Queue-ID: ORIGQID\n",
		"Original-Envelope-Id: id+1\n",
		"\nFinal-Recipient: rfc822; bob@far.test\n"
		"Original-Recipient: rfc822; Bob+X@far.test\n"
		"Action: failed\nStatus: 5.1.1\n"
		"Remote-MTA: dns; sink.far.test\n"
		"Diagnostic-Code: smtp; 550 5.1.1 no such user\n",
		"<bob@far.test>: 5.1.1 host sink[127.0.0.1] said: 550",
		"Content-Type: message/rfc822\n\n",
	};

	build_failed(&out, original, strlen(original), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!has(&out, want[i]))
			printf("  case %zu: missing \"%s\"\n", i, want[i]);
		CHECK(has(&out, want[i]));
	}
	CHECK(!has(&out, "Will-Retry-Until"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_original_exact)
{
	struct sbuf out;
	const char *start, *end;

	build_failed(&out, original, strlen(original), 0);
	sbuf_putc(&out, '\0');
	start = strstr(out.data, "Content-Type: message/rfc822\n\n");
	CHECK(start != NULL);
	if (start == NULL)
		goto done;
	start += strlen("Content-Type: message/rfc822\n\n");
	end = strstr(start, "\n--REPORTQID.");
	CHECK(end != NULL);
	if (end != NULL)
		CHECK_INT(memcmp(start, original, strlen(original)) == 0
		    && (size_t)(end - start) == strlen(original), 1);
done:
	sbuf_free(&out);
}

TEST(test_qmgr_report_boundary_avoids_content)
{
	struct sbuf out;
	const char *trap = "Subject: x\n\n--REPORTQID.0/mail.example.test\n";

	build_failed(&out, trap, strlen(trap), 0);
	CHECK(has(&out, "boundary=\"REPORTQID.1/mail.example.test\""));
	CHECK(has(&out, "\n--REPORTQID.1/mail.example.test--\n"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_headers_only)
{
	struct sbuf out;
	size_t hlen = report_header_len(original, strlen(original));

	build_failed(&out, original, hlen, 1);
	CHECK(has(&out, "Content-Type: text/rfc822-headers\n\n"
	    "Received: from x\nSubject: hi\n\n--REPORTQID.0/"));
	CHECK(!has(&out, "body line"));
	CHECK(!has(&out, "message/rfc822"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_8bit_declared)
{
	struct sbuf out;
	const char *orig = "Subject: x\n\ncaf\xc3\xa9\n";

	build_failed(&out, orig, strlen(orig), 0);
	CHECK(has(&out, "Content-Transfer-Encoding: 8bit\n\nThis is"));
	sbuf_free(&out);
	build_failed(&out, original, strlen(original), 0);
	CHECK(has(&out, "Content-Transfer-Encoding: 7bit\n"));
	CHECK(!has(&out, "8bit"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_delayed_fields)
{
	struct report_rcpt rcpt = {
		.addr = "bob@far.test", .status = "4.4.1",
		.reason = "connection refused",
	};
	struct report rep = {
		.action = REPORT_DELAYED, .myhostname = "h.test",
		.qid = "Q", .report_qid = "R", .sender = "a@h.test",
		.arrival = 1700000000, .now = 1700000100,
		.retry_until = 1700432000, .rcpts = &rcpt, .nrcpt = 1,
		.original = "S: x\n", .original_len = 5, .headers_only = 1,
	};
	struct sbuf out;

	sbuf_init(&out, 0);
	CHECK_INT(report_build(&rep, &out), 0);
	CHECK(has(&out, "Subject: Delayed Mail (still being retried)\n"));
	CHECK(has(&out, "Action: delayed\nStatus: 4.4.1\n"));
	CHECK(has(&out, "Will-Retry-Until: "));
	CHECK(!has(&out, "Remote-MTA"));
	CHECK(!has(&out, "Diagnostic-Code"));
	CHECK(!has(&out, "Original-Recipient"));
	CHECK(!has(&out, "Original-Envelope-Id"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_long_diagnostic_folded)
{
	char diag[1500];
	struct report_rcpt rcpt = {
		.addr = "b@f.test", .status = "5.0.0", .reason = "r",
		.diagnostic = diag,
	};
	struct report rep = {
		.action = REPORT_FAILED, .myhostname = "h.test", .qid = "Q",
		.report_qid = "R", .sender = "a@h.test", .rcpts = &rcpt,
		.nrcpt = 1, .original = "", .original_len = 0,
	};
	struct sbuf out;
	size_t line = 0;

	for (size_t i = 0; i + 1 < sizeof(diag); i++)
		diag[i] = i % 10 == 9 ? ' ' : 'x';
	diag[sizeof(diag) - 1] = '\0';
	sbuf_init(&out, 0);
	CHECK_INT(report_build(&rep, &out), 0);
	for (size_t i = 0; i < out.len; i++) {
		line = out.data[i] == '\n' ? 0 : line + 1;
		CHECK(line <= 998);
		if (line > 998)
			break;
	}
	CHECK(has(&out, "Diagnostic-Code: smtp; xxxxxxxxx xxxxxxxxx"));
	CHECK(has(&out, "xxxxxxxxx\n xxxxxxxxx xxxxxxxxx"));
	sbuf_free(&out);
}

TEST(test_qmgr_report_header_len_table)
{
	static const struct {
		const char *msg;
		size_t want;
	} cases[] = {
		{ "A: 1\nB: 2\n\nbody\n", 10 },
		{ "\nbody\n", 0 },
		{ "A: 1\n", 5 },
		{ "A: 1\nB: 2", 5 },      /* cut after the last complete line */
		{ "", 0 },
		{ "A: 1\n\n", 5 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = report_header_len(cases[i].msg,
		    strlen(cases[i].msg));

		if (got != cases[i].want)
			printf("  case %zu\n", i);
		CHECK_INT(got, cases[i].want);
	}
}

TEST(test_qmgr_report_xtext_table)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "a+2Bb", "a+b" },
		{ "+3D", "=" },
		{ "+0A", "?" },          /* control character hidden */
		{ "+", "+" },            /* truncated escapes stay as they are */
		{ "+4", "+4" },
		{ "+zz", "+zz" },
		{ "+2b", "+2b" },        /* hex digits are uppercase */
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = report_xtext_decode(cases[i].in);

		if (strcmp(got, cases[i].want) != 0)
			printf("  case %zu\n", i);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
}

TEST_MAIN(
	TEST_CASE(test_qmgr_report_failed_fields),
	TEST_CASE(test_qmgr_report_original_exact),
	TEST_CASE(test_qmgr_report_boundary_avoids_content),
	TEST_CASE(test_qmgr_report_headers_only),
	TEST_CASE(test_qmgr_report_8bit_declared),
	TEST_CASE(test_qmgr_report_delayed_fields),
	TEST_CASE(test_qmgr_report_long_diagnostic_folded),
	TEST_CASE(test_qmgr_report_header_len_table),
	TEST_CASE(test_qmgr_report_xtext_table)
)
