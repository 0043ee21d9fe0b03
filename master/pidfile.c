/*
 * The PID file $queue_directory/pid/master.pid. master holds an exclusive
 * flock() on it for as long as it runs, so a second master, and `postern
 * stop`, can tell a live master from a stale file left by a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "log.h"
#include "master.h"
#include "qfile.h"
#include "sbuf.h"

static int master_pidfile_fd = -1;
static char *master_pidfile_path;

/* Reads the PID a running master wrote, or 0 when the file is still empty. */
static long master_pidfile_peek(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* 1 when fd still refers to the file at path: a stopping master unlinks
 * the file it had locked, and a lock on that orphan would prove nothing. */
static int master_pidfile_current(int fd, const char *path)
{
	struct stat st_fd, st_path;

	return fstat(fd, &st_fd) == 0 && stat(path, &st_path) == 0
	    && st_fd.st_dev == st_path.st_dev && st_fd.st_ino == st_path.st_ino;
}

int master_pidfile_lock(const char *queue_dir, char **err_out)
{
	char *path = xasprintf("%s/%s/master.pid", queue_dir, QDIR_PID);
	int fd;

again:
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		*err_out = xasprintf("cannot open the PID file %s: %s", path,
		    strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			*err_out = xasprintf("another master is running with PID %ld"
			    " (the PID file %s is locked)", master_pidfile_peek(fd), path);
		else
			*err_out = xasprintf("cannot lock the PID file %s: %s", path,
			    strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	if (!master_pidfile_current(fd, path)) {
		close(fd);
		goto again;
	}
	master_pidfile_fd = fd;
	master_pidfile_path = path;
	return 0;
}

int master_pidfile_write(void)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(master_pidfile_fd, 0) < 0
	    || pwrite(master_pidfile_fd, buf, (size_t)len, 0) != len)
		return -1;
	return 0;
}

void master_pidfile_remove(void)
{
	if (master_pidfile_fd < 0)
		return;
	/* Unlink while still locked, so no starting master locks a file
	 * that is about to disappear. */
	if (unlink(master_pidfile_path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", master_pidfile_path, strerror(errno));
	close(master_pidfile_fd);
	master_pidfile_fd = -1;
	free(master_pidfile_path);
	master_pidfile_path = NULL;
}
