/*
 * Unit tests of lib/qid.c and lib/qfile.c: queue IDs, writing and reading
 * queue files, status updates in place, corrupt files, the queue tree and
 * the defer logs. Each test works in its own temporary queue directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfile.h"
#include "sbuf.h"
#include "testlib.h"

static char *make_queue(void)
{
	char tmpl[] = "/tmp/test_qfile.XXXXXX";
	char *err = NULL;

	if (mkdtemp(tmpl) == NULL)
		return NULL;
	if (qfile_make_dirs(tmpl, getuid(), getgid(), &err) < 0) {
		printf("  qfile_make_dirs: %s\n", err);
		free(err);
		return NULL;
	}
	return xstrdup(tmpl);
}

static void remove_queue(char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		printf("  failed to remove %s\n", dir);
	free(cmd);
	free(dir);
}

/* Writes a full envelope and message; returns the queue file path. */
static char *write_sample(const char *qdir, const char *msg, struct qenv **env_out)
{
	struct qenv *env = qenv_new();
	struct qwriter *w;
	char *err = NULL;

	env->sender = xstrdup("alice@example.test");
	env->client_name = xstrdup("client.example.test");
	env->client_addr = xstrdup("192.0.2.7");
	env->helo = xstrdup("client.example.test");
	env->protocol = xstrdup("ESMTP");
	env->auth_user = xstrdup("alice");
	env->tls = xstrdup("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384");
	env->envid = xstrdup("env-1");
	env->ret = xstrdup("HDRS");
	qenv_add_rcpt(env, "bob@example.test", "rfc822;bob@example.test",
	    QNOTIFY_SUCCESS | QNOTIFY_FAILURE);
	qenv_add_rcpt(env, "john doe@example.test", NULL, 0);
	qenv_add_rcpt(env, "carol@example.test", NULL, QNOTIFY_NEVER);
	w = qwriter_open(qdir, env, &err);
	if (w == NULL) {
		printf("  qwriter_open: %s\n", err);
		free(err);
		qenv_free(&env);
		return NULL;
	}
	qwriter_write(w, msg, strlen(msg));
	if (qwriter_commit(&w, &err) < 0) {
		printf("  qwriter_commit: %s\n", err);
		free(err);
		qenv_free(&env);
		return NULL;
	}
	char *path = xasprintf("%s/%s/%s", qdir, QDIR_INCOMING, env->qid);
	*env_out = env;
	return path;
}

/* Writes len bytes of text to the file at path. */
static void put_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return;
	fwrite(text, 1, len, fp);
	fclose(fp);
}

/* Writes a queue file with the envelope lines given (after the Z
 * record, the M line excluded unless given) and a correct Z record. */
static void put_envelope(const char *path, const char *lines, const char *msg)
{
	struct sbuf sb;
	char z[64];
	size_t offset = strlen("POSTERN-QUEUE 1\n") + 28 + strlen(lines);

	snprintf(z, sizeof(z), "Z %012zu %012zu\n", offset, strlen(msg));
	sbuf_init(&sb, 0);
	sbuf_puts(&sb, "POSTERN-QUEUE 1\n");
	sbuf_puts(&sb, z);
	sbuf_puts(&sb, lines);
	sbuf_puts(&sb, msg);
	put_file(path, sb.data, sb.len);
	sbuf_free(&sb);
}

/* 1 when text is not NULL and contains part. */
static int contains(const char *text, const char *part)
{
	return text != NULL && strstr(text, part) != NULL;
}

static int read_file(const char *path, struct qenv **env, char **err)
{
	int fd = -1;
	int rc = qfile_read(path, 0, env, &fd, err);

	if (rc == 0)
		close(fd);
	return rc;
}

TEST(test_qid_format_and_order)
{
	char prev[QID_SIZE] = "";

	for (int i = 0; i < 1000; i++) {
		char id[QID_SIZE];

		qid_new(id);
		CHECK_INT(strlen(id), QID_LEN);
		CHECK(qid_valid(id));
		if (strcmp(prev, id) >= 0)
			printf("  %s is not after %s\n", id, prev);
		CHECK(strcmp(prev, id) < 0);
		memcpy(prev, id, QID_SIZE);
	}
}

TEST(test_qid_valid_rejects)
{
	static const char *const bad[] = {
		"", "06B13290DEA35A30BF000", "06B13290DEA35A30BF00011",
		"06b13290dea35a30bf0001", "06B13290DEA35A30BF000G",
		"../../../etc/passwd", ".tmp.06B13290DEA35A30B", "06B13290DEA35A30BF000 ",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (qid_valid(bad[i]))
			printf("  case %zu accepted: \"%s\"\n", i, bad[i]);
		CHECK(!qid_valid(bad[i]));
	}
	CHECK(!qid_valid(NULL));
	CHECK(qid_valid("06B13290DEA35A30BF0001"));
}

#define QID_THREADS 4
#define QID_PER_THREAD 5000

static char thread_ids[QID_THREADS * QID_PER_THREAD][QID_SIZE];

static void *qid_thread(void *arg)
{
	size_t base = (size_t)arg * QID_PER_THREAD;

	for (size_t i = 0; i < QID_PER_THREAD; i++)
		qid_new(thread_ids[base + i]);
	return NULL;
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

TEST(test_qid_unique_across_threads)
{
	pthread_t th[QID_THREADS];
	size_t n = QID_THREADS * QID_PER_THREAD, dups = 0;

	for (size_t i = 0; i < QID_THREADS; i++)
		pthread_create(&th[i], NULL, qid_thread, (void *)i);
	for (size_t i = 0; i < QID_THREADS; i++)
		pthread_join(th[i], NULL);
	qsort(thread_ids, n, QID_SIZE, compare_ids);
	for (size_t i = 1; i < n; i++)
		if (strcmp(thread_ids[i - 1], thread_ids[i]) == 0)
			dups++;
	CHECK_INT(dups, 0);
}

TEST(test_qfile_write_read_roundtrip)
{
	char *qdir = make_queue();
	static const char msg[] = "Subject: hi\n\n.leading dot\nbody\n";
	struct qenv *w_env = NULL, *env = NULL;
	char *path = qdir ? write_sample(qdir, msg, &w_env) : NULL;
	char *err = NULL;
	char body[sizeof(msg)] = {0};
	int fd = -1;
	struct stat st;

	CHECK(path != NULL);
	if (path == NULL)
		goto out;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(qfile_read(path, 0, &env, &fd, &err), 0);
	if (env == NULL)
		goto out;
	CHECK_STR(env->qid, w_env->qid);
	CHECK_INT(env->arrival_sec, w_env->arrival_sec);
	CHECK_INT(env->arrival_usec, w_env->arrival_usec);
	CHECK_STR(env->sender, "alice@example.test");
	CHECK_STR(env->client_name, "client.example.test");
	CHECK_STR(env->client_addr, "192.0.2.7");
	CHECK_STR(env->helo, "client.example.test");
	CHECK_STR(env->protocol, "ESMTP");
	CHECK_STR(env->auth_user, "alice");
	CHECK_STR(env->tls, "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384");
	CHECK_STR(env->envid, "env-1");
	CHECK_STR(env->ret, "HDRS");
	CHECK_INT(env->nrcpt, 3);
	if (env->nrcpt == 3) {
		CHECK_STR(env->rcpt[0].addr, "bob@example.test");
		CHECK_STR(env->rcpt[0].orcpt, "rfc822;bob@example.test");
		CHECK_INT(env->rcpt[0].notify, QNOTIFY_SUCCESS | QNOTIFY_FAILURE);
		CHECK_STR(env->rcpt[1].addr, "john doe@example.test");
		CHECK(env->rcpt[1].orcpt == NULL);
		CHECK_INT(env->rcpt[1].notify, 0);
		CHECK_INT(env->rcpt[2].notify, QNOTIFY_NEVER);
		for (int i = 0; i < 3; i++)
			CHECK_INT(env->rcpt[i].status, QSTATUS_PENDING);
	}
	CHECK_INT(env->msg_size, strlen(msg));
	CHECK_INT(env->msg_offset + env->msg_size, st.st_size);
	CHECK_INT(pread(fd, body, strlen(msg), env->msg_offset), strlen(msg));
	CHECK_STR(body, msg);
	close(fd);
out:
	free(err);
	free(path);
	qenv_free(&env);
	qenv_free(&w_env);
	if (qdir)
		remove_queue(qdir);
}

TEST(test_qfile_set_status_persists)
{
	char *qdir = make_queue();
	struct qenv *w_env = NULL, *env = NULL, *again = NULL;
	char *path = qdir ? write_sample(qdir, "x\n", &w_env) : NULL;
	char *err = NULL;
	int fd = -1;

	CHECK(path != NULL);
	if (path == NULL)
		goto out;
	CHECK_INT(qfile_read(path, 1, &env, &fd, &err), 0);
	if (env == NULL)
		goto out;
	CHECK_INT(qfile_set_status(fd, &env->rcpt[1], QSTATUS_DELIVERED), 0);
	CHECK_INT(qfile_set_status(fd, &env->rcpt[2], QSTATUS_BOUNCED), 0);
	CHECK_INT(env->rcpt[1].status, QSTATUS_DELIVERED);
	CHECK_INT(qfile_set_status(fd, &env->rcpt[0], 'X'), -1);
	close(fd);

	CHECK_INT(read_file(path, &again, &err), 0);
	if (again != NULL) {
		CHECK_INT(again->rcpt[0].status, QSTATUS_PENDING);
		CHECK_INT(again->rcpt[1].status, QSTATUS_DELIVERED);
		CHECK_INT(again->rcpt[2].status, QSTATUS_BOUNCED);
		CHECK_STR(again->rcpt[1].addr, "john doe@example.test");
	}
out:
	free(err);
	free(path);
	qenv_free(&again);
	qenv_free(&env);
	qenv_free(&w_env);
	if (qdir)
		remove_queue(qdir);
}

TEST(test_qfile_null_sender_and_abort)
{
	char *qdir = make_queue();
	struct qenv *env = qenv_new(), *got = NULL;
	struct qwriter *w;
	char *err = NULL, *tmp, *path;

	if (qdir == NULL) {
		CHECK(qdir != NULL);
		qenv_free(&env);
		return;
	}
	env->sender = xstrdup("");
	qenv_add_rcpt(env, "alice@example.test", NULL, 0);
	w = qwriter_open(qdir, env, &err);
	CHECK(w != NULL);
	tmp = xasprintf("%s/%s/.tmp.%s", qdir, QDIR_INCOMING, env->qid);
	CHECK_INT(access(tmp, F_OK), 0);
	qwriter_abort(&w);
	CHECK(w == NULL);
	CHECK_INT(access(tmp, F_OK), -1);
	free(tmp);

	/* Written again and committed, the empty sender reads back. */
	env->qid[0] = '\0';
	w = qwriter_open(qdir, env, &err);
	CHECK(w != NULL);
	CHECK_INT(qwriter_commit(&w, &err), 0);
	path = xasprintf("%s/%s/%s", qdir, QDIR_INCOMING, env->qid);
	CHECK_INT(read_file(path, &got, &err), 0);
	CHECK_STR(got ? got->sender : NULL, "");
	CHECK_INT(got ? got->msg_size : -1, 0);
	free(path);
	free(err);
	qenv_free(&got);
	qenv_free(&env);
	remove_queue(qdir);
}

TEST(test_qfile_rejects_multiline_value)
{
	char *qdir = make_queue();
	struct qenv *env = qenv_new();
	char *err = NULL;

	if (qdir == NULL) {
		CHECK(qdir != NULL);
		qenv_free(&env);
		return;
	}
	env->sender = xstrdup("a@x");
	env->helo = xstrdup("evil\nR - victim@example.test");
	qenv_add_rcpt(env, "b@x", NULL, 0);
	errno = 0;
	CHECK(qwriter_open(qdir, env, &err) == NULL);
	CHECK_INT(errno, EINVAL);
	CHECK(contains(err, "HELO"));
	free(err);
	qenv_free(&env);
	remove_queue(qdir);
}

TEST(test_qfile_truncated_is_corrupt)
{
	char *qdir = make_queue();
	struct qenv *w_env = NULL, *env = NULL;
	char *path = qdir ? write_sample(qdir, "hello\n", &w_env) : NULL;
	char whole[4096];
	ssize_t size = -1;
	int fd;

	CHECK(path != NULL);
	if (path == NULL)
		goto out;
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		size = read(fd, whole, sizeof(whole));
		close(fd);
	}
	CHECK(size > 0);

	/* Every shorter copy, from empty to one byte short. */
	for (ssize_t len = 0; len < size; len++) {
		char *err = NULL;
		int rc;

		put_file(path, whole, (size_t)len);
		rc = read_file(path, &env, &err);
		if (rc != -2)
			printf("  truncated to %lld bytes: rc %d\n", (long long)len, rc);
		CHECK_INT(rc, -2);
		CHECK(contains(err, "line "));
		free(err);
		qenv_free(&env);
	}
out:
	free(path);
	qenv_free(&w_env);
	if (qdir)
		remove_queue(qdir);
}

TEST(test_qfile_bad_z_record)
{
	char *qdir = make_queue();
	struct qenv *w_env = NULL, *env = NULL;
	char *path = qdir ? write_sample(qdir, "hello\n", &w_env) : NULL;
	char *err = NULL;
	int fd;

	CHECK(path != NULL);
	if (path == NULL)
		goto out;

	/* A size one larger than the file holds. */
	fd = open(path, O_WRONLY);
	CHECK_INT(pwrite(fd, "7", 1, 16 + 26), 1);
	close(fd);
	CHECK_INT(read_file(path, &env, &err), -2);
	CHECK(contains(err, "line 2"));
	free(err);
	err = NULL;

	/* A letter in a digit field. */
	fd = open(path, O_WRONLY);
	CHECK_INT(pwrite(fd, "6", 1, 16 + 26), 1);
	CHECK_INT(pwrite(fd, "x", 1, 16 + 3), 1);
	close(fd);
	CHECK_INT(read_file(path, &env, &err), -2);
	CHECK(contains(err, "invalid Z record"));
out:
	free(err);
	free(path);
	qenv_free(&env);
	qenv_free(&w_env);
	if (qdir)
		remove_queue(qdir);
}

TEST(test_qfile_malformed_envelopes)
{
	static const struct {
		const char *lines;
		const char *want;  /* text the error must contain */
	} cases[] = {
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nX what\nM\n", "line 6: unknown record"},
		{"T 1.000000\nS a@x\nR - b@x\nM\n", "missing I record"},
		{"I 06B13290DEA35A30BF0001\nS a@x\nM\n", "missing T record"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nM\n", "missing S record"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\n", "missing M record"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nS b@x\nM\n", "line 6: duplicate"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nO rfc822;x\nM\n", "before any recipient"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nR Q b@x\nM\n", "recipient status"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nR - \nM\n", "without an address"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nR - b@x\nN SOMETIMES\nM\n", "NOTIFY"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nR - b@x\nN NEVER,DELAY\nM\n", "NOTIFY"},
		{"I 06B13290DEA35A30BF0001\nT 1.5\nS a@x\nM\n", "arrival time"},
		{"I not-a-queue-id\nT 1.000000\nS a@x\nM\n", "queue ID"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nJ SOME\nM\n", "RET"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nSa@x\nM\n", "malformed record"},
		{"I 06B13290DEA35A30BF0001\nT 1.000000\nS a@x\nM\nR - b@x\n", "M record before"},
	};
	char *qdir = make_queue();
	char *path = qdir ? xasprintf("%s/hand-made", qdir) : NULL;

	CHECK(path != NULL);
	for (size_t i = 0; path != NULL && i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct qenv *env = NULL;
		char *err = NULL;
		int rc;

		put_envelope(path, cases[i].lines, "body\n");
		rc = read_file(path, &env, &err);
		if (rc != -2 || !contains(err, cases[i].want))
			printf("  case %zu: rc %d, error \"%s\", want \"%s\"\n", i, rc,
			    err ? err : "(none)", cases[i].want);
		CHECK_INT(rc, -2);
		CHECK(contains(err, cases[i].want));
		free(err);
		qenv_free(&env);
	}

	/* The same file with a valid envelope parses. */
	if (path != NULL) {
		struct qenv *env = NULL;
		char *err = NULL;

		put_envelope(path, "I 06B13290DEA35A30BF0001\nT 12.000345\nS \n"
		    "R D b@x\nN DELAY\nM\n", "body\n");
		CHECK_INT(read_file(path, &env, &err), 0);
		CHECK_STR(env ? env->sender : NULL, "");
		CHECK_INT(env ? env->arrival_usec : -1, 345);
		CHECK_INT(env ? env->rcpt[0].notify : -1, QNOTIFY_DELAY);
		qenv_free(&env);
		free(err);
	}
	free(path);
	if (qdir)
		remove_queue(qdir);
}

TEST(test_qfile_missing_file)
{
	struct qenv *env = NULL;
	char *err = NULL;
	int fd = -1;

	errno = 0;
	CHECK_INT(qfile_read("/nonexistent/queue/file", 0, &env, &fd, &err), -1);
	CHECK_INT(errno, ENOENT);
	CHECK(env == NULL);
	CHECK(err == NULL);
}

TEST(test_qfile_make_dirs_modes)
{
	static const struct {
		const char *name;
		int mode;
	} want[] = {
		{QDIR_INCOMING, 0700}, {QDIR_ACTIVE, 0700}, {QDIR_DEFERRED, 0700},
		{QDIR_HOLD, 0700}, {QDIR_CORRUPT, 0700}, {QDIR_BOUNCE, 0700},
		{QDIR_DEFER_LOG, 0700}, {QDIR_MAILDROP, 01730}, {QDIR_PRIVATE, 0700},
		{QDIR_PUBLIC, 0755}, {QDIR_PID, 0755},
	};
	char *qdir = make_queue();
	char *err = NULL;

	if (qdir == NULL) {
		CHECK(qdir != NULL);
		return;
	}
	/* A second run repairs a wrong mode. */
	char *active = xasprintf("%s/%s", qdir, QDIR_ACTIVE);
	CHECK_INT(chmod(active, 0777), 0);
	free(active);
	CHECK_INT(qfile_make_dirs(qdir, getuid(), getgid(), &err), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char *path = xasprintf("%s/%s", qdir, want[i].name);
		struct stat st;

		CHECK_INT(stat(path, &st), 0);
		CHECK(S_ISDIR(st.st_mode));
		if ((int)(st.st_mode & 07777) != want[i].mode)
			printf("  %s: mode %o, want %o\n", want[i].name,
			    st.st_mode & 07777, want[i].mode);
		CHECK_INT(st.st_mode & 07777, want[i].mode);
		free(path);
	}
	free(err);
	remove_queue(qdir);
}

TEST(test_qfile_defer_log_roundtrip)
{
	char *qdir = make_queue();
	struct qenv *env = qenv_new();
	char *reasons[3] = {"451 4.3.0 try\r\nagain later", NULL, "connection refused"};
	char **got = NULL;
	static const char qid[] = "06B13290DEA35A30BF0001";

	if (qdir == NULL) {
		CHECK(qdir != NULL);
		qenv_free(&env);
		return;
	}
	for (int i = 0; i < 3; i++)
		qenv_add_rcpt(env, "r@x", NULL, 0);

	/* No log yet: every reason is NULL. */
	CHECK_INT(qfile_defer_log_read(qdir, qid, 3, &got), 0);
	for (int i = 0; got != NULL && i < 3; i++)
		CHECK(got[i] == NULL);
	free(got);

	CHECK_INT(qfile_defer_log_write(qdir, qid, env, reasons), 0);
	CHECK_INT(qfile_defer_log_read(qdir, qid, 3, &got), 0);
	if (got != NULL) {
		CHECK_STR(got[0], "451 4.3.0 try  again later");
		CHECK(got[1] == NULL);
		CHECK_STR(got[2], "connection refused");
		for (int i = 0; i < 3; i++)
			free(got[i]);
		free(got);
	}

	/* Fewer recipients than the log names: the extra lines are ignored. */
	CHECK_INT(qfile_defer_log_read(qdir, qid, 1, &got), 0);
	CHECK_STR(got ? got[0] : NULL, "451 4.3.0 try  again later");
	if (got != NULL) {
		free(got[0]);
		free(got);
	}
	qenv_free(&env);
	remove_queue(qdir);
}

TEST_MAIN(
	TEST_CASE(test_qid_format_and_order),
	TEST_CASE(test_qid_valid_rejects),
	TEST_CASE(test_qid_unique_across_threads),
	TEST_CASE(test_qfile_write_read_roundtrip),
	TEST_CASE(test_qfile_set_status_persists),
	TEST_CASE(test_qfile_null_sender_and_abort),
	TEST_CASE(test_qfile_rejects_multiline_value),
	TEST_CASE(test_qfile_truncated_is_corrupt),
	TEST_CASE(test_qfile_bad_z_record),
	TEST_CASE(test_qfile_malformed_envelopes),
	TEST_CASE(test_qfile_missing_file),
	TEST_CASE(test_qfile_make_dirs_modes),
	TEST_CASE(test_qfile_defer_log_roundtrip)
)
