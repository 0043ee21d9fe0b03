/*
 * Unit tests of lib/iox.c, lib/wakeup.c and lib/deliver.c, over loopback
 * sockets and UNIX sockets in a temporary directory.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "deliver.h"
#include "iox.h"
#include "netaddr.h"
#include "sbuf.h"
#include "wakeup.h"

/* Returns the port a listening socket is bound to. */
static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return sockaddr_port((struct sockaddr *)&ss);
}

TEST(test_iox_tcp_listen_connect)
{
	char *err = NULL;
	int lfd = iox_inet_listen("127.0.0.1:0", 8, &err);

	CHECK(lfd >= 0);
	CHECK(err == NULL);
	if (lfd < 0)
		return;
	char port[16];
	snprintf(port, sizeof(port), "%d", bound_port(lfd));

	int cfd = iox_tcp_connect("127.0.0.1", port, 2000, "127.0.0.1", &err);
	CHECK(cfd >= 0);
	if (cfd >= 0) {
		int nodelay = 0;
		socklen_t len = sizeof(nodelay);
		getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
		CHECK(nodelay != 0);

		int afd = accept(lfd, NULL, NULL);
		CHECK(afd >= 0);
		CHECK_INT(iox_write_all(cfd, "hello", 5), 5);
		char buf[16] = "";
		CHECK_INT(iox_read_timeout(afd, buf, sizeof(buf), 2000), 5);
		CHECK(memcmp(buf, "hello", 5) == 0);

		/* Nothing more arrives: the read times out. */
		errno = 0;
		long long start = iox_now_ms();
		CHECK_INT(iox_read_timeout(afd, buf, sizeof(buf), 100), -1);
		CHECK_INT(errno, ETIMEDOUT);
		CHECK(iox_now_ms() - start >= 90);

		close(cfd);
		CHECK_INT(iox_read_timeout(afd, buf, sizeof(buf), 2000), 0);
		close(afd);
	}
	close(lfd);
}

TEST(test_iox_tcp_connect_refused)
{
	char *err = NULL;
	int lfd = iox_inet_listen("127.0.0.1:0", 1, &err);
	char port[16];

	CHECK(lfd >= 0);
	if (lfd < 0)
		return;
	snprintf(port, sizeof(port), "%d", bound_port(lfd));
	close(lfd);

	int fd = iox_tcp_connect("127.0.0.1", port, 2000, NULL, &err);
	CHECK_INT(fd, -1);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "127.0.0.1") != NULL);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "refused") != NULL);
	free(err);
}

TEST(test_iox_inet_listen_forms)
{
	char *err = NULL;
	int fd = iox_inet_listen("[::1]:0", 4, &err);

	/* The sandbox may lack IPv6, so only a failure with a message counts. */
	CHECK(fd >= 0 || err != NULL);
	if (fd >= 0)
		close(fd);
	free(err);
	err = NULL;

	fd = iox_inet_listen("0", 4, &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	free(err);

	static const char *const bad[] = {"host:", "[::1", "127.0.0.1:port!", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		fd = iox_inet_listen(bad[i], 4, &err);
		if (fd >= 0)
			printf("  case %zu: \"%s\" was accepted\n", i, bad[i]);
		CHECK_INT(fd, -1);
		CHECK(err != NULL);
		free(err);
	}
}

TEST(test_iox_unix_and_wakeup)
{
	char dir[] = "/tmp/test_iox.XXXXXX";
	char path[128], sub[128];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/public", dir);
	CHECK_INT(mkdir(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, QMGR_SOCKET_NAME);

	/* Nothing listens yet. */
	CHECK_INT(wakeup_qmgr(dir, "ABC"), -1);

	int lfd = iox_unix_listen(path, 0666, 8);
	CHECK(lfd >= 0);
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0666);

	CHECK_INT(wakeup_qmgr(dir, "0123ABC"), 0);
	CHECK_INT(wakeup_qmgr(dir, NULL), 0);
	CHECK_INT(wakeup_qmgr_flush(dir), 0);
	static const char *const want[] = {"W 0123ABC\n", "W\n", "F\n"};
	for (size_t i = 0; i < 3; i++) {
		char buf[64] = "";
		int afd = accept(lfd, NULL, NULL);
		CHECK(afd >= 0);
		ssize_t n = iox_read_timeout(afd, buf, sizeof(buf) - 1, 2000);
		CHECK_INT(n, strlen(want[i]));
		CHECK_STR(buf, want[i]);
		close(afd);
	}

	/* A second listen replaces the stale socket. */
	close(lfd);
	lfd = iox_unix_listen(path, 0600, 8);
	CHECK(lfd >= 0);
	int cfd = iox_unix_connect(path, 0);
	CHECK(cfd >= 0);
	close(cfd);
	close(lfd);
	unlink(path);
	rmdir(sub);

	/* A path longer than sun_path is rejected, not cut. */
	char long_path[200];
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	errno = 0;
	CHECK_INT(iox_unix_connect(long_path, 1), -1);
	CHECK_INT(errno, ENAMETOOLONG);
	CHECK_INT(iox_fsync_dir(dir), 0);
	rmdir(dir);
	CHECK_INT(iox_fsync_dir(dir), -1);
}

TEST(test_iox_write_timeout_full_pipe)
{
	int fds[2];
	char block[65536];

	CHECK_INT(pipe(fds), 0);
	iox_set_nonblock(fds[1], 1);
	memset(block, 'x', sizeof(block));
	/* The pipe holds 64 KiB by default, so the second block cannot fit. */
	iox_write_timeout(fds[1], block, sizeof(block), 50);
	errno = 0;
	CHECK_INT(iox_write_timeout(fds[1], block, sizeof(block), 50), -1);
	CHECK_INT(errno, ETIMEDOUT);
	close(fds[0]);
	close(fds[1]);
}

TEST(test_iox_read_file)
{
	char path[] = "/tmp/test_iox_read_file.XXXXXX";
	int fd = mkstemp(path);
	struct sbuf text;
	char *err = NULL, *want;

	CHECK(fd >= 0);
	CHECK_INT((int)write(fd, "line one\nline two\n", 18), 18);
	close(fd);

	sbuf_init(&text, 64);
	CHECK_INT(sbuf_puts(&text, "kept:"), 0);
	CHECK_INT(iox_read_file(path, &text, &err), 0);
	CHECK_STR(sbuf_cstr(&text), "kept:line one\nline two\n");

	/* A file over the cap is an error, not a truncated read. */
	sbuf_free(&text);
	sbuf_init(&text, 10);
	CHECK_INT(iox_read_file(path, &text, &err), -1);
	want = xasprintf("cannot read %s: file is larger than 10 bytes", path);
	CHECK_STR(err, want);
	free(want);
	free(err);
	err = NULL;
	CHECK_INT(iox_read_file(path, &text, NULL), -1);

	unlink(path);
	CHECK_INT(iox_read_file(path, &text, &err), -1);
	want = xasprintf("cannot open %s: No such file or directory", path);
	CHECK_STR(err, want);
	free(want);
	free(err);
	sbuf_free(&text);
}

TEST(test_deliver_split_index)
{
	size_t index = 99;
	const char *rest = NULL;

	CHECK_INT(deliver_split_index("3 user@example.test", &index, &rest), 0);
	CHECK_INT(index, 3);
	CHECK_STR(rest, "user@example.test");
	CHECK_INT(deliver_split_index("0 ", &index, &rest), 0);
	CHECK_STR(rest, "");

	static const char *const bad[] = {
		"", " 3 a", "3", "3a b", "-1 a", "x y", "99999999999999999999999 a",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = deliver_split_index(bad[i], &index, &rest);
		if (rc != -1)
			printf("  case %zu: \"%s\" was accepted\n", i, bad[i]);
		CHECK_INT(rc, -1);
	}
}

TEST(test_deliver_parse_result)
{
	char status[16], dsn[16];
	const char *text = NULL;

	CHECK_INT(deliver_parse_result("sent 2.0.0 delivered to maildir",
	    status, sizeof(status), dsn, sizeof(dsn), &text), 0);
	CHECK_STR(status, "sent");
	CHECK_STR(dsn, "2.0.0");
	CHECK_STR(text, "delivered to maildir");
	CHECK_INT(deliver_parse_result("bounce 5.1.1", status, sizeof(status),
	    dsn, sizeof(dsn), &text), 0);
	CHECK_STR(text, "");
	CHECK_INT(deliver_parse_result("defer 4.4.1 connect to [::1]:25 failed",
	    status, sizeof(status), dsn, sizeof(dsn), &text), 0);
	CHECK_STR(text, "connect to [::1]:25 failed");

	static const char *const bad[] = {
		"", "sent", "sent ", "done 2.0.0 x", "sent 2.0 x", "sent 3.0.0 x",
		"sent 2.0.0000 x", "sent 2..0 x", "sent 2.0.0x y", " sent 2.0.0 x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = deliver_parse_result(bad[i], status, sizeof(status), dsn,
		    sizeof(dsn), &text);
		if (rc != -1)
			printf("  case %zu: \"%s\" was accepted\n", i, bad[i]);
		CHECK_INT(rc, -1);
	}

	/* A status word longer than the buffer is rejected, not cut. */
	char tiny[4];
	CHECK_INT(deliver_parse_result("bounce 5.0.0 x", tiny, sizeof(tiny), dsn,
	    sizeof(dsn), &text), -1);
}

TEST_MAIN(
	TEST_CASE(test_iox_tcp_listen_connect),
	TEST_CASE(test_iox_tcp_connect_refused),
	TEST_CASE(test_iox_inet_listen_forms),
	TEST_CASE(test_iox_unix_and_wakeup),
	TEST_CASE(test_iox_write_timeout_full_pipe),
	TEST_CASE(test_iox_read_file),
	TEST_CASE(test_deliver_split_index),
	TEST_CASE(test_deliver_parse_result)
)
