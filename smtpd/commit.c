/*
 * The commit worker: one thread that makes queue files durable, so the
 * event loop never waits for an fsync. Writing the message into the
 * queue file stays on the loop thread, because those writes only fill
 * the page cache.
 *
 * The worker takes every job handed over since its last round as one
 * batch: for each file it fsyncs and renames it into incoming/, then
 * fsyncs incoming/ once for the whole batch. Finished jobs go back to
 * the event loop through a pipe, where each job's done callback runs.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "qfile.h"
#include "smtpd.h"

static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t commit_cond = PTHREAD_COND_INITIALIZER;
static struct smtpd_commit_job *commit_todo;   /* newest first */
static struct smtpd_commit_job *commit_done;   /* any order */
static int commit_pipe[2] = {-1, -1};
static struct event *commit_event;
static int commit_in_flight;                   /* event loop thread only */

static void job_fail(struct smtpd_commit_job *job, const char *step)
{
	job->failed = 1;
	job->error_no = errno;
	job->failed_step = step;
}

/* Removes a file that was renamed into incoming/ but whose directory
 * entry may not be durable, so the client's 451 stays true. */
static void job_unlink_renamed(struct smtpd_commit_job *job)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s/%s", smtpd_settings.queue_dir,
	    QDIR_INCOMING, job->qid);
	if (unlink(path) < 0 && errno != ENOENT)
		log_error("%s: cannot remove %s after a failed commit: %m",
		    job->qid, path);
}

static void commit_batch(struct smtpd_commit_job *batch)
{
	int renamed = 0;

	for (struct smtpd_commit_job *j = batch; j; j = j->next) {
		if (qwriter_sync(j->writer) < 0) {
			job_fail(j, "fsync");
			qwriter_abort(&j->writer);
		} else if (qwriter_rename(j->writer) < 0) {
			job_fail(j, "rename");
			qwriter_abort(&j->writer);
		} else {
			renamed++;
		}
	}
	if (renamed && qfile_sync_dir(smtpd_settings.queue_dir,
	    QDIR_INCOMING) < 0) {
		for (struct smtpd_commit_job *j = batch; j; j = j->next) {
			if (j->failed)
				continue;
			job_fail(j, "directory fsync");
			job_unlink_renamed(j);
		}
	}
	for (struct smtpd_commit_job *j = batch; j; j = j->next)
		if (j->writer)
			qwriter_free(&j->writer);
}

static void *commit_worker(void *unused)
{
	for (;;) {
		struct smtpd_commit_job *batch, *last;

		pthread_mutex_lock(&commit_lock);
		while (commit_todo == NULL)
			pthread_cond_wait(&commit_cond, &commit_lock);
		batch = commit_todo;
		commit_todo = NULL;
		pthread_mutex_unlock(&commit_lock);

		commit_batch(batch);

		for (last = batch; last->next; last = last->next)
			;
		pthread_mutex_lock(&commit_lock);
		last->next = commit_done;
		commit_done = batch;
		pthread_mutex_unlock(&commit_lock);

		/* A full pipe already contains a wake-up, so EAGAIN is fine. */
		while (write(commit_pipe[1], "c", 1) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static void commit_wakeup_cb(evutil_socket_t fd, short what, void *unused)
{
	char buf[256];
	struct smtpd_commit_job *jobs;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&commit_lock);
	jobs = commit_done;
	commit_done = NULL;
	pthread_mutex_unlock(&commit_lock);

	while (jobs) {
		struct smtpd_commit_job *job = jobs;

		jobs = job->next;
		job->next = NULL;
		commit_in_flight--;
		job->done(job, job->arg);
	}
}

int smtpd_commit_init(struct event_base *base)
{
	pthread_t thread;
	sigset_t all, old;
	int err;

	if (pipe2(commit_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	commit_event = event_new(base, commit_pipe[0], EV_READ | EV_PERSIST,
	    commit_wakeup_cb, NULL);
	if (commit_event == NULL || event_add(commit_event, NULL) < 0) {
		errno = ENOMEM;
		return -1;
	}

	/* Signals stay with the event loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&thread, NULL, commit_worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		errno = err;
		return -1;
	}
	pthread_detach(thread);
	return 0;
}

void smtpd_commit_submit(struct smtpd_commit_job *job)
{
	commit_in_flight++;
	pthread_mutex_lock(&commit_lock);
	job->next = commit_todo;
	commit_todo = job;
	pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
}

int smtpd_commit_pending(void)
{
	return commit_in_flight;
}
