/*
 * The table of services built from master.cf: process limits, socket
 * addresses and the command line of each service.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "config.h"
#include "mastercf.h"
#include "master.h"
#include "qfile.h"
#include "sbuf.h"

/* Programs that serve many connections per process on an event loop. */
struct master_fixed_program {
	const char *command;
	int singleton;       /* always exactly one process */
	int per_cpu;         /* default count: one per CPU, else one */
};

static const struct master_fixed_program master_fixed_programs[] = {
	{"smtpd", 0, 1},
	{"tlsproxy", 0, 1},
	/* One authd keeps the failure counters of every client in one place. */
	{"authd", 0, 0},
	{"qmgr", 1, 0},
	/* One pickup scans maildrop/; it accepts wake-ups on its own loop. */
	{"pickup", 1, 0},
	/* One anvil sees the connections of every smtpd process. */
	{"anvil", 1, 0},
};

static const struct master_fixed_program *master_fixed_lookup(const char *command)
{
	size_t n = sizeof(master_fixed_programs) / sizeof(master_fixed_programs[0]);

	for (size_t i = 0; i < n; i++)
		if (strcmp(master_fixed_programs[i].command, command) == 0)
			return &master_fixed_programs[i];
	return NULL;
}

static int master_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/* Resolves the process limit: "-" in master.cf arrives as -1. */
static void master_resolve_limit(struct master_service *svc, int maxproc)
{
	const struct master_fixed_program *fixed = master_fixed_lookup(svc->command);

	if (fixed == NULL) {
		svc->kind = MASTER_KIND_ON_DEMAND;
		svc->maxproc = maxproc >= 0 ? maxproc
		    : (int)config_int("default_process_limit");
		return;
	}
	svc->kind = MASTER_KIND_FIXED;
	svc->singleton = fixed->singleton;
	if (fixed->singleton)
		svc->maxproc = 1;
	else if (maxproc > 0)
		svc->maxproc = maxproc;
	else if (strcmp(svc->command, "smtpd") == 0
	    && config_int("smtpd_process_count") > 0)
		svc->maxproc = (int)config_int("smtpd_process_count");
	else
		svc->maxproc = fixed->per_cpu ? master_cpu_count() : 1;
}

/* DAEMON_DIR/COMMAND -c CONFIG_DIR -n SERVICE -t TYPE [-u] [-r]
 * [-o name=value]... [args] */
static char **master_build_argv(const struct master_service *svc,
    const struct mastercf_entry *e)
{
	size_t max = 10 + 2 * e->noverrides + e->nargs;
	char **argv = xcalloc(max, sizeof(char *));
	size_t n = 0;

	argv[n++] = xstrdup(svc->path);
	argv[n++] = xstrdup("-c");
	argv[n++] = xstrdup(master.config_dir);
	argv[n++] = xstrdup("-n");
	argv[n++] = xstrdup(svc->name);
	argv[n++] = xstrdup("-t");
	argv[n++] = xstrdup(svc->type);
	if (svc->unpriv)
		argv[n++] = xstrdup("-u");
	if (svc->chroot)
		argv[n++] = xstrdup("-r");
	for (size_t i = 0; i < e->noverrides; i++) {
		argv[n++] = xstrdup("-o");
		argv[n++] = xstrdup(e->overrides[i]);
	}
	for (size_t i = 0; i < e->nargs; i++)
		argv[n++] = xstrdup(e->args[i]);
	argv[n] = NULL;
	return argv;
}

static struct master_service *master_service_new(const struct mastercf_entry *e,
    const char *daemon_dir, const char *queue_dir)
{
	struct master_service *svc = xcalloc(1, sizeof(*svc));

	svc->name = xstrdup(e->service);
	svc->type = xstrdup(e->type);
	svc->command = xstrdup(e->command);
	svc->path = xasprintf("%s/%s", daemon_dir, e->command);
	svc->line = e->line;
	svc->private_ = e->private_;
	svc->unpriv = e->unpriv;
	svc->chroot = e->chroot;
	svc->wakeup = e->wakeup;
	if (strcmp(e->type, "unix") == 0)
		svc->listen_addr = xasprintf("%s/%s/%s", queue_dir,
		    e->private_ ? QDIR_PRIVATE : QDIR_PUBLIC, e->service);
	else
		svc->listen_addr = xstrdup(e->service);
	master_resolve_limit(svc, e->maxproc);
	svc->argv = master_build_argv(svc, e);
	svc->listen_fd = -1;
	svc->status_rd = -1;
	svc->status_wr = -1;
	return svc;
}

/* Programs that cannot work inside queue_directory, with the reason. */
static const struct {
	const char *command;
	const char *reason;
} master_no_chroot_programs[] = {
	{"local", "it writes to mailboxes and home directories outside "
	    "queue_directory"},
	{"authd", "libsasl2 loads its plugins and the sasldb from outside "
	    "queue_directory"},
};

/* Returns why command cannot run chrooted, or NULL when it can. */
static const char *master_no_chroot_reason(const char *command)
{
	size_t n = sizeof(master_no_chroot_programs) /
	    sizeof(master_no_chroot_programs[0]);

	for (size_t i = 0; i < n; i++)
		if (strcmp(master_no_chroot_programs[i].command, command) == 0)
			return master_no_chroot_programs[i].reason;
	return NULL;
}

/* Checks what mastercf_load leaves to the caller. Returns 0 or -1. */
static int master_service_check(const struct master_service *svc,
    const char *origin, char **err_out)
{
	struct stat st;

	if (strchr(svc->command, '/') != NULL) {
		*err_out = xasprintf("%s, line %d: service %s: command \"%s\" must be"
		    " a program name in daemon_directory, not a path",
		    origin, svc->line, svc->name, svc->command);
		return -1;
	}
	if (stat(svc->path, &st) < 0 || !S_ISREG(st.st_mode)
	    || access(svc->path, X_OK) < 0) {
		*err_out = xasprintf("%s, line %d: service %s: program %s %s",
		    origin, svc->line, svc->name, svc->path,
		    errno == ENOENT ? "not found" : "is not an executable file");
		return -1;
	}
	const char *reason = master_no_chroot_reason(svc->command);
	if (svc->chroot && reason != NULL) {
		*err_out = xasprintf("%s, line %d: service %s: %s cannot run "
		    "chrooted because %s; set its chroot column to n", origin,
		    svc->line, svc->name, svc->command, reason);
		return -1;
	}
	if (strcmp(svc->type, "unix") == 0 && strchr(svc->name, '/') != NULL) {
		*err_out = xasprintf("%s, line %d: unix service name \"%s\" must"
		    " not contain '/'", origin, svc->line, svc->name);
		return -1;
	}
	return 0;
}

static void master_service_list_free(struct master_service *list)
{
	while (list != NULL) {
		struct master_service *next = list->next;

		master_service_free(list);
		list = next;
	}
}

int master_services_load(struct master_service **list_out, char **err_out)
{
	char *path = xasprintf("%s/master.cf", master.config_dir);
	const char *daemon_dir = config_str("daemon_directory");
	const char *queue_dir = config_str("queue_directory");
	struct mastercf_entry *entries = NULL;
	struct master_service *head = NULL, **tail = &head;
	size_t count = 0;
	int rc = -1;

	if (mastercf_load(path, &entries, &count, err_out) < 0)
		goto out;
	if (count == 0) {
		*err_out = xasprintf("%s defines no services", path);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		struct master_service *svc =
		    master_service_new(&entries[i], daemon_dir, queue_dir);

		*tail = svc;
		tail = &svc->next;
		if (master_service_check(svc, path, err_out) < 0)
			goto out;
	}
	*list_out = head;
	head = NULL;
	rc = 0;
out:
	master_service_list_free(head);
	if (entries != NULL)
		mastercf_free(&entries, count);
	free(path);
	return rc;
}

void master_service_free(struct master_service *svc)
{
	master_status_close(svc);
	if (svc->listen_fd >= 0)
		master_listen_close(svc, 0);
	for (char **a = svc->argv; a != NULL && *a != NULL; a++)
		free(*a);
	free(svc->argv);
	free(svc->name);
	free(svc->type);
	free(svc->command);
	free(svc->path);
	free(svc->listen_addr);
	free(svc);
}
