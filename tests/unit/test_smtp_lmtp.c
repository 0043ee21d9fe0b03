/*
 * Unit tests of LMTP mode in the smtp agent: next hop syntax and the
 * per-recipient replies after the end of data, read from a socket pair.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver.h"
#include "smtp.h"
#include "testlib.h"

TEST(test_smtp_lmtp_hop_unix)
{
	struct smtp_lmtp_hop hop;
	char *err = NULL;

	CHECK_INT(smtp_lmtp_hop_parse("unix:/run/dovecot/lmtp", &hop, &err), 0);
	CHECK_STR(hop.unix_path, "/run/dovecot/lmtp");
	CHECK(hop.inet.host == NULL);
	smtp_lmtp_hop_free(&hop);

	CHECK_INT(smtp_lmtp_hop_parse("unix:private/dovecot-lmtp", &hop, &err),
	    0);
	CHECK_STR(hop.unix_path, "private/dovecot-lmtp");
	smtp_lmtp_hop_free(&hop);
}

TEST(test_smtp_lmtp_hop_inet)
{
	struct smtp_lmtp_hop hop;
	char *err = NULL;

	CHECK_INT(smtp_lmtp_hop_parse("inet:127.0.0.1:2424", &hop, &err), 0);
	CHECK(hop.unix_path == NULL);
	CHECK_STR(hop.inet.host, "127.0.0.1");
	CHECK_STR(hop.inet.port, "2424");
	CHECK_INT(hop.inet.bracketed, 1);
	smtp_lmtp_hop_free(&hop);

	CHECK_INT(smtp_lmtp_hop_parse("[::1]:24", &hop, &err), 0);
	CHECK_STR(hop.inet.host, "::1");
	CHECK_STR(hop.inet.port, "24");
	smtp_lmtp_hop_free(&hop);

	/* No MX lookup and the LMTP port even without brackets. */
	CHECK_INT(smtp_lmtp_hop_parse("inet:mail.example.test", &hop, &err),
	    0);
	CHECK_STR(hop.inet.host, "mail.example.test");
	CHECK_STR(hop.inet.port, "24");
	CHECK_INT(hop.inet.bracketed, 1);
	smtp_lmtp_hop_free(&hop);
}

TEST(test_smtp_lmtp_hop_invalid)
{
	static const char *const bad[] = {"", "unix:", "inet:", "inet::24",
	    "inet:host:0", "inet:host:65536", "inet:host:2x", "[::1",
	    "inet:[127.0.0.1]:"};
	struct smtp_lmtp_hop hop;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;

		if (smtp_lmtp_hop_parse(bad[i], &hop, &err) == 0) {
			printf("  accepted \"%s\"\n", bad[i]);
			CHECK(0);
			smtp_lmtp_hop_free(&hop);
			continue;
		}
		CHECK(err != NULL);
		free(err);
	}
	CHECK_INT(smtp_lmtp_hop_parse(NULL, &hop, &(char *){NULL}), -1);
}

/* A request of n recipients, all accepted by RCPT. */
static void request_make(struct smtp_request *req, struct smtp_rcpt *rcpts,
    size_t n)
{
	static char qid[] = "TESTQID";
	static char addr[] = "r@example.test";

	memset(req, 0, sizeof(*req));
	memset(rcpts, 0, n * sizeof(*rcpts));
	req->qid = qid;
	req->rcpts = rcpts;
	req->nrcpt = n;
	for (size_t i = 0; i < n; i++) {
		rcpts[i].index = i;
		rcpts[i].addr = addr;
		rcpts[i].accepted = 1;
	}
}

static void request_clear(struct smtp_request *req)
{
	for (size_t i = 0; i < req->nrcpt; i++) {
		free(req->rcpts[i].text);
		free(req->rcpts[i].remote_mta);
		free(req->rcpts[i].remote_reply);
	}
}

/* Runs smtp_lmtp_data_replies on a session whose server sent replies
 * and then closed the connection. Returns its result. */
static int run_replies(struct smtp_request *req, const char *replies)
{
	struct smtp_agent agent;
	struct smtp_conn *c;
	struct smtp_reply reply;
	int fds[2];
	int rc;

	memset(&agent, 0, sizeof(agent));
	agent.timeouts.data_done = 2000;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		return -2;
	if (write(fds[1], replies, strlen(replies)) != (ssize_t)strlen(replies))
		return -2;
	close(fds[1]);

	c = smtp_conn_new(fds[0]);
	c->host = xstrdup("lmtp.example.test");
	snprintf(c->peer, sizeof(c->peer), "lmtp.example.test[127.0.0.1]");
	smtp_reply_init(&reply);
	rc = smtp_lmtp_data_replies(&agent, c, req, &reply);
	smtp_reply_free(&reply);
	smtp_conn_free(&c);
	return rc;
}

TEST(test_smtp_lmtp_replies_per_recipient)
{
	struct smtp_request req;
	struct smtp_rcpt rcpts[3];

	request_make(&req, rcpts, 3);
	CHECK_INT(run_replies(&req, "250 2.0.0 <a> Saved\r\n"
	    "550 5.1.1 <b> User doesn't exist\r\n"
	    "452 4.2.2 <c> Mailbox full\r\n"), 1);
	CHECK_STR(rcpts[0].status, DELIVER_SENT);
	CHECK_STR(rcpts[0].dsn, "2.0.0");
	CHECK_STR(rcpts[0].text, "250 2.0.0 <a> Saved");
	CHECK_STR(rcpts[0].dsn_action, "delivered");
	CHECK_STR(rcpts[1].status, DELIVER_BOUNCE);
	CHECK_STR(rcpts[1].dsn, "5.1.1");
	CHECK(strstr(rcpts[1].text, "550 5.1.1 <b> User doesn't exist") != NULL);
	CHECK(strstr(rcpts[1].text, "end of DATA") != NULL);
	CHECK_STR(rcpts[1].remote_reply, "550 5.1.1 <b> User doesn't exist");
	CHECK_STR(rcpts[2].status, DELIVER_DEFER);
	CHECK_STR(rcpts[2].dsn, "4.2.2");
	request_clear(&req);
}

TEST(test_smtp_lmtp_replies_skip_rejected)
{
	struct smtp_request req;
	struct smtp_rcpt rcpts[4];

	/* Recipient 0 was settled before the session, recipient 2 was
	 * rejected at RCPT: only 1 and 3 get a reply after the data. */
	request_make(&req, rcpts, 4);
	rcpts[0].skip = 1;
	rcpts[0].accepted = 0;
	rcpts[2].accepted = 0;
	smtp_rcpt_result(&rcpts[2], DELIVER_BOUNCE, "5.1.1", "rejected");
	CHECK_INT(run_replies(&req, "451 4.3.0 <r1> Temporary failure\r\n"
	    "250 2.0.0 <r3> Saved\r\n"), 1);
	CHECK_INT(rcpts[0].done, 0);
	CHECK_STR(rcpts[1].status, DELIVER_DEFER);
	CHECK_STR(rcpts[2].text, "rejected");
	CHECK_STR(rcpts[3].status, DELIVER_SENT);
	request_clear(&req);
}

TEST(test_smtp_lmtp_replies_lost)
{
	struct smtp_request req;
	struct smtp_rcpt rcpts[3];

	/* The server closes after the first reply: the others are
	 * deferred, because the message may have been delivered. */
	request_make(&req, rcpts, 3);
	CHECK_INT(run_replies(&req, "250 2.0.0 <a> Saved\r\n"), 0);
	CHECK_STR(rcpts[0].status, DELIVER_SENT);
	CHECK_STR(rcpts[1].status, DELIVER_DEFER);
	CHECK_STR(rcpts[2].status, DELIVER_DEFER);
	CHECK(strstr(rcpts[2].text, "lost connection") != NULL);
	request_clear(&req);
}

TEST(test_smtp_lmtp_replies_malformed)
{
	struct smtp_request req;
	struct smtp_rcpt rcpts[2];

	request_make(&req, rcpts, 2);
	CHECK_INT(run_replies(&req, "250 2.0.0 ok\r\nxyz garbage\r\n"), 0);
	CHECK_STR(rcpts[0].status, DELIVER_SENT);
	CHECK_STR(rcpts[1].status, DELIVER_DEFER);
	CHECK_STR(rcpts[1].dsn, "4.5.0");
	request_clear(&req);
}

TEST_MAIN(
    TEST_CASE(test_smtp_lmtp_hop_unix),
    TEST_CASE(test_smtp_lmtp_hop_inet),
    TEST_CASE(test_smtp_lmtp_hop_invalid),
    TEST_CASE(test_smtp_lmtp_replies_per_recipient),
    TEST_CASE(test_smtp_lmtp_replies_skip_rejected),
    TEST_CASE(test_smtp_lmtp_replies_lost),
    TEST_CASE(test_smtp_lmtp_replies_malformed))
