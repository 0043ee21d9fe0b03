/*
 * The sendmail command line, in the dialect that local programs use
 * (Sendmail 8 and Postfix). The parser only classifies the arguments;
 * main.c acts on them.
 */
#ifndef POSTERN_SENDMAIL_OPTIONS_H
#define POSTERN_SENDMAIL_OPTIONS_H

#include <stddef.h>

struct sbuf;

enum sm_mode {
	SM_MODE_DELIVER,     /* -bm, the default: read a message */
	SM_MODE_MAILQ,       /* -bp, or run as mailq */
	SM_MODE_NEWALIASES,  /* -bi, -I, or run as newaliases */
	SM_MODE_FLUSH        /* -q */
};

struct sm_options {
	enum sm_mode mode;
	int extract_rcpts;       /* -t: recipients from To, Cc and Bcc */
	int ignore_dots;         /* -i, -oi: a lone "." does not end input */
	const char *sender;      /* -f or -r; NULL: login@myorigin */
	const char *fullname;    /* -F; NULL: the passwd comment field */
	const char *config_dir;  /* -C or -c */
	int notify;              /* -N: QNOTIFY_* bits, 0 when not given */
	const char *ret;         /* -R: "FULL" or "HDRS", NULL when not given */
	const char *envid;       /* -V */
	int verbose;             /* -v */
	char **rcpts;            /* the arguments after the options */
	size_t nrcpt;
};

/*
 * Parses argv. progname is the name the program was run as: "mailq" and
 * "newaliases" select their mode. Options end at "--" or at the first
 * argument that does not start with '-'; the rest are recipients (rcpts
 * points into argv). Options that other MTAs accept and Postern does not
 * need are ignored; an unknown option is ignored with a line in warnings.
 * Returns 0, or -1 with a message in *err_out (caller frees) for an
 * option that is missing its value, has an invalid value, or asks for a
 * mode Postern does not support.
 */
int sm_options_parse(int argc, char **argv, const char *progname,
    struct sm_options *opts, struct sbuf *warnings, char **err_out);

/* Parses a -N value ("never", or "success,failure,delay" in any case and
 * combination). Returns the QNOTIFY_* bits, or -1 when invalid. */
int sm_notify_parse(const char *value);

#endif
