/*
 * postern - the operator command: starts, stops and inspects a Postern
 * instance. "postern [-c CONFIG_DIR] COMMAND [args]".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{"start", cmd_start, "start [-f]        start the mail system (-f: stay in the foreground)"},
	{"stop", cmd_stop, "stop              stop the mail system"},
	{"reload", cmd_reload, "reload            re-read the configuration without cutting sessions"},
	{"status", cmd_status, "status            show whether the system runs and its services"},
	{"queue", cmd_queue, "queue [--json]    list queued messages"},
	{"flush", cmd_flush, "flush             retry every deferred message now"},
	{"cat", cmd_cat, "cat QUEUEID       print a queue file in readable form"},
	{"delete", cmd_delete, "delete QUEUEID... remove messages (ALL, deferred, or - to read IDs from standard input)"},
	{"hold", cmd_hold, "hold QUEUEID...   keep messages from delivery until released (ALL: incoming and deferred)"},
	{"release", cmd_release, "release QUEUEID... move held messages back to the deferred queue and retry them"},
	{"requeue", cmd_requeue, "requeue QUEUEID... resolve messages again, as after a transport_maps change (ALL: deferred)"},
	{"map", cmd_map, "map [type:]FILE   build FILE.db; map -q KEY type:FILE looks KEY up"},
	{"conf", cmd_conf, "conf [-n|-d] [NAME...]  print parameters (-n: set in main.cf, -d: defaults)"},
	{"tls-check", cmd_tls_check, "tls-check         check the server certificates: key, chain, trust, expiry, names"},
};

/* 1 for "conf -d ...", which prints only compiled-in defaults. */
static int wants_defaults_only(int argc, char **argv)
{
	if (strcmp(argv[0], "conf") != 0)
		return 0;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-d") == 0)
			return 1;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: postern [-c CONFIG_DIR] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
	const char *config_dir = NULL;
	char *err = NULL;
	int opt;

	setenv("POSTERN_LOG_STDERR", "1", 0);
	log_init("postern");
	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		switch (opt) {
		case 'c':
			config_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}

	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, argv[optind]) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "postern: unknown command \"%s\"; run \"postern -h\" for the list\n",
		    argv[optind]);
		return 2;
	}

	if (config_load(config_dir, &err) < 0) {
		/* The compiled-in defaults need no main.cf, so that an operator
		 * can read them before writing one. */
		if (!wants_defaults_only(argc - optind, argv + optind)) {
			fprintf(stderr, "postern: %s\n", err);
			free(err);
			return 1;
		}
		free(err);
		err = NULL;
		if (config_load_text("", "compiled-in defaults", &err) < 0) {
			fprintf(stderr, "postern: %s\n", err);
			free(err);
			return 1;
		}
	}
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 1;
	return cmd->run(sub_argc, sub_argv);
}
