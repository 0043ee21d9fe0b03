/*
 * mastercf - parsing of master.cf.
 *
 * One service per logical line:
 *   service type private unpriv chroot wakeup maxproc command [args...]
 * '#' starts a comment line; a line that starts with white space
 * continues the previous one. type is "inet" or "unix". A "-" column
 * takes the default: private y, unpriv y, chroot n, wakeup 0, maxproc
 * -1 (the caller decides: one per CPU for event-driven programs,
 * default_process_limit for the others). "-o name=value" arguments are
 * collected as overrides; the remaining arguments are passed through.
 * For inet services, service is "port", "host:port" or "[host]:port".
 */
#ifndef POSTERN_MASTERCF_H
#define POSTERN_MASTERCF_H

#include <stddef.h>

struct mastercf_entry {
	char *service;     /* "smtp", "127.0.0.1:2525", "qmgr", ... */
	char *type;        /* "inet" or "unix" */
	int private_;      /* 1 when the socket lives under private/ */
	int unpriv;        /* 1 to run as mail_owner */
	int chroot;        /* 1 to chroot into queue_directory */
	int wakeup;        /* seconds, 0 = none */
	int maxproc;       /* -1 = default */
	char *command;     /* program name in daemon_directory */
	char **overrides;  /* "name=value", noverrides entries */
	size_t noverrides;
	char **args;       /* other arguments, nargs entries */
	size_t nargs;
	int line;          /* line number in master.cf, for messages */
};

/* Parses master.cf at path. Returns 0 and a malloc'd array in *entries_out,
 * or -1 with a message naming the file, line and the bad column in
 * *err_out (caller frees). Duplicate service/type pairs are an error. */
int mastercf_load(const char *path, struct mastercf_entry **entries_out,
    size_t *count_out, char **err_out);

/* Same, from text (origin names it in messages). */
int mastercf_parse(const char *text, const char *origin,
    struct mastercf_entry **entries_out, size_t *count_out, char **err_out);

void mastercf_free(struct mastercf_entry **entries, size_t count);

#endif
