/*
 * Tests of smtpd's command-line splitting and ESMTP parameter parsing.
 */
#include <limits.h>
#include <string.h>

#include "qfile.h"
#include "smtpd.h"
#include "testlib.h"

/* Names the table row whose checks failed first; failed_before is the
 * case's failure state before the row ran. */
static void report_case(int failed_before, size_t i, const char *input)
{
	if (testlib_case_failed && !failed_before)
		printf("  in case %zu: \"%s\"\n", i, input);
}

TEST(test_smtpd_params_split)
{
	static const struct {
		const char *line;
		size_t verb_len;
		const char *args;
	} cases[] = {
		{"EHLO client.example", 4, "client.example"},
		{"QUIT", 4, ""},
		{"MAIL   FROM:<a@b>", 4, "FROM:<a@b>"},
		{"NOOP \t x", 4, "x"},
		{"", 0, ""},
		{" leading", 0, "leading"},
		{"DATA ", 4, ""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		const char *args;
		int failed_before = testlib_case_failed;

		smtpd_cmd_split(cases[i].line, &n, &args);
		CHECK_INT(n, cases[i].verb_len);
		CHECK_STR(args, cases[i].args);
		report_case(failed_before, i, cases[i].line);
	}
}

TEST(test_smtpd_params_path_arg)
{
	CHECK_STR(smtpd_path_arg("FROM:<a@b>", "FROM"), "<a@b>");
	CHECK_STR(smtpd_path_arg("from:<a@b> SIZE=1", "FROM"), "<a@b> SIZE=1");
	CHECK_STR(smtpd_path_arg("FROM: <a@b>", "FROM"), "<a@b>");
	CHECK_STR(smtpd_path_arg("To:<x@y>", "TO"), "<x@y>");
	CHECK_STR(smtpd_path_arg("FROM:", "FROM"), "");
	CHECK(smtpd_path_arg("FROM <a@b>", "FROM") == NULL);
	CHECK(smtpd_path_arg("FRO:<a@b>", "FROM") == NULL);
	CHECK(smtpd_path_arg("TO:<a@b>", "FROM") == NULL);
	CHECK(smtpd_path_arg("", "FROM") == NULL);
}

TEST(test_smtpd_params_mail_ok)
{
	struct smtpd_mail_params p;
	char reply[SMTPD_REPLY_MAX] = "";

	CHECK_INT(smtpd_parse_mail_params("", 0, &p, reply, sizeof(reply)), 0);
	CHECK_INT(p.size_given, 0);
	CHECK_INT(p.body, SMTPD_BODY_NONE);

	CHECK_INT(smtpd_parse_mail_params(" SIZE=12345 BODY=8bitmime", 0, &p,
	    reply, sizeof(reply)), 0);
	CHECK_INT(p.size_given, 1);
	CHECK(p.size == 12345);
	CHECK_INT(p.body, SMTPD_BODY_8BITMIME);

	CHECK_INT(smtpd_parse_mail_params("body=7BIT AUTH=<>", 0, &p, reply,
	    sizeof(reply)), 0);
	CHECK_INT(p.body, SMTPD_BODY_7BIT);
	CHECK_INT(p.auth_given, 1);

	CHECK_INT(smtpd_parse_mail_params("AUTH=user+40example.com", 0, &p,
	    reply, sizeof(reply)), 0);
	CHECK_INT(p.auth_given, 1);
}

TEST(test_smtpd_params_size_overflow)
{
	struct smtpd_mail_params p;
	char reply[SMTPD_REPLY_MAX];

	CHECK_INT(smtpd_parse_mail_params("SIZE=99999999999999999999999999",
	    0, &p, reply, sizeof(reply)), 0);
	CHECK(p.size == ULLONG_MAX);
	CHECK_INT(smtpd_parse_mail_params("SIZE=18446744073709551615", 0, &p,
	    reply, sizeof(reply)), 0);
	CHECK(p.size == ULLONG_MAX);
	CHECK_INT(smtpd_parse_mail_params("SIZE=0", 0, &p, reply,
	    sizeof(reply)), 0);
	CHECK(p.size == 0);
}

TEST(test_smtpd_params_mail_bad)
{
	static const struct {
		const char *rest;
		const char *reply;
	} cases[] = {
		{"SIZE", "501 5.5.4 Bad SIZE parameter syntax"},
		{"SIZE=", "501 5.5.4 Bad SIZE parameter syntax"},
		{"SIZE=-1", "501 5.5.4 Bad SIZE parameter syntax"},
		{"SIZE=12k", "501 5.5.4 Bad SIZE parameter syntax"},
		{"SIZE=1 SIZE=2", "501 5.5.4 Bad SIZE parameter syntax"},
		{"BODY=BINARYMIME", "501 5.5.4 Bad BODY parameter syntax"},
		{"BODY", "501 5.5.4 Bad BODY parameter syntax"},
		{"BODY=7BIT BODY=7BIT", "501 5.5.4 Bad BODY parameter syntax"},
		{"AUTH=", "501 5.5.4 Bad AUTH parameter syntax"},
		{"AUTH=a=b", "501 5.5.4 Bad AUTH parameter syntax"},
		{"AUTH=a+4", "501 5.5.4 Bad AUTH parameter syntax"},
		{"AUTH=a+zz", "501 5.5.4 Bad AUTH parameter syntax"},
		{"SMTPUTF8", "555 5.5.4 Unsupported option: SMTPUTF8"},
		{"FOO=bar", "555 5.5.4 Unsupported option: FOO"},
		{"RET=FULL", "555 5.5.4 Unsupported option: RET"},
		{"ENVID=abc", "555 5.5.4 Unsupported option: ENVID"},
		{"=x", "501 5.5.4 Bad parameter syntax"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtpd_mail_params p;
		char reply[SMTPD_REPLY_MAX] = "";
		int failed_before = testlib_case_failed;

		CHECK_INT(smtpd_parse_mail_params(cases[i].rest, 0, &p, reply,
		    sizeof(reply)), -1);
		CHECK_STR(reply, cases[i].reply);
		report_case(failed_before, i, cases[i].rest);
	}
}

TEST(test_smtpd_params_too_long)
{
	struct smtpd_mail_params p;
	char reply[SMTPD_REPLY_MAX] = "";
	char rest[2000];

	memcpy(rest, "SIZE=", 5);
	memset(rest + 5, '1', sizeof(rest) - 6);
	rest[sizeof(rest) - 1] = '\0';
	CHECK_INT(smtpd_parse_mail_params(rest, 0, &p, reply, sizeof(reply)),
	    -1);
	CHECK_STR(reply, "501 5.5.4 Parameter too long");
}

TEST(test_smtpd_params_dsn_mail)
{
	struct smtpd_mail_params p;
	char reply[SMTPD_REPLY_MAX] = "";
	char longid[120];

	CHECK_INT(smtpd_parse_mail_params("RET=HDRS ENVID=QQ+2B1", SMTPD_EXT_DSN,
	    &p, reply, sizeof(reply)), 0);
	CHECK_INT(p.ret, SMTPD_RET_HDRS);
	CHECK_STR(p.envid, "QQ+2B1");

	CHECK_INT(smtpd_parse_mail_params("RET=ALL", SMTPD_EXT_DSN, &p, reply,
	    sizeof(reply)), -1);
	CHECK_STR(reply, "501 5.5.4 Bad RET parameter syntax");

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memcpy(longid, "ENVID=", 6);
	CHECK_INT(smtpd_parse_mail_params(longid, SMTPD_EXT_DSN, &p, reply,
	    sizeof(reply)), -1);
	CHECK_STR(reply, "501 5.5.4 Bad ENVID parameter syntax");
}

TEST(test_smtpd_params_rcpt)
{
	struct smtpd_rcpt_params p;
	char reply[SMTPD_REPLY_MAX] = "";

	CHECK_INT(smtpd_parse_rcpt_params("", 0, &p, reply, sizeof(reply)), 0);
	CHECK_INT(p.notify, 0);
	CHECK_STR(p.orcpt, "");

	CHECK_INT(smtpd_parse_rcpt_params("NOTIFY=NEVER", 0, &p, reply,
	    sizeof(reply)), -1);
	CHECK_STR(reply, "555 5.5.4 Unsupported option: NOTIFY");

	CHECK_INT(smtpd_parse_rcpt_params("NOTIFY=SUCCESS,delay "
	    "ORCPT=rfc822;a+40b.example", SMTPD_EXT_DSN, &p, reply,
	    sizeof(reply)), 0);
	CHECK_INT(p.notify, QNOTIFY_SUCCESS | QNOTIFY_DELAY);
	CHECK_STR(p.orcpt, "rfc822;a+40b.example");
}

TEST(test_smtpd_params_rcpt_bad)
{
	static const struct {
		const char *rest;
		const char *reply;
	} cases[] = {
		{"NOTIFY=", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=NEVER,SUCCESS", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=SUCCESS,,DELAY", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=SUCCESS,", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=,SUCCESS", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"NOTIFY=SOMETIMES", "501 5.5.4 Bad NOTIFY parameter syntax"},
		{"ORCPT=rfc822", "501 5.5.4 Bad ORCPT parameter syntax"},
		{"ORCPT=;a@b", "501 5.5.4 Bad ORCPT parameter syntax"},
		{"ORCPT=rfc822;", "501 5.5.4 Bad ORCPT parameter syntax"},
		{"ORCPT=rfc822;a+4", "501 5.5.4 Bad ORCPT parameter syntax"},
		{"ORCPT=rfc<822;a", "501 5.5.4 Bad ORCPT parameter syntax"},
		{"SIZE=10", "555 5.5.4 Unsupported option: SIZE"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtpd_rcpt_params p;
		char reply[SMTPD_REPLY_MAX] = "";
		int failed_before = testlib_case_failed;

		CHECK_INT(smtpd_parse_rcpt_params(cases[i].rest, SMTPD_EXT_DSN,
		    &p, reply, sizeof(reply)), -1);
		CHECK_STR(reply, cases[i].reply);
		report_case(failed_before, i, cases[i].rest);
	}
}

TEST(test_smtpd_params_xtext)
{
	CHECK_INT(smtpd_xtext_valid("abc", 3), 1);
	CHECK_INT(smtpd_xtext_valid("a+2Bb", 5), 1);
	CHECK_INT(smtpd_xtext_valid("", 0), 1);
	CHECK_INT(smtpd_xtext_valid("a+2b", 4), 0);
	CHECK_INT(smtpd_xtext_valid("a+2", 3), 0);
	CHECK_INT(smtpd_xtext_valid("a+", 2), 0);
	CHECK_INT(smtpd_xtext_valid("a b", 3), 0);
	CHECK_INT(smtpd_xtext_valid("a=b", 3), 0);
	CHECK_INT(smtpd_xtext_valid("a\x80", 2), 0);
}

TEST_MAIN(
	TEST_CASE(test_smtpd_params_split),
	TEST_CASE(test_smtpd_params_path_arg),
	TEST_CASE(test_smtpd_params_mail_ok),
	TEST_CASE(test_smtpd_params_size_overflow),
	TEST_CASE(test_smtpd_params_mail_bad),
	TEST_CASE(test_smtpd_params_too_long),
	TEST_CASE(test_smtpd_params_dsn_mail),
	TEST_CASE(test_smtpd_params_rcpt),
	TEST_CASE(test_smtpd_params_rcpt_bad),
	TEST_CASE(test_smtpd_params_xtext)
)
