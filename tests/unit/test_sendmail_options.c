/* Unit tests of the sendmail command-line parser. */
#include "options.h"
#include "qfile.h"
#include "sbuf.h"
#include "testlib.h"

/* Parses a NULL-terminated argument list; returns the parser's result. */
static int parse(char **argv, const char *progname, struct sm_options *o,
    struct sbuf *warnings, char **err)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	sbuf_init(warnings, 4096);
	*err = NULL;
	return sm_options_parse(argc, argv, progname, o, warnings, err);
}

TEST(test_sendmail_options_deliver)
{
	char *argv[] = {"sendmail", "-t", "-oi", "-f", "a@b.test", "-Fname",
	    "-C", "/etc/x", "rcpt@c.test", "-x", NULL};
	struct sm_options o;
	struct sbuf w;
	char *err;

	CHECK_INT(parse(argv, "sendmail", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_DELIVER);
	CHECK_INT(o.extract_rcpts, 1);
	CHECK_INT(o.ignore_dots, 1);
	CHECK_STR(o.sender, "a@b.test");
	CHECK_STR(o.fullname, "name");
	CHECK_STR(o.config_dir, "/etc/x");
	/* Options end at the first recipient. */
	CHECK_INT(o.nrcpt, 2);
	CHECK_STR(o.rcpts[0], "rcpt@c.test");
	CHECK_STR(o.rcpts[1], "-x");
	CHECK_STR(sbuf_cstr(&w), "");
	sbuf_free(&w);
}

TEST(test_sendmail_options_modes)
{
	char *bp[] = {"sendmail", "-bp", NULL};
	char *bi[] = {"sendmail", "-b", "i", NULL};
	char *q[] = {"sendmail", "-q30m", NULL};
	char *none[] = {"x", NULL};
	struct sm_options o;
	struct sbuf w;
	char *err;

	CHECK_INT(parse(bp, "sendmail", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_MAILQ);
	sbuf_free(&w);
	CHECK_INT(parse(bi, "sendmail", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_NEWALIASES);
	sbuf_free(&w);
	CHECK_INT(parse(q, "sendmail", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_FLUSH);
	sbuf_free(&w);
	CHECK_INT(parse(none, "mailq", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_MAILQ);
	sbuf_free(&w);
	CHECK_INT(parse(none, "newaliases", &o, &w, &err), 0);
	CHECK_INT(o.mode, SM_MODE_NEWALIASES);
	sbuf_free(&w);
}

TEST(test_sendmail_options_rejected)
{
	static char *cases[][4] = {
		{"sendmail", "-bs", NULL, NULL},
		{"sendmail", "-bd", NULL, NULL},
		{"sendmail", "-f", NULL, NULL},
		{"sendmail", "-b", NULL, NULL},
		{"sendmail", "-N", "sometimes", NULL},
		{"sendmail", "-R", "body", NULL},
		{"sendmail", "-V", "a=b", NULL},
		{"sendmail", "-V", "a+4", NULL},
		{"sendmail", "-Nnever,success", NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sm_options o;
		struct sbuf w;
		char *err;
		int rc = parse(cases[i], "sendmail", &o, &w, &err);

		if (rc != -1)
			printf("  case %zu (%s) was accepted\n", i, cases[i][1]);
		CHECK_INT(rc, -1);
		CHECK(err != NULL);
		free(err);
		sbuf_free(&w);
	}
}

TEST(test_sendmail_options_dsn)
{
	char *argv[] = {"sendmail", "-N", "Success,DELAY", "-Rhdrs",
	    "-V", "id+2B1", "r@x.test", NULL};
	struct sm_options o;
	struct sbuf w;
	char *err;

	CHECK_INT(parse(argv, "sendmail", &o, &w, &err), 0);
	CHECK_INT(o.notify, QNOTIFY_SUCCESS | QNOTIFY_DELAY);
	CHECK_STR(o.ret, "HDRS");
	CHECK_STR(o.envid, "id+2B1");
	CHECK_INT(sm_notify_parse("never"), QNOTIFY_NEVER);
	CHECK_INT(sm_notify_parse(""), -1);
	CHECK_INT(sm_notify_parse("failure,"), QNOTIFY_FAILURE);
	sbuf_free(&w);
}

TEST(test_sendmail_options_unknown_warns)
{
	char *argv[] = {"sendmail", "-Z", "-G", "-U", "-odb", "-oem", "-L",
	    "label", "--", "-r@x.test", NULL};
	struct sm_options o;
	struct sbuf w;
	char *err;

	CHECK_INT(parse(argv, "sendmail", &o, &w, &err), 0);
	CHECK_STR(sbuf_cstr(&w), "unknown option -Z ignored\n");
	CHECK_INT(o.ignore_dots, 0);
	CHECK_INT(o.nrcpt, 1);
	CHECK_STR(o.rcpts[0], "-r@x.test");
	sbuf_free(&w);
}

TEST_MAIN(
    TEST_CASE(test_sendmail_options_deliver),
    TEST_CASE(test_sendmail_options_modes),
    TEST_CASE(test_sendmail_options_rejected),
    TEST_CASE(test_sendmail_options_dsn),
    TEST_CASE(test_sendmail_options_unknown_warns))
