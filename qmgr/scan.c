/*
 * scan - the queue directories: taking new files from incoming/, due
 * files from deferred/, files a previous qmgr left in active/, and
 * retrying files a delivery agent still holds.
 *
 * Names starting with '.' are files being written and are skipped; a
 * name that is not a queue ID is left alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "qmgr.h"
#include "sbuf.h"

/* Seconds before a file that an agent still holds is tried again. */
#define SCAN_RETRY_SECONDS 3
/* Age in seconds after which incoming/.tmp.* files are abandoned. */
#define SCAN_TMP_MAX_AGE (24 * 3600)

static int scan_have_room(void)
{
	if (qmgr.nmsgs < (size_t)qmgr.cfg.active_limit)
		return 1;
	qmgr.backlog = 1;
	return 0;
}

/* Takes active/QID; when an agent still holds it, retries later. */
static int scan_take_active(const char *qid)
{
	int rc = qmgr_msg_take(qid);

	if (rc == 1) {
		log_info("%s: a delivery agent still holds the file; retrying "
		    "in %d s", qid, SCAN_RETRY_SECONDS);
		qmgr_scan_retry_later(qid);
	}
	return rc;
}

/* Renames dir/QID to active/QID. Returns 0, or -1 when it is gone. */
static int scan_move_to_active(const char *dir, const char *qid)
{
	char from[64], to[64];

	snprintf(from, sizeof(from), "%s/%s", dir, qid);
	snprintf(to, sizeof(to), "%s/%s", QDIR_ACTIVE, qid);
	if (rename(from, to) == 0)
		return 0;
	if (errno != ENOENT)
		log_error("%s: cannot move %s to %s/: %s", qid, from,
		    QDIR_ACTIVE, strerror(errno));
	return -1;
}

int qmgr_scan_take_incoming(const char *qid)
{
	if (qmgr.draining || !qid_valid(qid) || !scan_have_room())
		return -1;
	if (scan_move_to_active(QDIR_INCOMING, qid) < 0)
		return -1;
	return scan_take_active(qid);
}

void qmgr_scan_incoming(void)
{
	DIR *dir = opendir(QDIR_INCOMING);
	struct dirent *de;

	if (dir == NULL) {
		log_error("cannot open %s/: %s", QDIR_INCOMING, strerror(errno));
		return;
	}
	while (!qmgr.draining && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || !qid_valid(de->d_name))
			continue;
		if (!scan_have_room())
			break;
		qmgr_scan_take_incoming(de->d_name);
	}
	closedir(dir);
}

/* On a flush, a file there is no room for now becomes due at once, so
 * the next scan takes it. */
static void scan_make_due(int dfd, const char *name, time_t now)
{
	struct timespec times[2] = { { now, 0 }, { now, 0 } };

	if (utimensat(dfd, name, times, 0) < 0 && errno != ENOENT)
		log_warn("%s: cannot set the retry time: %s", name,
		    strerror(errno));
}

void qmgr_scan_deferred(int flush)
{
	DIR *dir = opendir(QDIR_DEFERRED);
	struct dirent *de;
	time_t now = time(NULL);

	if (dir == NULL) {
		log_error("cannot open %s/: %s", QDIR_DEFERRED, strerror(errno));
		return;
	}
	while (!qmgr.draining && (de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || !qid_valid(de->d_name))
			continue;
		if (!scan_have_room()) {
			if (!flush)
				break;
			scan_make_due(dirfd(dir), de->d_name, now);
			continue;
		}
		if (!flush) {
			if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0
			    || st.st_mtime > now)
				continue;
		}
		if (scan_move_to_active(QDIR_DEFERRED, de->d_name) == 0)
			scan_take_active(de->d_name);
	}
	closedir(dir);
}

void qmgr_scan_recover(void)
{
	DIR *dir = opendir(QDIR_ACTIVE);
	struct dirent *de;
	size_t n = 0;

	if (dir == NULL) {
		log_error("cannot open %s/: %s", QDIR_ACTIVE, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		/* Sized for any d_name, although qid_valid() allows only
		 * queue IDs, so that the compiler sees no truncation. */
		char from[sizeof(QDIR_ACTIVE) + sizeof(de->d_name)];
		char to[sizeof(QDIR_INCOMING) + sizeof(de->d_name)];

		if (de->d_name[0] == '.' || !qid_valid(de->d_name))
			continue;
		n++;
		if (qmgr.nmsgs < (size_t)qmgr.cfg.active_limit) {
			scan_take_active(de->d_name);
			continue;
		}
		/* No room in memory: back to incoming/, where the flock()
		 * test still runs before the file is handed out. */
		snprintf(from, sizeof(from), "%s/%s", QDIR_ACTIVE, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", QDIR_INCOMING, de->d_name);
		if (rename(from, to) < 0)
			log_error("%s: cannot move %s to %s/: %s", de->d_name,
			    from, QDIR_INCOMING, strerror(errno));
		qmgr.backlog = 1;
	}
	closedir(dir);
	if (n > 0)
		log_info("found %zu messages in %s/ from an earlier run", n,
		    QDIR_ACTIVE);
}

void qmgr_scan_clean_tmp(void)
{
	DIR *dir = opendir(QDIR_INCOMING);
	struct dirent *de;
	time_t now = time(NULL);

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (strncmp(de->d_name, ".tmp.", 5) != 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0
		    || now - st.st_mtime < SCAN_TMP_MAX_AGE)
			continue;
		if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
			log_info("removed the abandoned temporary file %s/%s",
			    QDIR_INCOMING, de->d_name);
	}
	closedir(dir);
}

struct scan_retry {
	char qid[QID_SIZE];
	struct event *ev;
};

static void scan_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scan_retry *r = arg;

	(void)fd;
	(void)what;
	event_free(r->ev);
	if (!qmgr.draining) {
		if (qmgr_msg_take(r->qid) == 1)
			qmgr_scan_retry_later(r->qid);
	}
	free(r);
}

void qmgr_scan_retry_later(const char *qid)
{
	struct scan_retry *r = xcalloc(1, sizeof(*r));
	struct timeval tv = { SCAN_RETRY_SECONDS, 0 };

	snprintf(r->qid, sizeof(r->qid), "%s", qid);
	r->ev = evtimer_new(qmgr.base, scan_retry_cb, r);
	evtimer_add(r->ev, &tv);
}

static void scan_soon_cb(evutil_socket_t fd, short what, void *arg)
{
	char *qid = arg;

	(void)fd;
	(void)what;
	qmgr_scan_take_incoming(qid);
	free(qid);
}

void qmgr_scan_soon(const char *qid)
{
	struct timeval now = { 0, 0 };

	event_base_once(qmgr.base, -1, EV_TIMEOUT, scan_soon_cb, xstrdup(qid),
	    &now);
}

static void scan_room_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	qmgr.backlog = 0;
	qmgr_scan_incoming();
	if (!qmgr.backlog)
		qmgr_scan_deferred(0);
}

void qmgr_scan_room(void)
{
	static struct event *ev;
	size_t limit = (size_t)qmgr.cfg.active_limit;
	size_t batch = limit / 10 > 0 ? limit / 10 : 1;

	/* Wait for a tenth of the limit to be free, so that a long backlog
	 * costs one directory read per batch, not one per message. */
	if (!qmgr.backlog || qmgr.draining || qmgr.nmsgs + batch > limit)
		return;
	if (ev == NULL)
		ev = evtimer_new(qmgr.base, scan_room_cb, NULL);
	if (!evtimer_pending(ev, NULL)) {
		struct timeval now = { 0, 0 };

		evtimer_add(ev, &now);
	}
}
