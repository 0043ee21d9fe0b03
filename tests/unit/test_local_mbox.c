/*
 * Unit tests of mbox delivery: ">From " quoting across the chunks in
 * which the message is read, and the entry layout.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver.h"
#include "local.h"
#include "qfile.h"
#include "sbuf.h"
#include "testlib.h"

/* Writes body to a temporary queue-like file and fills m to read it. */
static int make_msg(struct local_msg *m, struct qenv *env, const char *body,
    size_t len, char *path_template)
{
	int fd = mkstemp(path_template);

	if (fd < 0 || write(fd, body, len) != (ssize_t)len)
		return -1;
	env->sender = xstrdup("joe@example.org");
	env->msg_offset = 0;
	env->msg_size = (off_t)len;
	memset(m, 0, sizeof(*m));
	m->qid = "TEST";
	m->fd = fd;
	m->env = env;
	return 0;
}

static char *read_file(const char *path, size_t *len_out)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	buf = xmalloc((size_t)st.st_size + 1);
	if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		close(fd);
		return NULL;
	}
	buf[st.st_size] = '\0';
	*len_out = (size_t)st.st_size;
	close(fd);
	return buf;
}

/* Delivers body to a new mbox and returns the text after the From line
 * and the two added headers. */
static char *deliver_body(const char *body, size_t len, size_t *out_len)
{
	char qpath[] = "/tmp/test_local_mbox_qXXXXXX";
	char mpath[] = "/tmp/test_local_mbox_mXXXXXX";
	struct qenv *env = qenv_new();
	struct local_result res;
	struct local_msg m;
	char *text = NULL, *p;
	size_t text_len = 0;
	int mfd = mkstemp(mpath);

	memset(&res, 0, sizeof(res));
	if (mfd >= 0)
		close(mfd);
	if (mfd < 0 || make_msg(&m, env, body, len, qpath) < 0) {
		qenv_free(&env);
		return NULL;
	}
	if (mbox_deliver(&m, mpath, getuid(), getgid(), "alice@example.test",
	    &res) == 0)
		text = read_file(mpath, &text_len);
	else
		printf("  mbox_deliver: %s %s %s\n", res.status, res.dsn, res.text);
	close(m.fd);
	unlink(qpath);
	unlink(mpath);
	qenv_free(&env);
	if (text == NULL)
		return NULL;

	/* Skip "From ...\n", "Return-Path: ...\n" and "Delivered-To: ...\n". */
	p = text;
	for (int i = 0; i < 3 && p != NULL; i++) {
		p = memchr(p, '\n', text_len - (size_t)(p - text));
		if (p != NULL)
			p++;
	}
	if (p == NULL) {
		free(text);
		return NULL;
	}
	*out_len = text_len - (size_t)(p - text);
	memmove(text, p, *out_len + 1);
	return text;
}

TEST(test_local_mbox_quotes_from_lines)
{
	static const char body[] = "Subject: x\n\nFrom a\n From b\nFrom\n>From c\nFrom ";
	static const char want[] = "Subject: x\n\n>From a\n From b\nFrom\n>From c\n>From \n\n";
	size_t len = 0;
	char *got = deliver_body(body, strlen(body), &len);

	CHECK(got != NULL);
	if (got != NULL) {
		CHECK_INT(len, strlen(want));
		CHECK_STR(got, want);
	}
	free(got);
}

TEST(test_local_mbox_from_across_chunks)
{
	/* Place "From " lines so that each split point of the five bytes
	 * falls on the boundary of the first read. */
	for (size_t split = 0; split <= 5; split++) {
		size_t start = LOCAL_COPY_CHUNK - split;
		size_t len = start + 64;
		char *body = xmalloc(len + 1);
		char *want = xmalloc(len + 8);
		size_t got_len = 0;
		char *got;

		memset(body, 'a', len);
		body[start - 1] = '\n';
		memcpy(body + start, "From here\n", 10);
		body[len - 1] = '\n';
		body[len] = '\0';
		memcpy(want, body, start);
		want[start] = '>';
		memcpy(want + start + 1, body + start, len - start);
		want[len + 1] = '\n';
		want[len + 2] = '\0';

		got = deliver_body(body, len, &got_len);
		CHECK(got != NULL);
		if (got != NULL) {
			if (got_len != len + 2 || memcmp(got, want, len + 2) != 0)
				printf("  split %zu differs\n", split);
			CHECK_INT(got_len, len + 2);
			CHECK(memcmp(got, want, len + 2) == 0);
		}
		free(got);
		free(want);
		free(body);
	}
}

TEST(test_local_mbox_empty_message)
{
	size_t len = 0;
	char *got = deliver_body("", 0, &len);

	CHECK(got != NULL);
	if (got != NULL)
		CHECK_STR(got, "\n");
	free(got);
}

TEST_MAIN(
	TEST_CASE(test_local_mbox_quotes_from_lines),
	TEST_CASE(test_local_mbox_from_across_chunks),
	TEST_CASE(test_local_mbox_empty_message)
)
