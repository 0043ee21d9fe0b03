/*
 * wakeup - one-line wake-ups to qmgr over public/qmgr (see wakeup.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "iox.h"
#include "wakeup.h"

/* Sends line on a new non-blocking connection to QUEUE_DIR/public/qmgr. */
static int wakeup_send(const char *queue_dir, const char *line)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", queue_dir,
	    QMGR_SOCKET_NAME) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = iox_unix_connect(path, 1);
	if (fd < 0)
		return -1;

	/* A fresh socket's send buffer always has room for one short line,
	 * so this write never has to wait. */
	size_t len = strlen(line);
	ssize_t n = write(fd, line, len);
	int saved = errno;
	close(fd);
	if (n != (ssize_t)len) {
		errno = n < 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

int wakeup_qmgr(const char *queue_dir, const char *qid)
{
	char line[128];

	if (qid == NULL)
		return wakeup_send(queue_dir, "W\n");
	if ((size_t)snprintf(line, sizeof(line), "W %s\n", qid) >= sizeof(line)) {
		errno = EINVAL;
		return -1;
	}
	return wakeup_send(queue_dir, line);
}

int wakeup_qmgr_flush(const char *queue_dir)
{
	return wakeup_send(queue_dir, "F\n");
}
