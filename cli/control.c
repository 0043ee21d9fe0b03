/*
 * postern start, stop, reload and status: control of the master process.
 *
 * master holds an exclusive flock() on $queue_directory/pid/master.pid
 * while it runs. These commands tell a live master from a stale file by
 * testing that lock, never by the PID alone, because a PID left behind
 * by a crash may belong to another process by now.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "commands.h"
#include "config.h"
#include "mastercf.h"
#include "qfile.h"
#include "sbuf.h"

/* How long start waits for the PID file of a new master, and stop for
 * master to end (it gives its services 10 s before SIGKILL). */
#define CONTROL_START_WAIT_MS 10000
#define CONTROL_STOP_WAIT_MS 20000
#define CONTROL_POLL_MS 50

static void control_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static char *control_pidfile_path(void)
{
	return xasprintf("%s/%s/master.pid", config_str("queue_directory"), QDIR_PID);
}

/*
 * Finds the running master. Returns 1 with its PID in *pid_out, 0 when
 * none runs, or -1 after printing why the PID file could not be read.
 */
static int control_master_pid(pid_t *pid_out)
{
	char *path = control_pidfile_path();
	char buf[32];
	int rc = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			fprintf(stderr, "postern: cannot open %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		rc = 0; /* the lock is free, so the file is stale */
		goto out;
	}
	if (errno != EWOULDBLOCK) {
		fprintf(stderr, "postern: cannot test the lock on %s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	/* A master that just took the lock may not have written its PID yet. */
	for (int tries = 0; tries < 40; tries++) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		long pid;

		buf[n > 0 ? n : 0] = '\0';
		pid = strtol(buf, NULL, 10);
		if (pid > 0) {
			*pid_out = (pid_t)pid;
			rc = 1;
			goto out;
		}
		control_sleep_ms(CONTROL_POLL_MS);
	}
	fprintf(stderr, "postern: %s is locked but contains no PID\n", path);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

static char *control_master_program(void)
{
	return xasprintf("%s/master", config_str("daemon_directory"));
}

/* Waits until a master runs; returns its PID or 0 after the timeout. */
static pid_t control_wait_started(void)
{
	for (long waited = 0; waited < CONTROL_START_WAIT_MS; waited += CONTROL_POLL_MS) {
		pid_t pid;

		if (control_master_pid(&pid) == 1 && kill(pid, 0) == 0)
			return pid;
		control_sleep_ms(CONTROL_POLL_MS);
	}
	return 0;
}

/* Runs master without -f: it returns once its listeners are open and the
 * daemon it forked has written the PID file, or fails with its reason on
 * standard error. */
static int control_start_daemon(char *program)
{
	char *argv[] = {program, "-c", (char *)config_dir(), NULL};
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "postern: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execv(program, argv);
		fprintf(stderr, "postern: cannot run %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "postern: waitpid: %s\n", strerror(errno));
			return 1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "postern: the mail system did not start (master %s %d)\n",
		    WIFEXITED(status) ? "exited with status" : "was killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return 1;
	}
	pid = control_wait_started();
	if (pid == 0) {
		fprintf(stderr, "postern: master started, but after %d s no running"
		    " master has locked the PID file; see the mail log\n",
		    CONTROL_START_WAIT_MS / 1000);
		return 1;
	}
	printf("postern: the mail system is running (master PID %ld)\n", (long)pid);
	return 0;
}

/* 1 when text is one or more digits followed by nothing or, when units
 * is not NULL, by one character from units or by "ms". */
static int control_is_number(const char *text, const char *units)
{
	size_t digits = strspn(text, "0123456789");
	const char *suffix = text + digits;

	if (digits == 0 || digits > 18)
		return 0;
	if (*suffix == '\0')
		return 1;
	if (units == NULL)
		return 0;
	if (strcmp(suffix, "ms") == 0)
		return 1;
	return suffix[1] == '\0' && strchr(units, suffix[0]) != NULL;
}

/*
 * Checks the main.cf settings whose compiled-in default is an integer
 * or a time, because a service that reads a bad one exits at start and
 * master restarts it again and again. Returns 0, or -1 after printing
 * the first bad setting.
 */
static int control_check_main_cf(void)
{
	for (const struct config_param *p = config_params; p->name; p++) {
		const char *def = p->default_value;
		const char *expected;
		const char *units;

		if (def == NULL || !config_is_set(p->name))
			continue;
		if (control_is_number(def, NULL)) {
			expected = "an integer";
			units = NULL;
		} else if (control_is_number(def, "smhdw")) {
			expected = "a time such as 300s, 5m, 1h, 5d or 1w";
			units = "smhdw";
		} else {
			continue;
		}
		if (!control_is_number(config_str(p->name), units)) {
			fprintf(stderr, "postern: invalid value \"%s\" for %s in "
			    "%s/main.cf: expected %s\n", config_str(p->name),
			    p->name, config_str("config_directory"), expected);
			return -1;
		}
	}
	return 0;
}

int cmd_start(int argc, char **argv)
{
	int foreground = 0;
	int opt, rc;
	pid_t pid;

	while ((opt = getopt(argc, argv, "f")) != -1) {
		if (opt != 'f') {
			fprintf(stderr, "usage: postern start [-f]\n");
			return 2;
		}
		foreground = 1;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: postern start [-f]\n");
		return 2;
	}
	rc = control_master_pid(&pid);
	if (rc < 0)
		return 1;
	if (rc == 1) {
		fprintf(stderr, "postern: the mail system is already running (master PID %ld)\n",
		    (long)pid);
		return 1;
	}
	if (control_check_main_cf() < 0)
		return 1;

	char *program = control_master_program();

	if (foreground) {
		char *fargv[] = {program, "-c", (char *)config_dir(), "-f", NULL};

		execv(program, fargv);
		fprintf(stderr, "postern: cannot run %s: %s\n", program, strerror(errno));
		free(program);
		return 1;
	}
	rc = control_start_daemon(program);
	free(program);
	return rc;
}

/* Sends sig to the running master; returns its PID, 0 when none runs (a
 * message is printed), or -1 on an error (printed). */
static pid_t control_signal_master(int sig)
{
	pid_t pid;
	int rc = control_master_pid(&pid);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		fprintf(stderr, "postern: the mail system is not running (no master"
		    " holds the PID file in %s/%s)\n", config_str("queue_directory"), QDIR_PID);
		return 0;
	}
	if (kill(pid, sig) < 0) {
		fprintf(stderr, "postern: cannot signal master PID %ld: %s%s\n", (long)pid,
		    strerror(errno), errno == EPERM
		    ? "; run this as root or as the user that started it" : "");
		return -1;
	}
	return pid;
}

static int control_no_args(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: postern %s\n", argv[0]);
		return -1;
	}
	return 0;
}

int cmd_stop(int argc, char **argv)
{
	if (control_no_args(argc, argv) < 0)
		return 2;

	pid_t pid = control_signal_master(SIGTERM);

	if (pid <= 0)
		return 1;
	for (long waited = 0; waited < CONTROL_STOP_WAIT_MS; waited += CONTROL_POLL_MS) {
		pid_t now;

		if (kill(pid, 0) < 0 && errno == ESRCH) {
			printf("postern: the mail system is stopped (master PID %ld exited)\n",
			    (long)pid);
			return 0;
		}
		if (control_master_pid(&now) == 0) {
			printf("postern: the mail system is stopped (master PID %ld"
			    " released the PID file)\n", (long)pid);
			return 0;
		}
		control_sleep_ms(CONTROL_POLL_MS);
	}
	fprintf(stderr, "postern: master PID %ld still runs %d s after SIGTERM\n",
	    (long)pid, CONTROL_STOP_WAIT_MS / 1000);
	return 1;
}

/* Parses master.cf as master will. Returns 0, or -1 after printing why
 * master would reject it. */
static int control_check_mastercf(void)
{
	char *path = xasprintf("%s/master.cf", config_str("config_directory"));
	struct mastercf_entry *entries = NULL;
	size_t count = 0;
	char *err = NULL;
	int rc = mastercf_load(path, &entries, &count, &err);

	if (rc < 0) {
		fprintf(stderr, "postern: reload not sent: %s; the running "
		    "services stay as they are\n", err);
		free(err);
	} else {
		mastercf_free(&entries, count);
	}
	free(path);
	return rc;
}

int cmd_reload(int argc, char **argv)
{
	if (control_no_args(argc, argv) < 0)
		return 2;

	/* master would log the same error and keep running, but the
	 * operator who runs reload should see it. */
	if (control_check_mastercf() < 0)
		return 1;
	if (control_check_main_cf() < 0) {
		fprintf(stderr, "postern: reload not sent; the running services "
		    "stay as they are\n");
		return 1;
	}

	pid_t pid = control_signal_master(SIGHUP);

	if (pid <= 0)
		return 1;
	printf("postern: master PID %ld is reloading the configuration\n", (long)pid);
	return 0;
}

struct control_child {
	long pid;
	char *service;
	char *type;
	char *program;
};

/* Reads the parent PID from /proc/PID/stat; -1 when unreadable. The
 * command name in parentheses may hold spaces and ')', so the fields
 * after it are found from the last ')'. */
static long control_proc_ppid(const char *pid_dir)
{
	char path[64], buf[1024];
	long ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	buf[n] = '\0';
	char *end = strrchr(buf, ')');
	char state;

	if (end == NULL || sscanf(end + 1, " %c %ld", &state, &ppid) != 2)
		return -1;
	return ppid;
}

/* Fills c from /proc/PID/cmdline: argv[0] names the program, and master
 * passes "-n SERVICE -t TYPE". Returns 0 or -1. */
static int control_proc_cmdline(const char *pid_dir, struct control_child *c)
{
	char path[64], buf[4096];
	const char *service = "?", *type = "?";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	if (n == 0)
		return -1;
	buf[n] = '\0';

	const char *arg0 = buf, *slash = strrchr(arg0, '/');

	for (size_t off = strlen(buf) + 1; off < n; off += strlen(buf + off) + 1) {
		const char *arg = buf + off, *next = arg + strlen(arg) + 1;

		if ((size_t)(next - buf) >= n)
			break;
		if (strcmp(arg, "-n") == 0)
			service = next;
		else if (strcmp(arg, "-t") == 0)
			type = next;
	}
	c->program = xstrdup(slash != NULL ? slash + 1 : arg0);
	c->service = xstrdup(service);
	c->type = xstrdup(type);
	return 0;
}

static int control_child_compare(const void *a, const void *b)
{
	const struct control_child *x = a, *y = b;
	int d = strcmp(x->service, y->service);

	if (d == 0)
		d = strcmp(x->type, y->type);
	if (d == 0)
		d = (x->pid > y->pid) - (x->pid < y->pid);
	return d;
}

/* Collects the children of master from /proc into *out; returns the count. */
static size_t control_list_children(pid_t master_pid, struct control_child **out)
{
	struct control_child *list = NULL;
	size_t count = 0, cap = 0;
	DIR *proc = opendir("/proc");
	struct dirent *de;

	if (proc == NULL) {
		fprintf(stderr, "postern: cannot read /proc: %s\n", strerror(errno));
		*out = NULL;
		return 0;
	}
	while ((de = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0])
		    || control_proc_ppid(de->d_name) != (long)master_pid)
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			list = xrealloc(list, cap * sizeof(*list));
		}
		list[count].pid = strtol(de->d_name, NULL, 10);
		if (control_proc_cmdline(de->d_name, &list[count]) == 0)
			count++;
	}
	closedir(proc);
	qsort(list, count, sizeof(*list), control_child_compare);
	*out = list;
	return count;
}

int cmd_status(int argc, char **argv)
{
	struct control_child *children;
	pid_t pid;
	int rc;

	if (control_no_args(argc, argv) < 0)
		return 2;
	rc = control_master_pid(&pid);
	if (rc < 0)
		return 1;
	if (rc == 0) {
		printf("the mail system is not running\n");
		return 1;
	}
	printf("the mail system is running: master PID %ld\n", (long)pid);

	size_t count = control_list_children(pid, &children);

	if (count == 0) {
		printf("no service processes\n");
		return 0;
	}
	printf("%-24s %-5s %-10s %s\n", "SERVICE", "TYPE", "PROGRAM", "PID");
	for (size_t i = 0; i < count; i++) {
		printf("%-24s %-5s %-10s %ld\n", children[i].service, children[i].type,
		    children[i].program, children[i].pid);
		free(children[i].service);
		free(children[i].type);
		free(children[i].program);
	}
	free(children);
	return 0;
}
