/*
 * Unit tests of lib/authd_client.c: request records, reply parsing with
 * missing attributes, failure names, and the blocking client against a
 * peer on a socketpair that answers out of order.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authd_client.h"
#include "iox.h"
#include "testlib.h"

TEST(test_authd_client_start_record)
{
	struct attrs *a = authd_request_start("s1", "PLAIN", "=", "192.0.2.7", 1);

	CHECK_STR(attrs_get(a, "request"), "start");
	CHECK_STR(attrs_get(a, "session"), "s1");
	CHECK_STR(attrs_get(a, "mechanism"), "PLAIN");
	CHECK_STR(attrs_get(a, "response"), "=");
	CHECK_STR(attrs_get(a, "client_address"), "192.0.2.7");
	CHECK_STR(attrs_get(a, "encrypted"), "yes");
	authd_attrs_free_wipe(&a);
	CHECK(a == NULL);

	a = authd_request_start("s2", "LOGIN", NULL, "::1", 0);
	CHECK(attrs_get(a, "response") == NULL);
	CHECK_STR(attrs_get(a, "encrypted"), "no");
	authd_attrs_free_wipe(&a);
}

TEST(test_authd_client_parse_replies)
{
	struct attrs *a = attrs_new();
	struct authd_reply r;
	const char *err = NULL;

	attrs_add(a, "session", "x");
	attrs_add(a, "result", "continue");
	attrs_add(a, "challenge", "VXNlcm5hbWU6");
	CHECK_INT(authd_reply_parse(a, &r, &err), 0);
	CHECK_INT(r.result, AUTHD_RESULT_CONTINUE);
	CHECK_STR(r.challenge, "VXNlcm5hbWU6");
	CHECK_STR(r.session, "x");
	authd_reply_clear(&r);
	attrs_free(&a);

	a = attrs_new();
	attrs_add(a, "session", "x");
	attrs_add(a, "result", "fail");
	attrs_add(a, "temporary", "yes");
	attrs_add(a, "failure", "throttled");
	attrs_add(a, "reason", "locked");
	CHECK_INT(authd_reply_parse(a, &r, &err), 0);
	CHECK_INT(r.result, AUTHD_RESULT_FAIL);
	CHECK_INT(r.temporary, 1);
	CHECK_INT(r.failure, AUTHD_FAILURE_THROTTLED);
	CHECK_STR(authd_failure_smtp_reply(&r),
	    "454 4.7.0 Temporary authentication failure: too many failed "
	    "logins, try again later");
	authd_reply_clear(&r);
	attrs_free(&a);
}

TEST(test_authd_client_parse_invalid)
{
	static const char *const cases[][3] = {
		{"result=ok", NULL},
		{"session=x", NULL},
		{"session=x", "result=maybe", NULL},
		{"session=x", "result=ok", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct attrs *a = attrs_new();
		struct authd_reply r;
		const char *err = NULL;

		for (size_t k = 0; cases[i][k] != NULL; k++) {
			char *name = xstrdup(cases[i][k]);
			char *eq = strchr(name, '=');

			*eq = '\0';
			attrs_add(a, name, eq + 1);
			free(name);
		}
		CHECK_INT(authd_reply_parse(a, &r, &err), -1);
		CHECK(err != NULL);
		authd_reply_clear(&r);
		attrs_free(&a);
	}
}

TEST(test_authd_client_failure_names)
{
	CHECK_STR(authd_failure_name(AUTHD_FAILURE_CREDENTIALS), "credentials");
	CHECK_INT(authd_failure_from_name("syntax"), AUTHD_FAILURE_SYNTAX);
	CHECK_INT(authd_failure_from_name("bogus"), AUTHD_FAILURE_INTERNAL);
	CHECK_INT(authd_failure_from_name(NULL), AUTHD_FAILURE_INTERNAL);
}

/* A fake authd in a temporary queue directory answers another session
 * first, then the one asked for; the client must skip the first. */
TEST(test_authd_client_call_skips_other_sessions)
{
	char dir[] = "/tmp/test_authd_client.XXXXXX";
	struct authd_reply r;

	CHECK(mkdtemp(dir) != NULL);
	char *private_dir = xasprintf("%s/private", dir);
	char *path = xasprintf("%s/%s", dir, AUTHD_SOCKET_NAME);
	CHECK_INT(mkdir(private_dir, 0700), 0);
	int lfd = iox_unix_listen(path, 0600, 4);
	CHECK(lfd >= 0);

	struct authd_client *c = authd_client_connect(dir);
	CHECK(c != NULL);
	int peer = accept(lfd, NULL, NULL);
	CHECK(peer >= 0);
	const char *wire = "session=other\nresult=ok\nuser=bob\n\n"
	    "session=mine\nresult=ok\nuser=alice\n\n";
	CHECK_INT(write(peer, wire, strlen(wire)), (long)strlen(wire));

	struct attrs *req = authd_request_mechanisms("mine", 1);
	CHECK_INT(authd_client_call(c, req, &r, 2000), 0);
	CHECK_STR(r.session, "mine");
	CHECK_STR(r.user, "alice");
	authd_reply_clear(&r);

	/* No reply for this session: the call times out. */
	authd_attrs_free_wipe(&req);
	req = authd_request_mechanisms("late", 1);
	errno = 0;
	CHECK_INT(authd_client_call(c, req, &r, 200), -1);
	CHECK_INT(errno, ETIMEDOUT);

	/* The peer closes: the next call fails with EPIPE. */
	close(peer);
	CHECK_INT(authd_client_call(c, req, &r, 2000), -1);
	CHECK_INT(errno, EPIPE);
	authd_attrs_free_wipe(&req);
	authd_client_close(&c);
	CHECK(c == NULL);

	close(lfd);
	unlink(path);
	rmdir(private_dir);
	rmdir(dir);
	free(path);
	free(private_dir);
}

TEST_MAIN(
	TEST_CASE(test_authd_client_start_record),
	TEST_CASE(test_authd_client_parse_replies),
	TEST_CASE(test_authd_client_parse_invalid),
	TEST_CASE(test_authd_client_failure_names),
	TEST_CASE(test_authd_client_call_skips_other_sessions),
)
