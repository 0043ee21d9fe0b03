/*
 * systemd readiness notification without libsystemd: one datagram to the
 * UNIX socket named by $NOTIFY_SOCKET (see sd_notify(3)). A name that
 * starts with '@' is in the abstract namespace.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "master.h"

static char master_notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

void master_notify_init(void)
{
	const char *env = getenv("NOTIFY_SOCKET");

	if (env != NULL && strlen(env) < sizeof(master_notify_path))
		strcpy(master_notify_path, env);
	else if (env != NULL)
		log_warn("NOTIFY_SOCKET is too long; not notifying systemd");
	unsetenv("NOTIFY_SOCKET");
}

static void master_notify_send(const char *path, const char *text)
{
	struct sockaddr_un addr;
	size_t len = strlen(path);
	int fd;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, len);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, text, strlen(text), MSG_NOSIGNAL,
	    (struct sockaddr *)&addr, offsetof(struct sockaddr_un, sun_path) + len) < 0) {
		static int warned;

		if (!warned++)
			log_warn("cannot notify systemd at %s: %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

void master_notify(const char *state)
{
	const char *path = master_notify_path;
	char text[256];

	if (path[0] == '\0')
		return;
	if (strcmp(state, "RELOADING=1") == 0) {
		struct timespec ts;

		/* systemd 253 and later want the time of the reload request. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(text, sizeof(text), "RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000ULL
		    + (unsigned long long)ts.tv_nsec / 1000);
	} else if (strcmp(state, "READY=1") == 0) {
		snprintf(text, sizeof(text), "READY=1\nMAINPID=%ld", (long)getpid());
	} else {
		snprintf(text, sizeof(text), "%s", state);
	}
	master_notify_send(path, text);
}
