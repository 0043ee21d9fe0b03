/*
 * Listening sockets of the services. master opens them before it starts
 * any process and keeps them across a reload when the address is the
 * same, so the kernel goes on queueing connections while processes are
 * replaced.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "iox.h"
#include "log.h"
#include "master.h"
#include "sbuf.h"

#define MASTER_PRIVATE_MODE 0600
#define MASTER_PUBLIC_MODE 0666

static int master_listen_unix(struct master_service *svc, char **err_out)
{
	mode_t mode = svc->private_ ? MASTER_PRIVATE_MODE : MASTER_PUBLIC_MODE;
	int fd = iox_unix_listen(svc->listen_addr, mode, SOMAXCONN);

	if (fd < 0) {
		*err_out = xasprintf("service %s: cannot listen on %s: %s",
		    svc->name, svc->listen_addr, strerror(errno));
		return -1;
	}
	if (master.root && chown(svc->listen_addr, master.owner_uid,
	    master.owner_gid) < 0) {
		*err_out = xasprintf("service %s: chown %s: %s", svc->name,
		    svc->listen_addr, strerror(errno));
		close(fd);
		return -1;
	}
	/* chmod again: iox_unix_listen's mode is subject to the umask. */
	if (chmod(svc->listen_addr, mode) < 0) {
		*err_out = xasprintf("service %s: chmod %s: %s", svc->name,
		    svc->listen_addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int master_listen_open(struct master_service *svc, char **err_out)
{
	char *err = NULL;
	int fd;

	if (strcmp(svc->type, "unix") == 0) {
		fd = master_listen_unix(svc, err_out);
	} else if (strcmp(svc->type, "inet") == 0) {
		fd = iox_inet_listen(svc->listen_addr, SOMAXCONN, &err);
		if (fd < 0) {
			*err_out = xasprintf("service %s: %s", svc->name,
			    err != NULL ? err : "cannot listen");
			free(err);
		}
	} else {
		*err_out = xasprintf("service %s: unknown type \"%s\"",
		    svc->name, svc->type);
		return -1;
	}
	if (fd < 0)
		return -1;

	/* Children get the socket by dup2; master's own copy stays private. */
	iox_set_cloexec(fd, 1);
	svc->listen_fd = fd;
	return 0;
}

void master_listen_close(struct master_service *svc, int unlink_path)
{
	if (svc->listen_fd < 0)
		return;
	close(svc->listen_fd);
	svc->listen_fd = -1;
	if (unlink_path && strcmp(svc->type, "unix") == 0
	    && unlink(svc->listen_addr) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", svc->listen_addr, strerror(errno));
}

struct master_service *master_listen_match(struct master_service *list,
    const struct master_service *svc)
{
	for (; list != NULL; list = list->next)
		if (strcmp(list->type, svc->type) == 0
		    && strcmp(list->listen_addr, svc->listen_addr) == 0)
			return list;
	return NULL;
}
