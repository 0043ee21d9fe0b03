/*
 * qfile - writing and reading queue files, the queue tree, and the
 * per-message defer logs. The format is described in qfile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "qfile.h"
#include "sbuf.h"

#define QFILE_MAGIC "POSTERN-QUEUE 1\n"
#define QFILE_MAGIC_LEN (sizeof(QFILE_MAGIC) - 1)
/* "Z " 12 digits " " 12 digits "\n" */
#define QFILE_ZREC_LEN 28
#define QFILE_ZREC_FMT "Z %012lld %012lld\n"
/* Envelopes above this size are treated as corrupt: even 100000
 * recipients of 256 octets stay below it. */
#define QFILE_MAX_ENVELOPE (64L * 1024 * 1024)

struct qenv *qenv_new(void)
{
	return xcalloc(1, sizeof(struct qenv));
}

void qenv_add_rcpt(struct qenv *env, const char *addr, const char *orcpt,
    int notify)
{
	struct qrcpt *r;

	env->rcpt = xrealloc(env->rcpt, (env->nrcpt + 1) * sizeof(env->rcpt[0]));
	r = &env->rcpt[env->nrcpt++];
	r->addr = xstrdup(addr);
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
	r->notify = notify;
	r->status = QSTATUS_PENDING;
	r->status_off = 0;
}

void qenv_free(struct qenv **envp)
{
	struct qenv *env;

	if (envp == NULL || *envp == NULL)
		return;
	env = *envp;
	free(env->sender);
	free(env->client_name);
	free(env->client_addr);
	free(env->helo);
	free(env->protocol);
	free(env->auth_user);
	free(env->tls);
	free(env->envid);
	free(env->ret);
	for (size_t i = 0; i < env->nrcpt; i++) {
		free(env->rcpt[i].addr);
		free(env->rcpt[i].orcpt);
	}
	free(env->rcpt);
	free(env);
	*envp = NULL;
}

/* Keywords of the N record, in bit order. */
static const struct {
	int bit;
	const char *name;
} qnotify_names[] = {
	{QNOTIFY_NEVER, "NEVER"},
	{QNOTIFY_SUCCESS, "SUCCESS"},
	{QNOTIFY_FAILURE, "FAILURE"},
	{QNOTIFY_DELAY, "DELAY"},
};

#define QNOTIFY_COUNT (sizeof(qnotify_names) / sizeof(qnotify_names[0]))

/* Parses "SUCCESS,FAILURE" and the like. Returns the bits or -1. */
static int qnotify_parse(const char *s)
{
	int bits = 0;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		size_t i;

		for (i = 0; i < QNOTIFY_COUNT; i++)
			if (strlen(qnotify_names[i].name) == len &&
			    strncmp(s, qnotify_names[i].name, len) == 0)
				break;
		if (i == QNOTIFY_COUNT || (bits & qnotify_names[i].bit))
			return -1;
		bits |= qnotify_names[i].bit;
		s += len;
		if (*s == ',' && *++s == '\0')
			return -1;
	}
	return bits == 0 ? -1 : bits;
}

/* Writer. */

struct qwriter {
	char *queue_dir;
	char qid[QID_SIZE];
	char *tmp_path;
	char *final_path;
	int fd;
	FILE *fp;
	off_t msg_offset;
	off_t msg_size;
	int renamed;
};

static int qfile_value_ok(const char *v)
{
	return v == NULL || strpbrk(v, "\r\n") == NULL;
}

/* Checks that every envelope value fits on one line. Returns the name of
 * the first bad field, or NULL. */
static const char *qenv_check(const struct qenv *env)
{
	const struct {
		const char *name;
		const char *value;
	} fields[] = {
		{"sender", env->sender}, {"client name", env->client_name},
		{"client address", env->client_addr}, {"HELO name", env->helo},
		{"protocol", env->protocol}, {"authenticated user", env->auth_user},
		{"TLS summary", env->tls}, {"ENVID", env->envid}, {"RET", env->ret},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!qfile_value_ok(fields[i].value))
			return fields[i].name;
	if (env->ret != NULL && strcmp(env->ret, "FULL") != 0 &&
	    strcmp(env->ret, "HDRS") != 0)
		return "RET";
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qrcpt *r = &env->rcpt[i];

		if (r->addr == NULL || r->addr[0] == '\0' || !qfile_value_ok(r->addr))
			return "recipient";
		if (!qfile_value_ok(r->orcpt))
			return "ORCPT";
		if (r->notify < 0 || r->notify > 15 ||
		    ((r->notify & QNOTIFY_NEVER) && r->notify != QNOTIFY_NEVER))
			return "NOTIFY";
	}
	return NULL;
}

static void qfile_put_opt(FILE *fp, char letter, const char *value)
{
	if (value != NULL)
		fprintf(fp, "%c %s\n", letter, value);
}

static void qfile_put_notify(FILE *fp, int notify)
{
	const char *sep = "";

	fputs("N ", fp);
	for (size_t i = 0; i < QNOTIFY_COUNT; i++) {
		if (notify & qnotify_names[i].bit) {
			fprintf(fp, "%s%s", sep, qnotify_names[i].name);
			sep = ",";
		}
	}
	fputc('\n', fp);
}

/* Writes the envelope through w->fp and records where the message starts. */
static int qwriter_put_envelope(struct qwriter *w, const struct qenv *env)
{
	FILE *fp = w->fp;

	fputs(QFILE_MAGIC, fp);
	fprintf(fp, QFILE_ZREC_FMT, 0LL, 0LL);
	fprintf(fp, "I %s\n", env->qid);
	fprintf(fp, "T %ld.%06ld\n", env->arrival_sec, env->arrival_usec);
	fprintf(fp, "S %s\n", env->sender ? env->sender : "");
	qfile_put_opt(fp, 'C', env->client_name);
	qfile_put_opt(fp, 'A', env->client_addr);
	qfile_put_opt(fp, 'H', env->helo);
	qfile_put_opt(fp, 'P', env->protocol);
	qfile_put_opt(fp, 'U', env->auth_user);
	qfile_put_opt(fp, 'L', env->tls);
	qfile_put_opt(fp, 'E', env->envid);
	qfile_put_opt(fp, 'J', env->ret);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qrcpt *r = &env->rcpt[i];

		fprintf(fp, "R %c %s\n", r->status ? r->status : QSTATUS_PENDING,
		    r->addr);
		qfile_put_opt(fp, 'O', r->orcpt);
		if (r->notify != 0)
			qfile_put_notify(fp, r->notify);
	}
	fputs("M\n", fp);
	if (ferror(fp))
		return -1;
	w->msg_offset = ftello(fp);
	return w->msg_offset < 0 ? -1 : 0;
}

static void qwriter_release(struct qwriter *w)
{
	if (w->fp != NULL)
		fclose(w->fp);
	else if (w->fd >= 0)
		close(w->fd);
	free(w->queue_dir);
	free(w->tmp_path);
	free(w->final_path);
	free(w);
}

struct qwriter *qwriter_open(const char *queue_dir, struct qenv *env,
    char **err_out)
{
	struct qwriter *w;
	const char *bad = qenv_check(env);

	if (bad != NULL) {
		*err_out = xasprintf("invalid %s in envelope: it must be one line", bad);
		errno = EINVAL;
		return NULL;
	}
	if (env->qid[0] == '\0')
		qid_new(env->qid);
	if (env->arrival_sec == 0) {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		env->arrival_sec = tv.tv_sec;
		env->arrival_usec = tv.tv_usec;
	}

	w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	w->queue_dir = xstrdup(queue_dir);
	memcpy(w->qid, env->qid, QID_SIZE);
	w->tmp_path = xasprintf("%s/%s/.tmp.%s", queue_dir, QDIR_INCOMING, env->qid);
	w->final_path = xasprintf("%s/%s/%s", queue_dir, QDIR_INCOMING, env->qid);
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0)
		goto fail;
	w->fp = fdopen(w->fd, "w");
	if (w->fp == NULL)
		goto fail_unlink;
	setvbuf(w->fp, NULL, _IOFBF, 65536);
	if (qwriter_put_envelope(w, env) < 0)
		goto fail_unlink;
	return w;

fail_unlink:
	{
		int saved = errno;
		unlink(w->tmp_path);
		errno = saved;
	}
fail:
	{
		int saved = errno;
		*err_out = xasprintf("failed to create queue file %s: %s", w->tmp_path,
		    strerror(saved));
		qwriter_release(w);
		errno = saved;
	}
	return NULL;
}

int qwriter_write(struct qwriter *w, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (fwrite(data, 1, len, w->fp) != len)
		return -1;
	w->msg_size += (off_t)len;
	return 0;
}

off_t qwriter_size(const struct qwriter *w)
{
	return w->msg_size;
}

const char *qwriter_qid(const struct qwriter *w)
{
	return w->qid;
}

int qwriter_sync(struct qwriter *w)
{
	char zrec[64];

	if (fflush(w->fp) != 0)
		return -1;
	if (snprintf(zrec, sizeof(zrec), QFILE_ZREC_FMT, (long long)w->msg_offset,
	    (long long)w->msg_size) != QFILE_ZREC_LEN) {
		errno = EFBIG;
		return -1;
	}
	if (pwrite(w->fd, zrec, QFILE_ZREC_LEN, QFILE_MAGIC_LEN) != QFILE_ZREC_LEN) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return fsync(w->fd);
}

int qwriter_rename(struct qwriter *w)
{
	if (rename(w->tmp_path, w->final_path) < 0)
		return -1;
	w->renamed = 1;
	return 0;
}

int qfile_sync_dir(const char *queue_dir, const char *subdir)
{
	char *path = xasprintf("%s/%s", queue_dir, subdir);
	int rc = iox_fsync_dir(path);
	int saved = errno;

	free(path);
	errno = saved;
	return rc;
}

int qwriter_commit(struct qwriter **wp, char **err_out)
{
	struct qwriter *w = *wp;
	const char *step;

	*wp = NULL;
	step = "write";
	if (qwriter_sync(w) < 0)
		goto fail;
	step = "rename";
	if (qwriter_rename(w) < 0)
		goto fail;
	step = "sync the directory of";
	if (qfile_sync_dir(w->queue_dir, QDIR_INCOMING) < 0)
		goto fail;
	qwriter_release(w);
	return 0;

fail:
	{
		int saved = errno;

		*err_out = xasprintf("failed to %s queue file %s: %s", step,
		    w->renamed ? w->final_path : w->tmp_path, strerror(saved));
		/* A message whose commit failed gets a 4xx reply, so no copy of
		 * it may stay in the queue. */
		unlink(w->renamed ? w->final_path : w->tmp_path);
		qwriter_release(w);
		errno = saved;
	}
	return -1;
}

void qwriter_abort(struct qwriter **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	if (!(*wp)->renamed)
		unlink((*wp)->tmp_path);
	qwriter_release(*wp);
	*wp = NULL;
}

void qwriter_free(struct qwriter **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	qwriter_release(*wp);
	*wp = NULL;
}

/* Reader. */

/* Parser state: which single records were seen, for duplicates and
 * required records. */
struct qparse {
	struct qenv *env;
	unsigned seen;  /* bit (letter - 'A') per record letter seen */
	int rcpt_has_orcpt;
	int rcpt_has_notify;
};

static int qparse_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Parses "SECONDS.MICROSECONDS" with exactly 6 digits after the dot. */
static int qparse_time(const char *s, long *sec, long *usec)
{
	const char *dot = strchr(s, '.');

	if (dot == NULL || dot == s || strlen(dot + 1) != 6 ||
	    !qparse_digits(s, (size_t)(dot - s)) || !qparse_digits(dot + 1, 6) ||
	    dot - s > 15)
		return -1;
	*sec = strtol(s, NULL, 10);
	*usec = strtol(dot + 1, NULL, 10);
	return 0;
}

/* Stores a single-valued string record, rejecting duplicates. */
static const char *qparse_string(char **field, const char *value)
{
	if (*field != NULL)
		return "duplicate record";
	*field = xstrdup(value);
	return NULL;
}

/* Applies the R, O or N record at value (offset value_off in the file). */
static const char *qparse_rcpt_record(struct qparse *p, char letter,
    const char *value, off_t value_off)
{
	struct qenv *env = p->env;
	struct qrcpt *r;
	int bits;

	if (letter == 'R') {
		char status = value[0];

		if (status != QSTATUS_PENDING && status != QSTATUS_DELIVERED &&
		    status != QSTATUS_BOUNCED)
			return "invalid recipient status";
		if (value[1] != ' ' || value[2] == '\0')
			return "recipient record without an address";
		qenv_add_rcpt(env, value + 2, NULL, 0);
		env->rcpt[env->nrcpt - 1].status = status;
		env->rcpt[env->nrcpt - 1].status_off = value_off;
		p->rcpt_has_orcpt = p->rcpt_has_notify = 0;
		return NULL;
	}
	if (env->nrcpt == 0)
		return "ORCPT or NOTIFY record before any recipient";
	r = &env->rcpt[env->nrcpt - 1];
	if (letter == 'O') {
		if (p->rcpt_has_orcpt++)
			return "duplicate ORCPT record";
		r->orcpt = xstrdup(value);
		return NULL;
	}
	if (p->rcpt_has_notify++)
		return "duplicate NOTIFY record";
	bits = qnotify_parse(value);
	if (bits < 0 || ((bits & QNOTIFY_NEVER) && bits != QNOTIFY_NEVER))
		return "invalid NOTIFY value";
	r->notify = bits;
	return NULL;
}

/* Applies one envelope record. Returns NULL or the reason it is invalid. */
static const char *qparse_record(struct qparse *p, char letter,
    const char *value, off_t value_off)
{
	struct qenv *env = p->env;

	switch (letter) {
	case 'I':
		if (env->qid[0] != '\0')
			return "duplicate record";
		if (!qid_valid(value))
			return "invalid queue ID";
		memcpy(env->qid, value, QID_SIZE);
		return NULL;
	case 'T':
		if (p->seen & (1u << ('T' - 'A')))
			return "duplicate record";
		if (qparse_time(value, &env->arrival_sec, &env->arrival_usec) < 0)
			return "invalid arrival time";
		return NULL;
	case 'S': return qparse_string(&env->sender, value);
	case 'C': return qparse_string(&env->client_name, value);
	case 'A': return qparse_string(&env->client_addr, value);
	case 'H': return qparse_string(&env->helo, value);
	case 'P': return qparse_string(&env->protocol, value);
	case 'U': return qparse_string(&env->auth_user, value);
	case 'L': return qparse_string(&env->tls, value);
	case 'E': return qparse_string(&env->envid, value);
	case 'J':
		if (strcmp(value, "FULL") != 0 && strcmp(value, "HDRS") != 0)
			return "invalid RET value";
		return qparse_string(&env->ret, value);
	case 'R':
	case 'O':
	case 'N':
		return qparse_rcpt_record(p, letter, value, value_off);
	default:
		return "unknown record";
	}
}

/* Parses "Z <offset> <size>" at the start of the file and checks it
 * against the file size. Returns NULL or the reason. */
static const char *qparse_zrec(const char *head, off_t file_size,
    struct qenv *env)
{
	if (memcmp(head, QFILE_MAGIC, QFILE_MAGIC_LEN) != 0)
		return "not a queue file (bad first line)";
	const char *z = head + QFILE_MAGIC_LEN;
	if (z[0] != 'Z' || z[1] != ' ' || !qparse_digits(z + 2, 12) ||
	    z[14] != ' ' || !qparse_digits(z + 15, 12) || z[27] != '\n')
		return "invalid Z record";
	env->msg_offset = (off_t)strtoll(z + 2, NULL, 10);
	env->msg_size = (off_t)strtoll(z + 15, NULL, 10);
	if (env->msg_offset < (off_t)(QFILE_MAGIC_LEN + QFILE_ZREC_LEN + 2) ||
	    env->msg_offset > QFILE_MAX_ENVELOPE)
		return "Z record: invalid message offset";
	if (env->msg_offset + env->msg_size != file_size)
		return "Z record: message offset and size do not match the file size";
	return NULL;
}

/* Parses the envelope text buf[0..len), which ends just before the
 * message. Sets *line_out to the line of an error. */
static const char *qparse_envelope(struct qparse *p, char *buf, size_t len,
    int *line_out)
{
	size_t pos = QFILE_MAGIC_LEN + QFILE_ZREC_LEN;
	int line = 2;

	while (pos < len) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		char *s = buf + pos;
		const char *err;

		*line_out = ++line;
		if (nl == NULL)
			return "record without a line end";
		*nl = '\0';
		if (memchr(s, '\0', (size_t)(nl - s)) != NULL || strchr(s, '\r'))
			return "NUL or CR in record";
		if (strcmp(s, "M") == 0) {
			if ((size_t)(nl - buf) + 1 != len)
				return "M record before the message offset of the Z record";
			p->seen |= 1u << ('M' - 'A');
			return NULL;
		}
		if (s[0] < 'A' || s[0] > 'Z' || s[1] != ' ')
			return "malformed record";
		err = qparse_record(p, s[0], s + 2, (off_t)(pos + 2));
		if (err != NULL)
			return err;
		p->seen |= 1u << (s[0] - 'A');
		pos = (size_t)(nl - buf) + 1;
	}
	*line_out = line;
	return "missing M record";
}

/* Names the first required record that is missing, or NULL. */
static const char *qparse_required(const struct qparse *p)
{
	static const char required[] = "ITSM";

	for (const char *c = required; *c != '\0'; c++)
		if (!(p->seen & (1u << (*c - 'A')))) {
			switch (*c) {
			case 'I': return "missing I record (queue ID)";
			case 'T': return "missing T record (arrival time)";
			case 'S': return "missing S record (sender)";
			default: return "missing M record";
			}
		}
	return NULL;
}

/* Reads and parses the envelope of the open file fd. Returns 0, -1 with
 * errno, or -2 with *err_out set. */
static int qfile_parse_fd(int fd, const char *path, struct qenv *env,
    char **err_out)
{
	struct qparse p = {.env = env};
	char head[QFILE_MAGIC_LEN + QFILE_ZREC_LEN];
	const char *err;
	struct stat st;
	char *buf;
	ssize_t n;
	int line = 1;

	if (fstat(fd, &st) < 0)
		return -1;
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(head)) {
		*err_out = xasprintf("%s: line 1: file too short for a queue file", path);
		return -2;
	}
	err = qparse_zrec(head, st.st_size, env);
	if (err != NULL) {
		line = memcmp(head, QFILE_MAGIC, QFILE_MAGIC_LEN) == 0 ? 2 : 1;
		goto corrupt;
	}

	buf = xmalloc((size_t)env->msg_offset + 1);
	n = pread(fd, buf, (size_t)env->msg_offset, 0);
	if (n < 0) {
		int saved = errno;
		free(buf);
		errno = saved;
		return -1;
	}
	if (n != (ssize_t)env->msg_offset) {
		free(buf);
		err = "file shorter than the message offset";
		goto corrupt;
	}
	buf[n] = '\0';
	err = qparse_envelope(&p, buf, (size_t)n, &line);
	free(buf);
	if (err == NULL)
		err = qparse_required(&p);
	if (err == NULL)
		return 0;
corrupt:
	*err_out = xasprintf("%s: line %d: %s", path, line, err);
	return -2;
}

int qfile_read(const char *path, int writable, struct qenv **env_out,
    int *fd_out, char **err_out)
{
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	struct qenv *env;
	int rc;

	if (fd < 0)
		return -1;
	env = qenv_new();
	rc = qfile_parse_fd(fd, path, env, err_out);
	if (rc < 0) {
		int saved = errno;

		qenv_free(&env);
		close(fd);
		errno = saved;
		return rc;
	}
	*env_out = env;
	*fd_out = fd;
	return 0;
}

int qfile_set_status(int fd, struct qrcpt *r, char status)
{
	if (status != QSTATUS_PENDING && status != QSTATUS_DELIVERED &&
	    status != QSTATUS_BOUNCED) {
		errno = EINVAL;
		return -1;
	}
	if (r->status_off <= 0) {
		errno = EINVAL;
		return -1;
	}
	if (pwrite(fd, &status, 1, r->status_off) != 1) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	if (fdatasync(fd) < 0)
		return -1;
	r->status = status;
	return 0;
}

/* The queue tree. */

static const struct {
	const char *name;
	mode_t mode;
	int owned;  /* chown to the mail owner when running as root; 2: with
	             * the group setgid_group, when that group exists */
} qfile_dirs[] = {
	{QDIR_INCOMING, 0700, 1},
	{QDIR_ACTIVE, 0700, 1},
	{QDIR_DEFERRED, 0700, 1},
	{QDIR_HOLD, 0700, 1},
	{QDIR_CORRUPT, 0700, 1},
	{QDIR_BOUNCE, 0700, 1},
	{QDIR_DEFER_LOG, 0700, 1},
	/* Any member of setgid_group (sendmail runs set-group-id to it) may
	 * add files, but not list, read or remove those of others. */
	{QDIR_MAILDROP, 01730, 2},
	{QDIR_PRIVATE, 0700, 1},
	{QDIR_PUBLIC, 0755, 1},
	/* master (root) writes its PID file here; a mail owner that could
	 * replace it could make "postern stop" signal another process. */
	{QDIR_PID, 0755, 0},
};

/* Creates dir with mode unless it exists as a directory; then sets the
 * mode and, when chown_it, the owner. */
static int qfile_make_dir(const char *path, mode_t mode, int chown_it,
    uid_t owner, gid_t group, char **err_out)
{
	struct stat st;
	const char *step = "create";

	if (mkdir(path, mode) < 0 && errno != EEXIST)
		goto fail;
	step = "inspect";
	if (lstat(path, &st) < 0)
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		*err_out = xasprintf("invalid queue directory %s: it exists and is not a directory",
		    path);
		return -1;
	}
	step = "chmod";
	if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
		goto fail;
	step = "chown";
	if (chown_it && (st.st_uid != owner || st.st_gid != group) &&
	    chown(path, owner, group) < 0)
		goto fail;
	return 0;
fail:
	*err_out = xasprintf("failed to %s queue directory %s: %s", step, path,
	    strerror(errno));
	return -1;
}

int qfile_make_dirs(const char *queue_dir, uid_t owner, gid_t group,
    char **err_out)
{
	int as_root = geteuid() == 0;

	if (mkdir(queue_dir, 0755) < 0 && errno != EEXIST) {
		*err_out = xasprintf("failed to create queue directory %s: %s",
		    queue_dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(qfile_dirs) / sizeof(qfile_dirs[0]); i++) {
		char *path = xasprintf("%s/%s", queue_dir, qfile_dirs[i].name);
		struct group *gr = as_root && qfile_dirs[i].owned == 2
		    ? getgrnam(config_str("setgid_group")) : NULL;
		int rc = qfile_make_dir(path, qfile_dirs[i].mode,
		    as_root && qfile_dirs[i].owned, owner,
		    gr != NULL ? gr->gr_gid : group, err_out);

		free(path);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Defer logs. */

int qfile_defer_log_write(const char *queue_dir, const char *qid,
    const struct qenv *env, char *const *reasons)
{
	char *tmp = xasprintf("%s/%s/.tmp.%s", queue_dir, QDIR_DEFER_LOG, qid);
	char *path = xasprintf("%s/%s/%s", queue_dir, QDIR_DEFER_LOG, qid);
	int rc = -1, saved;
	FILE *fp = fopen(tmp, "we");

	if (fp == NULL)
		goto out;
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (reasons[i] == NULL)
			continue;
		fprintf(fp, "%zu ", i);
		/* A reason may quote a remote server's reply: keep it on one line. */
		for (const char *c = reasons[i]; *c != '\0'; c++)
			fputc(*c == '\n' || *c == '\r' ? ' ' : *c, fp);
		fputc('\n', fp);
	}
	if (fclose(fp) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto out;
	}
	rc = rename(tmp, path);
	if (rc < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
	}
out:
	saved = errno;
	free(tmp);
	free(path);
	errno = saved;
	return rc;
}

int qfile_defer_log_read(const char *queue_dir, const char *qid,
    size_t nrcpt, char ***reasons_out)
{
	char *path = xasprintf("%s/%s/%s", queue_dir, QDIR_DEFER_LOG, qid);
	FILE *fp = fopen(path, "re");
	char **reasons = xcalloc(nrcpt + 1, sizeof(char *));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	free(path);
	if (fp == NULL) {
		if (errno == ENOENT) {
			*reasons_out = reasons;
			return 0;
		}
		int saved = errno;
		free(reasons);
		errno = saved;
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) > 0) {
		char *end;
		unsigned long idx;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (line[0] < '0' || line[0] > '9')
			continue;
		errno = 0;
		idx = strtoul(line, &end, 10);
		if (errno != 0 || *end != ' ' || idx >= nrcpt)
			continue;
		free(reasons[idx]);
		reasons[idx] = xstrdup(end + 1);
	}
	free(line);
	fclose(fp);
	*reasons_out = reasons;
	return 0;
}
