/*
 * Unit tests of the pieces of a local delivery that need no queue:
 * Maildir file names, the headers local adds, the loop scan of a header
 * block and the mbox "From " line.
 */
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "config.h"
#include "local.h"
#include "sbuf.h"
#include "testlib.h"

TEST(test_local_maildir_unique_name)
{
	struct timeval tv = {.tv_sec = 1700000000, .tv_usec = 42};
	char out[128];

	CHECK_INT(maildir_unique_name(out, sizeof(out), &tv, 1234, 7,
	    "mail.example.test"), 0);
	CHECK_STR(out, "1700000000.M42P1234Q7.mail.example.test");
}

TEST(test_local_maildir_unique_name_escapes_host)
{
	struct timeval tv = {.tv_sec = 5, .tv_usec = 999999};
	char out[128];

	CHECK_INT(maildir_unique_name(out, sizeof(out), &tv, 1, 1, "a/b:c"), 0);
	CHECK_STR(out, "5.M999999P1Q1.a\\057b\\072c");
}

TEST(test_local_maildir_unique_name_too_small)
{
	struct timeval tv = {.tv_sec = 1700000000, .tv_usec = 42};
	char out[16];

	memset(out, 'x', sizeof(out));
	CHECK_INT(maildir_unique_name(out, sizeof(out), &tv, 1234, 7, "host"), -1);
	/* Exactly fits: "1.M2P3Q4.h" is 10 bytes plus the NUL. */
	tv.tv_sec = 1;
	tv.tv_usec = 2;
	CHECK_INT(maildir_unique_name(out, 11, &tv, 3, 4, "h"), 0);
	CHECK_STR(out, "1.M2P3Q4.h");
	CHECK_INT(maildir_unique_name(out, 10, &tv, 3, 4, "h"), -1);
}

TEST(test_local_maildir_unique_names_differ)
{
	struct timeval tv = {.tv_sec = 1, .tv_usec = 1};
	char a[64], b[64];

	maildir_unique_name(a, sizeof(a), &tv, 10, 1, "h");
	maildir_unique_name(b, sizeof(b), &tv, 10, 2, "h");
	CHECK(strcmp(a, b) != 0);
}

TEST(test_local_delivery_prefix_plain)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_INT(local_delivery_prefix(&sb, "joe@example.org",
	    "alice@example.test"), 0);
	CHECK_STR(sbuf_cstr(&sb), "Return-Path: <joe@example.org>\n"
	    "Delivered-To: alice@example.test\n");
	sbuf_free(&sb);
}

TEST(test_local_delivery_prefix_null_sender)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_INT(local_delivery_prefix(&sb, "", "bob@example.test"), 0);
	CHECK_STR(sbuf_cstr(&sb), "Return-Path: <>\n"
	    "Delivered-To: bob@example.test\n");
	sbuf_free(&sb);
}

TEST(test_local_delivery_prefix_quoted_local_part)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_INT(local_delivery_prefix(&sb, "john doe@example.org",
	    "bob@example.test"), 0);
	CHECK_STR(sbuf_cstr(&sb), "Return-Path: <\"john doe\"@example.org>\n"
	    "Delivered-To: bob@example.test\n");
	sbuf_free(&sb);
}

TEST(test_local_header_scan_counts_received)
{
	static const char h[] =
	    "Received: from a\n\tby b\n"
	    "received: from c\n"
	    "X-Received: not counted\n"
	    "Subject: Received: not a field\n";
	int received, delivered;

	local_header_scan(h, strlen(h), "alice@example.test", &received,
	    &delivered);
	CHECK_INT(received, 2);
	CHECK_INT(delivered, 0);
}

TEST(test_local_header_scan_finds_delivered_to)
{
	static const struct {
		const char *header;
		int want;
	} cases[] = {
		{"Delivered-To: alice@example.test\n", 1},
		{"delivered-to:ALICE@Example.TEST\n", 1},
		{"Delivered-To: <alice@example.test>  \n", 1},
		{"Delivered-To:\n alice@example.test\n", 1},
		{"Delivered-To: alice@example.test.org\n", 0},
		{"Delivered-To: bob@example.test\n", 0},
		{"X-Delivered-To: alice@example.test\n", 0},
		/* The body is not part of the header block. */
		{"Subject: x\n\nDelivered-To: alice@example.test\n", 0},
		/* Truncated: no newline at the end. */
		{"Delivered-To: alice@example.test", 1},
		{"Delivered-To", 0},
		{"", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int received, delivered;

		local_header_scan(cases[i].header, strlen(cases[i].header),
		    "alice@example.test", &received, &delivered);
		if (delivered != cases[i].want)
			printf("  case %zu: \"%s\"\n", i, cases[i].header);
		CHECK_INT(delivered, cases[i].want);
	}
}

TEST(test_local_mbox_from_line)
{
	struct sbuf sb;
	time_t when = 0;
	const char *s;

	sbuf_init(&sb, 0);
	CHECK_INT(mbox_from_line(&sb, "joe@example.org", when), 0);
	s = sbuf_cstr(&sb);
	CHECK(strncmp(s, "From joe@example.org ", 21) == 0);
	CHECK(s[sb.len - 1] == '\n');
	/* "Thu Jan  1 00:00:00 1970" in UTC; the zone may move the hour. */
	CHECK_INT(strlen(s + 21), 25);
	sbuf_reset(&sb);
	CHECK_INT(mbox_from_line(&sb, "", when), 0);
	CHECK(strncmp(sbuf_cstr(&sb), "From MAILER-DAEMON ", 19) == 0);
	sbuf_free(&sb);
}

TEST_MAIN(
	TEST_CASE(test_local_maildir_unique_name),
	TEST_CASE(test_local_maildir_unique_name_escapes_host),
	TEST_CASE(test_local_maildir_unique_name_too_small),
	TEST_CASE(test_local_maildir_unique_names_differ),
	TEST_CASE(test_local_delivery_prefix_plain),
	TEST_CASE(test_local_delivery_prefix_null_sender),
	TEST_CASE(test_local_delivery_prefix_quoted_local_part),
	TEST_CASE(test_local_header_scan_counts_received),
	TEST_CASE(test_local_header_scan_finds_delivered_to),
	TEST_CASE(test_local_mbox_from_line)
)
