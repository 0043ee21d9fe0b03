/*
 * postern delete, hold, release and requeue: changing which queue a
 * message is in, or removing it, on the operator's request.
 *
 * qmgr owns every file in active/, so these commands never touch one.
 * A move is one rename(2) inside the queue directory, and a delete is
 * one unlink(2), so each either happens whole or finds the file gone.
 * qmgr renames files from incoming/ and deferred/ into active/ at any
 * moment, so an ENOENT means that qmgr took the file meanwhile. The ID
 * is then looked up again and reported with where it is now.
 */
#define _GNU_SOURCE  /* renameat2 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "qfile.h"
#include "sbuf.h"
#include "wakeup.h"

/* Lookups of one ID before it is reported as not found: qmgr may move a
 * file from active/ back to deferred/ between two of the lookups. */
#define MAINT_LOOKUP_PASSES 3

enum maint_wakeup {
	MAINT_WAKE_NONE,
	MAINT_WAKE_SCAN,   /* "W": scan incoming/ */
	MAINT_WAKE_FLUSH,  /* "F": every deferred message is due */
};

struct maint_op {
	const char *name;
	const char *const *from;  /* queues a message is taken from, in order */
	const char *to;           /* destination queue, or NULL to delete */
	const char *const *all;   /* queues that ALL covers */
	const char *done;         /* standard output after the ID */
	const char *logged;       /* maillog text after the ID */
	const char *already;      /* output when the ID is already in "to" */
	enum maint_wakeup wakeup;
	int touch;                /* 1: set the mtime to now before the move */
};

static const char *const maint_delete_from[] = {QDIR_INCOMING, QDIR_DEFERRED,
    QDIR_HOLD, NULL};
static const char *const maint_hold_from[] = {QDIR_INCOMING, QDIR_DEFERRED,
    NULL};
static const char *const maint_release_from[] = {QDIR_HOLD, NULL};
static const char *const maint_requeue_from[] = {QDIR_DEFERRED, QDIR_HOLD,
    NULL};
/* requeue ALL leaves held mail on hold; naming an ID requeues it from
 * hold/ as well. */
static const char *const maint_requeue_all[] = {QDIR_DEFERRED, NULL};
static const char *const maint_deferred_only[] = {QDIR_DEFERRED, NULL};

static const struct maint_op maint_delete = {
	"delete", maint_delete_from, NULL, maint_delete_from,
	"removed", "removed by the operator", NULL, MAINT_WAKE_NONE, 0,
};
static const struct maint_op maint_hold = {
	"hold", maint_hold_from, QDIR_HOLD, maint_hold_from,
	"on hold", "put on hold by the operator", "already on hold",
	MAINT_WAKE_NONE, 0,
};
/* The mtime of a deferred file is its next retry time. A message held
 * while deferred keeps a retry time that may lie ahead, so release sets
 * it to now. */
static const struct maint_op maint_release = {
	"release", maint_release_from, QDIR_DEFERRED, maint_release_from,
	"released", "released from hold by the operator", NULL,
	MAINT_WAKE_FLUSH, 1,
};
static const struct maint_op maint_requeue = {
	"requeue", maint_requeue_from, QDIR_INCOMING, maint_requeue_all,
	"requeued", "requeued by the operator", "already in incoming/",
	MAINT_WAKE_SCAN, 0,
};

/* The queues a message can be in, for telling the operator where it is. */
static const char *const maint_queues[] = {QDIR_INCOMING, QDIR_DEFERRED,
    QDIR_HOLD, QDIR_CORRUPT, NULL};

struct maint_ids {
	char **ids;
	size_t count;
	size_t size;
};

static void maint_ids_add(struct maint_ids *list, const char *id)
{
	if (list->count == list->size) {
		list->size = list->size ? 2 * list->size : 16;
		list->ids = xrealloc(list->ids, list->size * sizeof(char *));
	}
	list->ids[list->count++] = xstrdup(id);
}

static void maint_ids_free(struct maint_ids *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->ids[i]);
	free(list->ids);
	list->ids = NULL;
	list->count = list->size = 0;
}

static int maint_id_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the IDs (so by arrival) and drops repeats. */
static void maint_ids_sort_unique(struct maint_ids *list)
{
	size_t unique = 0;

	if (list->count == 0)
		return;
	qsort(list->ids, list->count, sizeof(char *), maint_id_compare);
	for (size_t i = 0; i < list->count; i++) {
		if (unique > 0 && strcmp(list->ids[unique - 1], list->ids[i]) == 0) {
			free(list->ids[i]);
			continue;
		}
		list->ids[unique++] = list->ids[i];
	}
	list->count = unique;
}

/* Adds the queue IDs found in queue_dir/subdir. A missing directory is an
 * empty queue. Returns 0, or -1 with a message on standard error. */
static int maint_ids_add_dir(struct maint_ids *list, const char *queue_dir,
    const char *subdir)
{
	char *path = xasprintf("%s/%s", queue_dir, subdir);
	DIR *dir = opendir(path);
	struct dirent *de;

	if (dir == NULL) {
		int missing = errno == ENOENT;

		if (!missing)
			fprintf(stderr, "postern: failed to open %s: %s\n", path,
			    strerror(errno));
		free(path);
		return missing ? 0 : -1;
	}
	while ((de = readdir(dir)) != NULL)
		if (qid_valid(de->d_name))
			maint_ids_add(list, de->d_name);
	closedir(dir);
	free(path);
	return 0;
}

/* Adds the whitespace-separated words of standard input. Returns 0, or
 * -1 with a message on standard error. */
static int maint_ids_add_stdin(struct maint_ids *list)
{
	char *line = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, stdin) != -1) {
		char *save = NULL;

		for (char *word = strtok_r(line, " \t\r\n", &save); word != NULL;
		    word = strtok_r(NULL, " \t\r\n", &save))
			maint_ids_add(list, word);
	}
	free(line);
	if (ferror(stdin)) {
		fprintf(stderr, "postern: failed to read queue IDs from standard "
		    "input: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int maint_usage(const struct maint_op *op)
{
	if (op == &maint_delete)
		fprintf(stderr, "usage: postern delete QUEUEID... | ALL | deferred | -\n");
	else
		fprintf(stderr, "usage: postern %s QUEUEID... | ALL | -\n", op->name);
	return 2;
}

/* Returns 0 when the effective user is root or mail_owner; else prints
 * why not and returns -1. */
static int maint_check_user(const struct maint_op *op)
{
	const char *owner = config_str("mail_owner");
	uid_t euid = geteuid();
	struct passwd *pw;

	if (euid == 0)
		return 0;
	pw = getpwnam(owner);
	if (pw != NULL && pw->pw_uid == euid)
		return 0;
	fprintf(stderr, "postern: %s: permission denied: only root or the "
	    "mail_owner user \"%s\" may change the queue\n", op->name, owner);
	return -1;
}

/*
 * Fills list from the arguments: queue IDs, ALL, "-" for standard input
 * and, for delete, "deferred". *from_out is set to the queues to take
 * the messages from. Returns 0, or the exit status of a usage error or a
 * failed directory read.
 */
static int maint_collect(const struct maint_op *op, int argc, char **argv,
    struct maint_ids *list, const char *const **from_out)
{
	const char *queue_dir = config_str("queue_directory");
	int bad = 0;

	*from_out = op->from;
	if (argc < 2)
		return maint_usage(op);
	for (int i = 1; i < argc; i++) {
		const char *const *dirs = NULL;

		if (strcmp(argv[i], "ALL") == 0)
			dirs = op->all;
		else if (op == &maint_delete && strcmp(argv[i], "deferred") == 0) {
			if (argc != 2) {
				fprintf(stderr, "postern: delete: \"deferred\" must be "
				    "the only argument\n");
				return 2;
			}
			dirs = maint_deferred_only;
			*from_out = maint_deferred_only;
		}
		if (dirs != NULL) {
			for (size_t d = 0; dirs[d] != NULL; d++)
				if (maint_ids_add_dir(list, queue_dir, dirs[d]) < 0)
					return 1;
		} else if (strcmp(argv[i], "-") == 0) {
			if (maint_ids_add_stdin(list) < 0)
				return 1;
		} else {
			maint_ids_add(list, argv[i]);
		}
	}

	/* A typing error in one ID leaves the whole queue untouched. */
	for (size_t i = 0; i < list->count; i++) {
		if (qid_valid(list->ids[i]))
			continue;
		char clean[64];

		str_sanitize(clean, sizeof(clean), list->ids[i],
		    strlen(list->ids[i]));
		fprintf(stderr, "postern: %s: invalid queue ID \"%s\": expected "
		    "%d hexadecimal digits (0-9, A-F) as shown by \"postern "
		    "queue\"\n", op->name, clean, QID_LEN);
		bad = 1;
	}
	if (bad) {
		fprintf(stderr, "postern: %s: nothing changed\n", op->name);
		return 2;
	}
	maint_ids_sort_unique(list);
	return 0;
}

static int maint_exists(const char *queue_dir, const char *subdir,
    const char *qid)
{
	char *path = xasprintf("%s/%s/%s", queue_dir, subdir, qid);
	int found = access(path, F_OK) == 0;

	free(path);
	return found;
}

/* Renames without replacing a file of the same name in the destination,
 * which would lose a message. Falls back to rename(2) on file systems
 * without RENAME_NOREPLACE. */
static int maint_rename(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (access(to, F_OK) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

/* Removes what belongs to a deleted message besides its queue file. */
static void maint_remove_side_files(const char *queue_dir, const char *qid)
{
	static const char *const dirs[] = {QDIR_DEFER_LOG, QDIR_BOUNCE};

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		char *path = xasprintf("%s/%s/%s", queue_dir, dirs[d], qid);

		if (unlink(path) < 0 && errno != ENOENT)
			fprintf(stderr, "postern: delete: %s: failed to remove %s: "
			    "%s\n", qid, path, strerror(errno));
		free(path);
	}
}

/*
 * Applies op to queue_dir/subdir/qid. Returns 0 when done, -1 with errno
 * ENOENT when the file is not there, or -1 with another errno.
 */
static int maint_apply(const struct maint_op *op, const char *queue_dir,
    const char *subdir, const char *qid)
{
	char *from = xasprintf("%s/%s/%s", queue_dir, subdir, qid);
	char *to = NULL;
	int rc;

	if (op->to == NULL) {
		rc = unlink(from);
		free(from);
		return rc;
	}
	to = xasprintf("%s/%s/%s", queue_dir, op->to, qid);
	rc = 0;
	/* The time is set before the move, because after it qmgr may have
	 * taken the file into active/ already. */
	if (op->touch && utimes(from, NULL) < 0)
		rc = -1;
	if (rc == 0)
		rc = maint_rename(from, to);
	free(from);
	free(to);
	return rc;
}

/* Reports where qid is when it was in none of the queues op takes from.
 * Sets *retry_out to 1 when it is in no queue at all. Returns the exit
 * status for this ID. */
static int maint_report_missing(const struct maint_op *op,
    const char *queue_dir, const char *const *from, const char *qid,
    int *retry_out)
{
	*retry_out = 0;
	if (maint_exists(queue_dir, QDIR_ACTIVE, qid)) {
		fprintf(stderr, "postern: %s: %s is being delivered; try again in "
		    "a moment\n", op->name, qid);
		return 1;
	}
	if (op->to != NULL && op->already != NULL
	    && maint_exists(queue_dir, op->to, qid)) {
		printf("%s: %s\n", qid, op->already);
		return 0;
	}
	for (size_t q = 0; maint_queues[q] != NULL; q++) {
		int skip = 0;

		for (size_t f = 0; from[f] != NULL; f++)
			skip |= strcmp(from[f], maint_queues[q]) == 0;
		if (skip || !maint_exists(queue_dir, maint_queues[q], qid))
			continue;
		fprintf(stderr, "postern: %s: %s is in %s/, but %s takes messages "
		    "only from", op->name, qid, maint_queues[q], op->name);
		for (size_t f = 0; from[f] != NULL; f++)
			fprintf(stderr, "%s %s/", f == 0 ? "" : ",", from[f]);
		fputc('\n', stderr);
		return 1;
	}
	*retry_out = 1;
	return 1;
}

/* Applies op to one message. Sets *changed_out to 1 when the message was
 * moved or removed. Returns the exit status for this ID. */
static int maint_one(const struct maint_op *op, const char *queue_dir,
    const char *const *from, const char *qid, int *changed_out)
{
	*changed_out = 0;
	for (int pass = 0; pass < MAINT_LOOKUP_PASSES; pass++) {
		int retry;
		int status;

		for (size_t f = 0; from[f] != NULL; f++) {
			if (maint_apply(op, queue_dir, from[f], qid) == 0) {
				if (op->to == NULL)
					maint_remove_side_files(queue_dir, qid);
				log_info("%s: %s", qid, op->logged);
				printf("%s: %s\n", qid, op->done);
				*changed_out = 1;
				return 0;
			}
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "postern: %s: %s: failed in %s/%s/: %s\n",
			    op->name, qid, queue_dir, from[f],
			    errno == EEXIST ? "a file of that name is already in "
			    "the destination queue" : strerror(errno));
			return 1;
		}
		status = maint_report_missing(op, queue_dir, from, qid, &retry);
		if (!retry)
			return status;
	}
	fprintf(stderr, "postern: %s: queue ID %s not found in %s (delivered "
	    "or removed already?)\n", op->name, qid, queue_dir);
	return 1;
}

/* Sends the "by the operator" lines to the maillog (maillog_file when
 * set, else syslog), whereas postern's own errors go to standard error. */
static void maint_log_setup(void)
{
	if (config_str("maillog_file")[0] == '\0')
		log_set_target(LOG_TARGET_SYSLOG, NULL);
	log_configure();
}

static void maint_sync(const char *queue_dir, const char *subdir)
{
	if (qfile_sync_dir(queue_dir, subdir) < 0)
		fprintf(stderr, "postern: failed to sync the directory %s/%s: %s\n",
		    queue_dir, subdir, strerror(errno));
}

/* Wakes qmgr after a change it should act on now. A failure only delays
 * the mail until qmgr's next queue scan, so it is a warning. */
static void maint_wake(const struct maint_op *op, const char *queue_dir)
{
	int rc;

	if (op->wakeup == MAINT_WAKE_NONE)
		return;
	if (op->wakeup == MAINT_WAKE_FLUSH)
		rc = wakeup_qmgr_flush(queue_dir);
	else
		rc = wakeup_qmgr(queue_dir, NULL);
	if (rc < 0)
		fprintf(stderr, "postern: %s: warning: failed to wake qmgr at "
		    "%s/%s: %s; the mail waits for qmgr's next queue scan\n",
		    op->name, queue_dir, QMGR_SOCKET_NAME, strerror(errno));
}

static int maint_run(const struct maint_op *op, int argc, char **argv)
{
	const char *queue_dir = config_str("queue_directory");
	const char *const *from;
	struct maint_ids list = {0};
	size_t changed = 0;
	int status;

	status = maint_collect(op, argc, argv, &list, &from);
	if (status == 0 && maint_check_user(op) < 0)
		status = 1;
	if (status != 0) {
		maint_ids_free(&list);
		return status;
	}
	maint_log_setup();

	for (size_t i = 0; i < list.count; i++) {
		int one_changed;

		if (maint_one(op, queue_dir, from, list.ids[i], &one_changed) != 0)
			status = 1;
		changed += one_changed;
	}
	if (changed > 0) {
		for (size_t f = 0; from[f] != NULL; f++)
			maint_sync(queue_dir, from[f]);
		if (op->to != NULL)
			maint_sync(queue_dir, op->to);
		maint_wake(op, queue_dir);
	}
	if (list.count == 0)
		printf("postern: %s: no messages\n", op->name);
	fflush(stdout);
	maint_ids_free(&list);
	return status;
}

int cmd_delete(int argc, char **argv)
{
	return maint_run(&maint_delete, argc, argv);
}

int cmd_hold(int argc, char **argv)
{
	return maint_run(&maint_hold, argc, argv);
}

int cmd_release(int argc, char **argv)
{
	return maint_run(&maint_release, argc, argv);
}

int cmd_requeue(int argc, char **argv)
{
	return maint_run(&maint_requeue, argc, argv);
}
