/*
 * The subcommands of the postern operator tool. Each takes the arguments
 * after its name (argv[0] is the subcommand name), runs with main.cf
 * already loaded from the -c directory (or the default), prints errors to
 * standard error, and returns the process exit status: 0 on success, 1 on
 * a failure, 2 on a usage error.
 */
#ifndef POSTERN_CLI_COMMANDS_H
#define POSTERN_CLI_COMMANDS_H

int cmd_start(int argc, char **argv);   /* control.c: start [-f] */
int cmd_stop(int argc, char **argv);    /* control.c */
int cmd_reload(int argc, char **argv);  /* control.c */
int cmd_status(int argc, char **argv);  /* control.c */
int cmd_queue(int argc, char **argv);   /* queue.c: queue [--json] */
int cmd_flush(int argc, char **argv);   /* queue.c */
int cmd_cat(int argc, char **argv);     /* queue.c: cat QUEUEID */
int cmd_map(int argc, char **argv);     /* map.c: map [type:]FILE, map -q KEY type:FILE */
int cmd_conf(int argc, char **argv);    /* conf.c: conf [-n|-d] [name...] */
int cmd_tls_check(int argc, char **argv); /* tls.c: tls-check */
int cmd_delete(int argc, char **argv);  /* maint.c: delete QUEUEID...|ALL|deferred|- */
int cmd_hold(int argc, char **argv);    /* maint.c: hold QUEUEID...|ALL|- */
int cmd_release(int argc, char **argv); /* maint.c: release QUEUEID...|ALL|- */
int cmd_requeue(int argc, char **argv); /* maint.c: requeue QUEUEID...|ALL|- */

#endif
