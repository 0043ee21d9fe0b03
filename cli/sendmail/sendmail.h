/*
 * sendmail - submission from local programs: the parts of the program
 * that main.c ties together.
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stddef.h>
#include <stdio.h>

#include "options.h"

/* Exit statuses from sysexits.h, which local programs test. */
#include <sysexits.h>

/* What submit.c needs to know besides the options. */
struct sm_submission {
	const struct sm_options *opts;
	const char *queue_dir;
	const char *login;        /* login name of the real user ID */
	const char *gecos_name;   /* full name from passwd, may be "" */
	const char *myorigin;
	const char *myhostname;
	size_t message_size_limit; /* bytes; 0: no limit */
	size_t header_size_limit;  /* bytes */
};

/*
 * Reads the message from in, builds the envelope, writes the maildrop
 * file and wakes pickup. Returns an exit status: 0 (EX_OK) on success,
 * else a sysexits value after printing the reason to standard error.
 */
int sm_submit(const struct sm_submission *sub, FILE *in);

/*
 * Turns an address from the command line or a header into the external
 * form for the maildrop file: "<>" and "" give "" (the null sender, only
 * when allow_null), an address without "@domain" gets "@myorigin", and
 * the result must be a valid RFC 5321 path. Returns the malloc'd address,
 * or NULL with a message in *err_out (caller frees).
 */
char *sm_address_canonical(const char *text, const char *myorigin,
    int allow_null, char **err_out);

#endif
