/*
 * Unit tests of smtpd/service_conn.c against a listening UNIX socket
 * that the test serves by hand with blocking attr_stream calls, while
 * the code under test runs on a real libevent loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "iox.h"
#include "service_conn.h"
#include "testlib.h"

/* service_conn.c runs on smtpd's loop, which smtpd's main.c defines. */
struct event_base *smtpd_event_base;

static char socket_dir[64];
static char socket_file[128];

struct test_call {
	struct service_call base;
	int failed;            /* times call_failed ran */
	enum service_call_failure failure;
	char reply[32];        /* "value" of the matched reply */
	int replied;
};

static int lost_count;

static char *test_socket_path(void)
{
	return strdup(socket_file);
}

static struct service_conn test_conn;

static void test_handle_record(struct attrs *rec)
{
	const char *key = attrs_get(rec, "key");
	struct test_call *c;

	c = (struct test_call *)service_conn_find(&test_conn, key ? key : "");
	if (c == NULL)
		return;
	service_call_forget(&c->base);
	snprintf(c->reply, sizeof(c->reply), "%s",
	    attrs_get(rec, "value") ? attrs_get(rec, "value") : "");
	c->replied++;
}

static void test_lost(const char *why, int was_open, int calls_waiting)
{
	lost_count++;
}

/* The test owns its calls, so this only records the failure. */
static void test_call_failed(struct service_call *base,
    enum service_call_failure failure)
{
	struct test_call *c = (struct test_call *)base;

	c->failed++;
	c->failure = failure;
}

static const struct service_conn_ops test_ops = {
	.name = "testsvc",
	.log_key = "test-service",
	.connect_note = NULL,
	.socket_path = test_socket_path,
	.handle_record = test_handle_record,
	.free_record = attrs_free,
	.lost = test_lost,
	.call_failed = test_call_failed,
};

/* Runs the loop until *flag is set or ms milliseconds pass. */
static void run_until(const int *flag, int ms)
{
	for (int waited = 0; !*flag && waited < ms; waited++) {
		event_base_loop(smtpd_event_base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Runs the loop briefly so that queued output reaches the socket. */
static void run_briefly(void)
{
	int never = 0;

	run_until(&never, 20);
}

/* Creates a fresh loop, connection state and listening socket. */
static int setup(void)
{
	int fd;

	if (smtpd_event_base)
		event_base_free(smtpd_event_base);
	smtpd_event_base = event_base_new();
	memset(&test_conn, 0, sizeof(test_conn));
	test_conn.ops = &test_ops;
	lost_count = 0;
	snprintf(socket_dir, sizeof(socket_dir), "/tmp/test_service_connXXXXXX");
	if (mkdtemp(socket_dir) == NULL)
		return -1;
	snprintf(socket_file, sizeof(socket_file), "%s/svc", socket_dir);
	fd = iox_unix_listen(socket_file, 0600, 8);
	return fd;
}

static void teardown(int listen_fd)
{
	if (listen_fd >= 0)
		close(listen_fd);
	unlink(socket_file);
	rmdir(socket_dir);
}

static struct attrs *make_request(const char *key)
{
	struct attrs *req = attrs_new();

	attrs_add(req, "key", key);
	return req;
}

/* Accepts the client and receives one record on it. */
static struct attr_stream *serve_accept(int listen_fd, struct attrs **rec)
{
	int fd;
	struct attr_stream *s;

	run_briefly();
	fd = accept(listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	s = attr_stream_new(fd);
	if (attr_stream_recv(s, rec, NULL, 1000) != 1)
		*rec = NULL;
	return s;
}

static void serve_reply(struct attr_stream *s, const char *key,
    const char *value)
{
	struct attrs *reply = attrs_new();

	attrs_add(reply, "key", key);
	attrs_add(reply, "value", value);
	attr_stream_send(s, reply, -1, 1000);
	attrs_free(&reply);
}

TEST(test_service_conn_reply_matched_by_key)
{
	int lfd = setup();
	struct test_call a = {0}, b = {0};
	struct attrs *req, *rec = NULL;
	struct attr_stream *s;

	CHECK(lfd >= 0);
	req = make_request("a");
	service_call_start(&test_conn, &a.base, "a", 2000, req);
	attrs_free(&req);
	req = make_request("b");
	service_call_start(&test_conn, &b.base, "b", 2000, req);
	attrs_free(&req);

	s = serve_accept(lfd, &rec);
	CHECK(s != NULL);
	CHECK(rec != NULL);
	if (rec)
		CHECK_STR(attrs_get(rec, "key"), "a");
	attrs_free(&rec);
	serve_reply(s, "b", "second");
	serve_reply(s, "a", "first");
	run_until(&a.replied, 1000);

	CHECK_INT(a.replied, 1);
	CHECK_INT(b.replied, 1);
	CHECK_STR(a.reply, "first");
	CHECK_STR(b.reply, "second");
	CHECK_INT(a.failed + b.failed, 0);
	CHECK(service_conn_find(&test_conn, "a") == NULL);
	CHECK_INT(service_conn_generation(&test_conn), 0);
	attr_stream_close(&s);
	run_briefly();
	CHECK_INT(service_conn_generation(&test_conn), 1);
	teardown(lfd);
}

TEST(test_service_conn_call_times_out)
{
	int lfd = setup();
	struct test_call c = {0};
	struct attrs *req = make_request("slow"), *rec = NULL;
	struct attr_stream *s;

	CHECK(lfd >= 0);
	service_call_start(&test_conn, &c.base, "slow", 50, req);
	attrs_free(&req);
	s = serve_accept(lfd, &rec);
	attrs_free(&rec);
	run_until(&c.failed, 1000);

	CHECK_INT(c.failed, 1);
	CHECK_INT(c.failure, SERVICE_CALL_TIMEOUT);
	CHECK(service_conn_find(&test_conn, "slow") == NULL);

	/* A late reply finds no call and changes nothing. */
	serve_reply(s, "slow", "late");
	run_briefly();
	CHECK_INT(c.replied, 0);
	CHECK_INT(lost_count, 0);
	attr_stream_close(&s);
	run_briefly();
	teardown(lfd);
}

TEST(test_service_conn_lost_fails_calls_and_reconnects)
{
	int lfd = setup();
	struct test_call c = {0}, d = {0};
	struct attrs *req = make_request("x"), *rec = NULL;
	struct attr_stream *s;

	CHECK(lfd >= 0);
	service_call_start(&test_conn, &c.base, "x", 2000, req);
	attrs_free(&req);
	s = serve_accept(lfd, &rec);
	attrs_free(&rec);
	attr_stream_close(&s);
	run_until(&c.failed, 1000);

	CHECK_INT(c.failed, 1);
	CHECK_INT(c.failure, SERVICE_CALL_LOST);
	CHECK_INT(lost_count, 1);
	CHECK_INT(service_conn_generation(&test_conn), 1);

	/* The next request opens a new connection. */
	req = make_request("y");
	service_call_start(&test_conn, &d.base, "y", 2000, req);
	attrs_free(&req);
	s = serve_accept(lfd, &rec);
	CHECK(rec != NULL);
	attrs_free(&rec);
	serve_reply(s, "y", "again");
	run_until(&d.replied, 1000);
	CHECK_INT(d.replied, 1);
	CHECK_STR(d.reply, "again");
	attr_stream_close(&s);
	run_briefly();
	teardown(lfd);
}

TEST(test_service_conn_no_socket_fails_from_loop)
{
	int lfd = setup();
	struct test_call c = {0};
	struct attrs *req = make_request("z");

	teardown(lfd);
	service_call_start(&test_conn, &c.base, "z", 2000, req);
	attrs_free(&req);
	/* The failure must not run before the caller stored the call. */
	CHECK_INT(c.failed, 0);
	run_until(&c.failed, 1000);
	CHECK_INT(c.failed, 1);
	CHECK_INT(c.failure, SERVICE_CALL_LOST);
	req = make_request("w");
	CHECK_INT(service_conn_write(&test_conn, req), -1);
	attrs_free(&req);
}

TEST(test_service_conn_malformed_record_disconnects)
{
	int lfd = setup();
	struct test_call c = {0};
	struct attrs *req = make_request("m"), *rec = NULL;
	struct attr_stream *s;
	static const char junk[] = "Not A Record\n\n";

	CHECK(lfd >= 0);
	service_call_start(&test_conn, &c.base, "m", 2000, req);
	attrs_free(&req);
	s = serve_accept(lfd, &rec);
	attrs_free(&rec);
	CHECK(write(attr_stream_fd(s), junk, sizeof(junk) - 1) > 0);
	run_until(&c.failed, 1000);

	CHECK_INT(c.failed, 1);
	CHECK_INT(c.failure, SERVICE_CALL_LOST);
	CHECK_INT(c.replied, 0);
	CHECK_INT(service_conn_generation(&test_conn), 1);
	attr_stream_close(&s);
	teardown(lfd);
}

TEST_MAIN(TEST_CASE(test_service_conn_reply_matched_by_key),
    TEST_CASE(test_service_conn_call_times_out),
    TEST_CASE(test_service_conn_lost_fails_calls_and_reconnects),
    TEST_CASE(test_service_conn_no_socket_fails_from_loop),
    TEST_CASE(test_service_conn_malformed_record_disconnects))
