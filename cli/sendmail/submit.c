/*
 * Reading the message that a local program submits and writing it into
 * maildrop/ for pickup.
 *
 * Input lines may end in LF or CRLF; the file gets LF. Without -i a line
 * holding only "." ends the input, as in Sendmail 8 and Postfix; other
 * lines that start with a dot are kept as they are (no dot-unstuffing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "header.h"
#include "iox.h"
#include "maildrop.h"
#include "qfile.h"
#include "sbuf.h"
#include "sendmail.h"

/* Bytes read per piece of a body line. */
#define SM_PIECE 8192

struct sm_input {
	FILE *fp;
	int ignore_dots;
	int at_line_start;
	int done;
};

/*
 * Reads up to size bytes of one line into buf. Returns the byte count,
 * with *complete set when the line ended (its LF, and a CR before it,
 * removed; a last line without LF counts as ended). Returns -1 at the
 * end of the input (end of file, or a lone "." without -i) and -2 on a
 * read error.
 */
static long sm_input_piece(struct sm_input *in, char *buf, size_t size,
    int *complete)
{
	size_t n = 0;
	int c = 0;

	*complete = 0;
	if (in->done)
		return -1;
	while (n < size && (c = getc_unlocked(in->fp)) != EOF && c != '\n')
		buf[n++] = (char)c;
	if (c == EOF) {
		if (ferror(in->fp))
			return -2;
		in->done = 1;
		if (n == 0)
			return -1;
		*complete = 1;
	} else if (c == '\n') {
		*complete = 1;
	} else if (buf[n - 1] == '\r') {
		/* A CRLF split by the piece size: look at the next byte. */
		c = getc_unlocked(in->fp);
		if (c == '\n')
			*complete = 1;
		else if (c != EOF)
			ungetc(c, in->fp);
	}
	if (*complete && n > 0 && buf[n - 1] == '\r')
		n--;
	if (*complete && in->at_line_start && !in->ignore_dots && n == 1
	    && buf[0] == '.') {
		in->done = 1;
		return -1;
	}
	in->at_line_start = *complete;
	return (long)n;
}

char *sm_address_canonical(const char *text, const char *myorigin,
    int allow_null, char **err_out)
{
	char **specs = NULL, *internal = NULL, *path, *result = NULL;
	const char *rest;
	size_t count = 0;

	/* The list parser would read "a@x\nName: b" as a group and keep
	 * only "b", and no RFC 5321 path contains a control character. */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if (*p < 32 || *p == 127) {
			*err_out = xasprintf("invalid address: control character "
			    "0x%02x", *p);
			return NULL;
		}
	if (sm_address_list(text, &specs, &count, 2, err_out) < 0)
		return NULL;
	if (count == 0 && allow_null) {
		result = xstrdup("");
		goto out;
	}
	if (count != 1) {
		*err_out = xasprintf("invalid address \"%.300s\": expected one"
		    " address", text);
		goto out;
	}
	/* The domain starts after the last '@' outside a quoted local part. */
	const char *quote_end = strrchr(specs[0], '"');
	const char *at = strrchr(quote_end ? quote_end : specs[0], '@');
	path = at ? xasprintf("<%s>", specs[0])
	    : xasprintf("<%s@%s>", specs[0], myorigin);
	enum addr_error e = addr_parse_path(path, 0, 0, &internal, &rest);
	if (e != ADDR_OK || *rest != '\0') {
		*err_out = xasprintf("invalid address \"%.300s\": %s", text,
		    e != ADDR_OK ? addr_strerror(e) : "text after the address");
	} else {
		result = addr_externalize(internal);
	}
	free(path);
out:
	for (size_t i = 0; i < count; i++)
		free(specs[i]);
	free(specs);
	free(internal);
	return result;
}

/* Everything that one submission collects before writing the file. */
struct sm_message {
	struct sm_headers headers;
	struct sbuf first_body_line; /* a line that ended the header section */
	int body_started;            /* first_body_line holds the body's start */
	int body_mid_line;           /* first_body_line ended without its LF */
	char **rcpts;                /* external form */
	size_t nrcpt;
	char *sender;                /* external form, "" for the null sender */
};

static void sm_message_free(struct sm_message *m)
{
	sm_headers_free(&m->headers);
	sbuf_free(&m->first_body_line);
	for (size_t i = 0; i < m->nrcpt; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->sender);
}

/*
 * Reads the header section into m->headers. It ends at an empty line
 * (consumed), at a line that is no header field (kept in
 * m->first_body_line), or at the end of the input. Returns 0 or an exit
 * status after printing why.
 */
static int sm_read_headers(const struct sm_submission *sub,
    struct sm_input *in, struct sm_message *m)
{
	struct sbuf line;
	char piece[SM_PIECE];
	int complete, first = 1, status = 0;
	long n;

	/* One piece past the limit, so that a too long line is read whole up
	 * to the limit and can still start the body. */
	sbuf_init(&line, sub->header_size_limit + sizeof(piece));
	for (;;) {
		sbuf_reset(&line);
		complete = 0;
		n = 0;
		while (!complete && line.len <= sub->header_size_limit
		    && (n = sm_input_piece(in, piece, sizeof(piece),
		    &complete)) >= 0)
			sbuf_append(&line, piece, (size_t)n);
		if (n == -2) {
			fprintf(stderr, "sendmail: failed to read the message: %s\n",
			    strerror(errno));
			status = EX_IOERR;
			break;
		}
		if (line.len == 0 && !complete)
			break;  /* end of input */
		if (line.len == 0)
			break;  /* the empty line before the body */

		const char *text = sbuf_cstr(&line);
		size_t name_len = sm_header_name_len(text, line.len);
		int is_cont = (text[0] == ' ' || text[0] == '\t')
		    && m->headers.count > 0;

		/* An mbox "From " separator line before the header is dropped. */
		if (first && name_len == 0 && strncmp(text, "From ", 5) == 0) {
			first = 0;
			continue;
		}
		first = 0;
		if (name_len == 0 && !is_cont) {
			sbuf_append(&m->first_body_line, line.data, line.len);
			m->body_started = 1;
			m->body_mid_line = !complete;
			break;
		}
		if (!complete || (is_cont ? sm_headers_append(&m->headers, text,
		    line.len) : sm_headers_start(&m->headers, text, line.len,
		    name_len)) < 0) {
			fprintf(stderr, "sendmail: the message header is larger than"
			    " header_size_limit (%zu bytes)\n", sub->header_size_limit);
			status = EX_DATAERR;
			break;
		}
	}
	sbuf_free(&line);
	return status;
}

/* Adds one recipient given as text (command line or header). */
static int sm_add_rcpt(const struct sm_submission *sub, struct sm_message *m,
    const char *text)
{
	char *err = NULL;
	char *rcpt = sm_address_canonical(text, sub->myorigin, 0, &err);

	if (rcpt == NULL) {
		fprintf(stderr, "sendmail: recipient: %s\n", err);
		free(err);
		return EX_DATAERR;
	}
	if (m->nrcpt >= MAILDROP_MAX_RCPT) {
		free(rcpt);
		fprintf(stderr, "sendmail: more than %d recipients\n",
		    MAILDROP_MAX_RCPT);
		return EX_DATAERR;
	}
	m->rcpts = xrealloc(m->rcpts, (m->nrcpt + 1) * sizeof(char *));
	m->rcpts[m->nrcpt++] = rcpt;
	return 0;
}

/* -t: takes the recipients from To, Cc and Bcc and drops Bcc. */
static int sm_extract_rcpts(const struct sm_submission *sub,
    struct sm_message *m)
{
	static const char *const names[] = {"To", "Cc", "Bcc"};
	struct sm_headers *h = &m->headers;

	for (size_t i = 0; i < h->count; i++) {
		struct sm_field *f = &h->fields[i];
		const char *name = h->raw.data + f->offset;
		int wanted = 0;

		for (size_t k = 0; k < 3; k++)
			if (f->name_len == strlen(names[k])
			    && strncasecmp(name, names[k], f->name_len) == 0)
				wanted = 1;
		if (!wanted)
			continue;

		char *value = sm_headers_value(h, i), *err = NULL;
		char **specs = NULL;
		size_t count = 0;
		int status = 0;

		if (sm_address_list(value, &specs, &count, MAILDROP_MAX_RCPT,
		    &err) < 0) {
			fprintf(stderr, "sendmail: %.*s header: %s\n",
			    (int)f->name_len, name, err);
			free(err);
			status = EX_DATAERR;
		}
		for (size_t k = 0; k < count; k++) {
			if (status == 0)
				status = sm_add_rcpt(sub, m, specs[k]);
			free(specs[k]);
		}
		free(specs);
		free(value);
		if (status != 0)
			return status;
		if (f->name_len == 3 && strncasecmp(name, "Bcc", 3) == 0)
			f->dropped = 1;
	}
	return 0;
}

/* RFC 5322 3.3 date in local time, e.g. "Mon, 02 Jun 2025 10:00:00 +0200". */
static void sm_format_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		out[0] = '\0';
}

/* Writes a From display name: atext words as they are, anything else
 * as a quoted-string (RFC 5322 3.2.4). Control characters are left out.
 * NOTE: non-ASCII names are written as 8-bit text, not RFC 2047 words. */
static void sm_put_display_name(FILE *fp, const char *name)
{
	static const char atext_specials[] = "!#$%&'*+-/=?^_`{|}~ ";
	int plain = 1;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		    || (*p >= '0' && *p <= '9')
		    || strchr(atext_specials, *p) != NULL))
			plain = 0;
	if (!plain)
		fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 32 || *p == 127)
			continue;
		if (!plain && (*p == '"' || *p == '\\'))
			fputc('\\', fp);
		fputc(*p, fp);
	}
	if (!plain)
		fputc('"', fp);
}

/* Adds the From, Date and Message-ID fields that the message lacks, as
 * RFC 5322 3.6 requires of every message. */
static void sm_write_added_headers(FILE *fp, const struct sm_submission *sub,
    const struct sm_message *m, const char *id)
{
	const struct sm_headers *h = &m->headers;
	time_t now = time(NULL);

	if (sm_headers_find(h, "From") < 0) {
		char *login_addr = NULL;
		const char *addr = m->sender;
		const char *name = sub->opts->fullname ? sub->opts->fullname
		    : sub->gecos_name;

		if (addr[0] == '\0') {
			char *err = NULL;

			addr = login_addr = sm_address_canonical(sub->login,
			    sub->myorigin, 0, &err);
			free(err);
		}
		fputs("From: ", fp);
		if (name != NULL && name[0] != '\0') {
			sm_put_display_name(fp, name);
			fprintf(fp, " <%s>\n", addr ? addr : "");
		} else {
			fprintf(fp, "%s\n", addr ? addr : "");
		}
		free(login_addr);
	}
	if (sm_headers_find(h, "Date") < 0) {
		char date[64];

		sm_format_date(now, date, sizeof(date));
		fprintf(fp, "Date: %s\n", date);
	}
	if (sm_headers_find(h, "Message-ID") < 0) {
		char stamp[32];
		struct tm tm;

		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		fprintf(fp, "Message-ID: <%s.%s@%s>\n", stamp, id, sub->myhostname);
	}
}

/* A maildrop file being written. */
struct sm_drop {
	char *tmp_path;
	char *path;
	FILE *fp;
};

static int sm_drop_open(const struct sm_submission *sub, struct sm_drop *d,
    char id[QID_SIZE])
{
	qid_new(id);
	d->tmp_path = xasprintf("%s/%s/%s%s", sub->queue_dir, QDIR_MAILDROP,
	    MAILDROP_TMP_PREFIX, id);
	d->path = xasprintf("%s/%s/%s", sub->queue_dir, QDIR_MAILDROP, id);
	int fd = open(d->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
	    | O_CLOEXEC, 0600);
	if (fd < 0 || (d->fp = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "sendmail: failed to create %s: %s\n",
		    d->tmp_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}

static void sm_drop_free(struct sm_drop *d)
{
	if (d->fp != NULL)
		fclose(d->fp);
	free(d->tmp_path);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

static void sm_drop_abort(struct sm_drop *d)
{
	if (d->tmp_path != NULL)
		unlink(d->tmp_path);
	sm_drop_free(d);
}

/* Flushes, fsync()s, opens the file to pickup and renames it into place. */
static int sm_drop_commit(struct sm_drop *d)
{
	int fd = fileno(d->fp);

	if (fflush(d->fp) != 0 || fchmod(fd, MAILDROP_MODE_READY) < 0
	    || fsync(fd) < 0 || rename(d->tmp_path, d->path) < 0) {
		fprintf(stderr, "sendmail: failed to write %s: %s\n", d->tmp_path,
		    strerror(errno));
		sm_drop_abort(d);
		return -1;
	}
	sm_drop_free(d);
	return 0;
}

static void sm_write_envelope(FILE *fp, const struct sm_submission *sub,
    const struct sm_message *m)
{
	const struct sm_options *o = sub->opts;

	fprintf(fp, "%s\nS %s\n", MAILDROP_MAGIC, m->sender);
	if (o->envid != NULL)
		fprintf(fp, "E %s\n", o->envid);
	if (o->ret != NULL)
		fprintf(fp, "J %s\n", o->ret);
	if (o->notify & QNOTIFY_NEVER)
		fputs("N NEVER\n", fp);
	else if (o->notify != 0)
		fprintf(fp, "N %s%s%s\n",
		    o->notify & QNOTIFY_SUCCESS ? "SUCCESS," : "",
		    o->notify & QNOTIFY_FAILURE ? "FAILURE," : "",
		    o->notify & QNOTIFY_DELAY ? "DELAY" : "");
	for (size_t i = 0; i < m->nrcpt; i++)
		fprintf(fp, "R %s\n", m->rcpts[i]);
	fputs("M\n", fp);
}

/* Writes the header section and the body. Returns 0 or an exit status. */
static int sm_write_message(FILE *fp, const struct sm_submission *sub,
    struct sm_input *in, const struct sm_message *m, const char *id)
{
	const struct sm_headers *h = &m->headers;
	char piece[SM_PIECE];
	off_t start = ftello(fp);
	int complete;
	long n;

	for (size_t i = 0; i < h->count; i++)
		if (!h->fields[i].dropped)
			fwrite(h->raw.data + h->fields[i].offset, 1, h->fields[i].len,
			    fp);
	sm_write_added_headers(fp, sub, m, id);
	fputc('\n', fp);
	if (m->body_started) {
		fwrite(m->first_body_line.data, 1, m->first_body_line.len, fp);
		if (!m->body_mid_line)
			fputc('\n', fp);
	}
	while ((n = sm_input_piece(in, piece, sizeof(piece), &complete)) >= 0) {
		fwrite(piece, 1, (size_t)n, fp);
		if (complete)
			fputc('\n', fp);
		if (sub->message_size_limit > 0
		    && ftello(fp) - start > (off_t)sub->message_size_limit)
			break;
	}
	if (n == -2) {
		fprintf(stderr, "sendmail: failed to read the message: %s\n",
		    strerror(errno));
		return EX_IOERR;
	}
	if (sub->message_size_limit > 0
	    && ftello(fp) - start > (off_t)sub->message_size_limit) {
		fprintf(stderr, "sendmail: the message is larger than"
		    " message_size_limit (%zu bytes)\n", sub->message_size_limit);
		return EX_DATAERR;
	}
	return 0;
}

/* Sends pickup a wake-up; the file waits in maildrop/ when that fails. */
static void sm_wake_pickup(const char *queue_dir)
{
	char *path = xasprintf("%s/%s", queue_dir, PICKUP_SOCKET_NAME);
	int fd = iox_unix_connect(path, 1);

	if (fd < 0 || write(fd, "W\n", 2) != 2)
		fprintf(stderr, "sendmail: warning: cannot wake the pickup service"
		    " at %s (%s); the message waits in the maildrop directory"
		    " until pickup runs\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(path);
}

/* Sets m->sender from -f, or login@myorigin. */
static int sm_set_sender(const struct sm_submission *sub, struct sm_message *m)
{
	char *err = NULL;
	const char *text = sub->opts->sender ? sub->opts->sender : sub->login;

	m->sender = sm_address_canonical(text, sub->myorigin,
	    sub->opts->sender != NULL, &err);
	if (m->sender == NULL) {
		fprintf(stderr, "sendmail: sender: %s\n", err);
		free(err);
		return EX_DATAERR;
	}
	return 0;
}

int sm_submit(const struct sm_submission *sub, FILE *in_fp)
{
	struct sm_input in = {.fp = in_fp, .ignore_dots = sub->opts->ignore_dots,
	    .at_line_start = 1};
	struct sm_message m;
	struct sm_drop drop = {0};
	char id[QID_SIZE];
	int status;

	memset(&m, 0, sizeof(m));
	sm_headers_init(&m.headers, sub->header_size_limit);
	sbuf_init(&m.first_body_line, 0);
	if ((status = sm_set_sender(sub, &m)) != 0)
		goto out;
	for (size_t i = 0; i < sub->opts->nrcpt; i++)
		if ((status = sm_add_rcpt(sub, &m, sub->opts->rcpts[i])) != 0)
			goto out;
	if ((status = sm_read_headers(sub, &in, &m)) != 0)
		goto out;
	if (sub->opts->extract_rcpts
	    && (status = sm_extract_rcpts(sub, &m)) != 0)
		goto out;
	if (m.nrcpt == 0) {
		fprintf(stderr, "sendmail: no recipients: name them as arguments,"
		    " or use -t to take them from To, Cc and Bcc\n");
		status = EX_USAGE;
		goto out;
	}

	if (sm_drop_open(sub, &drop, id) < 0) {
		status = EX_CANTCREAT;
		goto out;
	}
	sm_write_envelope(drop.fp, sub, &m);
	status = sm_write_message(drop.fp, sub, &in, &m, id);
	if (status != 0) {
		sm_drop_abort(&drop);
		goto out;
	}
	if (sm_drop_commit(&drop) < 0) {
		status = EX_TEMPFAIL;
		goto out;
	}
	sm_wake_pickup(sub->queue_dir);
out:
	sm_message_free(&m);
	return status;
}
