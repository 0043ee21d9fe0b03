/*
 * Unit tests of lib/mastercf.c: columns, defaults, -o overrides,
 * continuation lines and malformed input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "mastercf.h"

static const char sample[] =
    "# service type  private unpriv  chroot  wakeup  maxproc command\n"
    "127.0.0.1:2525 inet n - n - - smtpd\n"
    "submission inet n - y - 4 smtpd\n"
    "  -o smtpd_sasl_auth_enable=yes\n"
    "# a comment inside the entry\n"
    "  -o { smtpd_relay_restrictions = permit_sasl_authenticated, reject }\n"
    "  -osmtpd_tls_security_level=encrypt extra-arg\n"
    "\n"
    "qmgr unix n - n 300? 1 qmgr\n"
    "local unix - n n - - local -v\n"
    "[::1]:25 inet n - n - - smtpd\n";

TEST(test_mastercf_sample)
{
	struct mastercf_entry *e = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(mastercf_parse(sample, "master.cf", &e, &n, &err), 0);
	CHECK(err == NULL);
	CHECK_INT(n, 5);
	if (n != 5)
		return;

	CHECK_STR(e[0].service, "127.0.0.1:2525");
	CHECK_STR(e[0].type, "inet");
	CHECK_INT(e[0].private_, 0);
	CHECK_INT(e[0].unpriv, 1);
	CHECK_INT(e[0].chroot, 0);
	CHECK_INT(e[0].wakeup, 0);
	CHECK_INT(e[0].maxproc, -1);
	CHECK_STR(e[0].command, "smtpd");
	CHECK_INT(e[0].noverrides, 0);
	CHECK_INT(e[0].nargs, 0);
	CHECK_INT(e[0].line, 2);

	CHECK_STR(e[1].service, "submission");
	CHECK_INT(e[1].chroot, 1);
	CHECK_INT(e[1].maxproc, 4);
	CHECK_INT(e[1].line, 3);
	CHECK_INT(e[1].noverrides, 3);
	if (e[1].noverrides == 3) {
		CHECK_STR(e[1].overrides[0], "smtpd_sasl_auth_enable=yes");
		CHECK_STR(e[1].overrides[1],
		    "smtpd_relay_restrictions=permit_sasl_authenticated, reject");
		CHECK_STR(e[1].overrides[2], "smtpd_tls_security_level=encrypt");
	}
	CHECK_INT(e[1].nargs, 1);
	if (e[1].nargs == 1)
		CHECK_STR(e[1].args[0], "extra-arg");

	CHECK_STR(e[2].service, "qmgr");
	CHECK_STR(e[2].type, "unix");
	CHECK_INT(e[2].wakeup, 300);
	CHECK_INT(e[2].maxproc, 1);
	CHECK_INT(e[2].line, 9);

	CHECK_INT(e[3].private_, 1);
	CHECK_INT(e[3].unpriv, 0);
	CHECK_INT(e[3].nargs, 1);
	if (e[3].nargs == 1)
		CHECK_STR(e[3].args[0], "-v");

	CHECK_STR(e[4].service, "[::1]:25");
	mastercf_free(&e, n);
	CHECK(e == NULL);
}

TEST(test_mastercf_empty_file)
{
	struct mastercf_entry *e = NULL;
	size_t n = 99;
	char *err = NULL;

	CHECK_INT(mastercf_parse("# only comments\n\n   \n", "master.cf", &e, &n,
	    &err), 0);
	CHECK_INT(n, 0);
	mastercf_free(&e, n);
}

TEST(test_mastercf_malformed)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
		{"smtp inet n - n - -\n", "master.cf, line 1: missing command column"},
		{"smtp inet\n", "master.cf, line 1: missing private column"},
		{"\n\nsmtp\n", "master.cf, line 3: missing type column"},
		{"smtp tcp n - n - - smtpd\n", "master.cf, line 1: invalid type \"tcp\""},
		{"smtp inet n - n - abc smtpd\n", "master.cf, line 1: invalid maxproc \"abc\""},
		{"smtp inet n - n - -5 smtpd\n", "master.cf, line 1: invalid maxproc \"-5\""},
		{"smtp inet n - n - 99999999999 smtpd\n", "master.cf, line 1: invalid maxproc"},
		{"smtp inet x - n - - smtpd\n", "master.cf, line 1: invalid value \"x\""},
		{"smtp inet n yes n - - smtpd\n", "master.cf, line 1: invalid value \"yes\""},
		{"smtp inet n - n soon - smtpd\n", "master.cf, line 1: invalid wakeup \"soon\""},
		{"smtp inet n - n ? - smtpd\n", "master.cf, line 1: invalid wakeup \"?\""},
		{"smtp inet n - n - - smtpd -o\n", "master.cf, line 1: service smtp: -o without"},
		{"smtp inet n - n - - smtpd -o novalue\n", "master.cf, line 1: service smtp: invalid override \"novalue\""},
		{"smtp inet n - n - - smtpd -o =x\n", "master.cf, line 1: service smtp: invalid override"},
		{"smtp inet n - n - - smtpd -o { a = b\n", "master.cf, line 1: service smtp: -o without"},
		{"  -o a=b\n", "master.cf, line 1: continuation line without"},
		{"smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n",
		    "master.cf, line 2: duplicate service smtp/inet, first defined on line 1"},
		{"127.0.0.1 inet n - n - - smtpd\n", "master.cf, line 1: invalid service \"127.0.0.1\""},
		{"host: inet n - n - - smtpd\n", "master.cf, line 1: invalid service \"host:\""},
		{"[::1 inet n - n - - smtpd\n", "master.cf, line 1: invalid service"},
		{"../qmgr unix n - n - - qmgr\n", "master.cf, line 1: invalid service name \"../qmgr\""},
		{"a/b unix n - n - - qmgr\n", "master.cf, line 1: invalid service name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mastercf_entry *e = NULL;
		size_t n = 0;
		char *err = NULL;
		int rc = mastercf_parse(cases[i].text, "master.cf", &e, &n, &err);
		int matched = err != NULL &&
		    strncmp(err, cases[i].message, strlen(cases[i].message)) == 0;
		if (rc != -1 || !matched)
			printf("  case %zu: rc %d, message \"%s\"\n", i, rc,
			    err ? err : "(null)");
		CHECK_INT(rc, -1);
		CHECK(matched);
		free(err);
		mastercf_free(&e, n);
	}
}

TEST(test_mastercf_same_name_other_type)
{
	struct mastercf_entry *e = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(mastercf_parse("smtp inet n - n - - smtpd\n"
	    "smtp unix - - n - - smtp\n", "master.cf", &e, &n, &err), 0);
	CHECK_INT(n, 2);
	mastercf_free(&e, n);
}

TEST(test_mastercf_truncated_input)
{
	size_t len = strlen(sample);

	/* Every prefix either parses or fails with a message naming a line. */
	for (size_t i = 0; i <= len; i++) {
		char *prefix = strndup(sample, i);
		struct mastercf_entry *e = NULL;
		size_t n = 0;
		char *err = NULL;
		int rc = mastercf_parse(prefix, "master.cf", &e, &n, &err);
		int ok = rc == 0 ? err == NULL :
		    err != NULL && strstr(err, "master.cf, line ") == err;
		if (!ok)
			printf("  prefix %zu: rc %d, message \"%s\"\n", i, rc,
			    err ? err : "(null)");
		CHECK(ok);
		free(err);
		mastercf_free(&e, n);
		free(prefix);
	}
}

TEST(test_mastercf_load_file)
{
	char path[] = "/tmp/test_mastercf.XXXXXX";
	struct mastercf_entry *e = NULL;
	size_t n = 0;
	char *err = NULL;

	CHECK_INT(mastercf_load("/nonexistent/master.cf", &e, &n, &err), -1);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "/nonexistent/master.cf") != NULL);
	free(err);
	err = NULL;

	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	const char text[] = "smtp inet n - n - - smtpd\nbad inet\n";
	CHECK_INT(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);
	CHECK_INT(mastercf_load(path, &e, &n, &err), -1);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, ", line 2: missing private column") != NULL);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strncmp(err, path, strlen(path)) == 0);
	free(err);
	unlink(path);
}

TEST_MAIN(
	TEST_CASE(test_mastercf_sample),
	TEST_CASE(test_mastercf_empty_file),
	TEST_CASE(test_mastercf_malformed),
	TEST_CASE(test_mastercf_same_name_other_type),
	TEST_CASE(test_mastercf_truncated_input),
	TEST_CASE(test_mastercf_load_file)
)
