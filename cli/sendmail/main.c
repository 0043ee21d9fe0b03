/*
 * sendmail, mailq, newaliases - the commands that local programs and
 * users run, in the command-line dialect of Sendmail 8 and Postfix.
 *
 * sendmail is installed set-group-id to setgid_group ("postdrop"), the
 * group that may write into maildrop/ (mode 1730), and keeps that group
 * only to write the maildrop file. Every other mode gives it up first,
 * because a private main.cf could point the program anywhere. So does a
 * -C directory given by a user other than root, unless root owns that
 * directory and its main.cf and only root may write them. mailq and
 * newaliases are links to this program.
 */
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "sendmail.h"

/* Gives up the set-group-id group for good. */
static void sm_drop_setgid(void)
{
	if (getegid() != getgid() && setgid(getgid()) < 0) {
		fprintf(stderr, "sendmail: failed to give up the set-group-id group:"
		    " %s\n", strerror(errno));
		exit(EX_OSERR);
	}
}

/* 1 when a -C directory and its main.cf belong to root and only root
 * may write them, so that the user who runs sendmail did not write them. */
static int sm_config_dir_trusted(const char *dir)
{
	char *path = xasprintf("%s/main.cf", dir);
	struct stat d, f;
	int trusted = stat(dir, &d) == 0 && stat(path, &f) == 0
	    && d.st_uid == 0 && f.st_uid == 0
	    && (d.st_mode & (S_IWGRP | S_IWOTH)) == 0
	    && (f.st_mode & (S_IWGRP | S_IWOTH)) == 0;

	free(path);
	return trusted;
}

/* newaliases: builds each hash: and btree: table of alias_maps. */
static int sm_newaliases(void)
{
	char *err = NULL;
	size_t count;
	char **specs = map_split_list(config_str("alias_maps"), &count, &err);
	int status = 0;

	if (specs == NULL) {
		fprintf(stderr, "newaliases: invalid alias_maps: %s\n", err);
		free(err);
		return EX_CONFIG;
	}
	for (size_t i = 0; i < count; i++) {
		if (strncmp(specs[i], "hash:", 5) != 0
		    && strncmp(specs[i], "btree:", 6) != 0)
			continue;
		if (map_build(specs[i], &err) < 0) {
			fprintf(stderr, "newaliases: %s\n", err);
			free(err);
			err = NULL;
			status = EX_CANTCREAT;
		}
	}
	free(specs);
	return status;
}

/* Runs one postern subcommand (queue or flush) with its name alone. */
static int sm_postern_command(int (*cmd)(int, char **), const char *name)
{
	char *argv[] = {(char *)name, NULL};

	return cmd(1, argv) == 0 ? EX_OK : EX_UNAVAILABLE;
}

/* The passwd comment field up to the first comma (the full name). */
static char *sm_gecos_name(const struct passwd *pw)
{
	const char *gecos = pw->pw_gecos ? pw->pw_gecos : "";

	return xstrndup(gecos, strcspn(gecos, ","));
}

static int sm_deliver(const struct sm_options *opts)
{
	struct passwd *pw = getpwuid(getuid());
	struct sm_submission sub = {.opts = opts};
	int status;

	if (pw == NULL) {
		fprintf(stderr, "sendmail: user ID %lu has no passwd entry; a"
		    " sender needs a login name\n", (unsigned long)getuid());
		return EX_NOUSER;
	}
	char *login = xstrdup(pw->pw_name);
	char *gecos = sm_gecos_name(pw);

	sub.queue_dir = config_str("queue_directory");
	sub.login = login;
	sub.gecos_name = gecos;
	sub.myorigin = config_str("myorigin");
	sub.myhostname = config_str("myhostname");
	sub.message_size_limit = (size_t)config_int("message_size_limit");
	sub.header_size_limit = (size_t)config_int("header_size_limit");
	if (sub.header_size_limit == 0)
		sub.header_size_limit = 102400;
	status = sm_submit(&sub, stdin);
	free(login);
	free(gecos);
	return status;
}

int main(int argc, char **argv)
{
	struct sm_options opts;
	struct sbuf warnings;
	char *err = NULL;
	char *progname = basename(xstrdup(argv[0] ? argv[0] : "sendmail"));

	umask(077);
	setenv("POSTERN_LOG_STDERR", "1", 1);
	log_init(progname);
	sbuf_init(&warnings, 4096);
	if (sm_options_parse(argc, argv, progname, &opts, &warnings, &err) < 0) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_USAGE;
	}
	for (char *line = warnings.data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		fprintf(stderr, "%s: warning: %s\n", progname, line);
	}
	if (opts.mode != SM_MODE_DELIVER || (opts.config_dir != NULL
	    && getuid() != 0 && !sm_config_dir_trusted(opts.config_dir)))
		sm_drop_setgid();
	if (config_load(opts.config_dir, &err) < 0) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG;
	}

	switch (opts.mode) {
	case SM_MODE_MAILQ:
		return sm_postern_command(cmd_queue, "queue");
	case SM_MODE_NEWALIASES:
		return sm_newaliases();
	case SM_MODE_FLUSH:
		return sm_postern_command(cmd_flush, "flush");
	case SM_MODE_DELIVER:
		break;
	}
	return sm_deliver(&opts);
}
