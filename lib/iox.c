/*
 * iox - small I/O helpers over file descriptors (see iox.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "iox.h"
#include "netaddr.h"
#include "sbuf.h"

long long iox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int iox_read_file(const char *path, struct sbuf *out, char **err_out)
{
	FILE *fp = fopen(path, "re");
	char buf[8192];
	size_t n, max = out->max ? out->max : SBUF_DEFAULT_MAX;
	int rc = 0;

	if (fp == NULL) {
		if (err_out != NULL)
			*err_out = xasprintf("cannot open %s: %s", path,
			    strerror(errno));
		return -1;
	}
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), fp)) > 0)
		rc = sbuf_append(out, buf, n);
	if (rc == 0 && ferror(fp)) {
		rc = -1;
		errno = EIO;
	}
	fclose(fp);
	if (rc < 0 && err_out != NULL) {
		if (errno != EMSGSIZE)
			*err_out = xasprintf("cannot read %s: %s", path,
			    strerror(errno));
		else if (max % (1024 * 1024) == 0)
			*err_out = xasprintf("cannot read %s: file is larger "
			    "than %zu MiB", path, max / (1024 * 1024));
		else
			*err_out = xasprintf("cannot read %s: file is larger "
			    "than %zu bytes", path, max);
	}
	return rc;
}

/* Milliseconds left until deadline (-1: no deadline), at least 0. */
static int iox_remaining(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long left = deadline - iox_now_ms();
	return left < 0 ? 0 : (int)left;
}

int iox_wait(int fd, short events, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int rc = poll(&pfd, 1, iox_remaining(deadline));
		if (rc >= 0)
			return rc > 0 ? 1 : 0;
		if (errno != EINTR)
			return -1;
	}
}

static ssize_t iox_write_deadline(int fd, const void *buf, size_t len,
    long long deadline)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = iox_wait(fd, POLLOUT, iox_remaining(deadline));
			if (rc < 0)
				return -1;
			if (rc == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		if (n == 0)
			errno = EIO;
		return -1;
	}
	return (ssize_t)len;
}

ssize_t iox_write_all(int fd, const void *buf, size_t len)
{
	return iox_write_deadline(fd, buf, len, -1);
}

ssize_t iox_write_timeout(int fd, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;

	return iox_write_deadline(fd, buf, len, deadline);
}

ssize_t iox_read_timeout(int fd, void *buf, size_t len, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;

	for (;;) {
		int rc = iox_wait(fd, POLLIN, iox_remaining(deadline));
		if (rc < 0)
			return -1;
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
	}
}

int iox_set_nonblock(int fd, int on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

int iox_set_cloexec(int fd, int on)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -1;
	flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, flags);
}

void iox_set_nodelay(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int iox_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int iox_unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

int iox_unix_connect(const char *path, int nonblock)
{
	struct sockaddr_un sun;

	if (iox_unix_addr(path, &sun) < 0)
		return -1;
	int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0)
		return -1;
	/* A non-blocking UNIX connect either completes or fails at once
	 * (EAGAIN when the listener's backlog is full). */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int iox_unix_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un sun;
	struct stat st;

	if (iox_unix_addr(path, &sun) < 0)
		return -1;
	/* A socket left by an earlier run blocks bind(); other files are
	 * left alone so that a typo in a path never deletes data. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Opens, binds and listens on one getaddrinfo() result. */
static int iox_listen_addr(const struct addrinfo *ai, int backlog, int v6only)
{
	int on = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6 && v6only >= 0)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, backlog) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Listens on a bare port: [::] for IPv6 and IPv4, or 0.0.0.0 when the
 * kernel has no IPv6. */
static int iox_listen_any(const char *port, int backlog, char **err_out)
{
	struct addrinfo hints = {0}, *res = NULL;
	const int families[] = {AF_INET6, AF_INET};
	int fd = -1, saved = 0;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	for (size_t i = 0; i < 2 && fd < 0; i++) {
		hints.ai_family = families[i];
		int rc = getaddrinfo(NULL, port, &hints, &res);
		if (rc != 0) {
			if (err_out != NULL)
				*err_out = xasprintf("invalid port \"%s\": %s", port,
				    gai_strerror(rc));
			return -1;
		}
		fd = iox_listen_addr(res, backlog, 0);
		saved = errno;
		freeaddrinfo(res);
		/* Fall back to IPv4 only when IPv6 itself is missing. */
		if (fd < 0 && saved != EAFNOSUPPORT && saved != EPROTONOSUPPORT &&
		    saved != EADDRNOTAVAIL)
			break;
	}
	if (fd < 0 && err_out != NULL)
		*err_out = xasprintf("cannot listen on port %s: %s", port,
		    strerror(saved));
	return fd;
}

int iox_inet_listen(const char *hostport, int backlog, char **err_out)
{
	char *host = NULL, *port = NULL;
	int bracketed = 0;

	if (err_out != NULL)
		*err_out = NULL;
	if (hostport[0] != '\0' && strchr(hostport, ':') == NULL &&
	    hostport[0] != '[')
		return iox_listen_any(hostport, backlog, err_out);
	if (hostport_split(hostport, &host, &port, &bracketed) < 0 ||
	    port == NULL) {
		if (err_out != NULL)
			*err_out = xasprintf("invalid listen address \"%s\": "
			    "expected port, host:port or [host]:port", hostport);
		free(host);
		free(port);
		return -1;
	}
	if (host == NULL || strcmp(host, "*") == 0 || host[0] == '\0') {
		int fd = iox_listen_any(port, backlog, err_out);
		free(host);
		free(port);
		return fd;
	}

	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int fd = -1;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		if (err_out != NULL)
			*err_out = xasprintf("cannot resolve listen address %s: %s",
			    hostport, gai_strerror(rc));
	} else {
		fd = iox_listen_addr(res, backlog, -1);
		if (fd < 0 && err_out != NULL)
			*err_out = xasprintf("cannot listen on %s: %s", hostport,
			    strerror(errno));
		freeaddrinfo(res);
	}
	free(host);
	free(port);
	return fd;
}

/* Binds fd to the numeric or named address source, in the family of fd. */
static int iox_bind_source(int fd, int family, const char *source)
{
	struct addrinfo hints = {0}, *res = NULL;

	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(source, NULL, &hints, &res) != 0) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	int rc = bind(fd, res->ai_addr, res->ai_addrlen);
	int saved = errno;
	freeaddrinfo(res);
	errno = saved;
	return rc;
}

/* Connects one socket to ai before deadline. Returns the descriptor or
 * -1 with errno. */
static int iox_connect_addr(const struct addrinfo *ai, const char *source,
    long long deadline)
{
	int fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	int err = 0;
	socklen_t errlen = sizeof(err);

	if (fd < 0)
		return -1;
	if (source != NULL && source[0] != '\0' &&
	    iox_bind_source(fd, ai->ai_family, source) < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		int rc = iox_wait(fd, POLLOUT, iox_remaining(deadline));
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	if (iox_set_nonblock(fd, 0) < 0)
		goto fail;
	iox_set_nodelay(fd);
	return fd;

fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int iox_tcp_connect(const char *host, const char *port, int timeout_ms,
    const char *source, char **err_out)
{
	struct addrinfo hints = {0}, *res = NULL;
	long long deadline = timeout_ms < 0 ? -1 : iox_now_ms() + timeout_ms;
	char addr[INET6_ADDRSTRLEN] = "";
	int fd = -1, saved = 0;

	if (err_out != NULL)
		*err_out = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		if (err_out != NULL)
			*err_out = xasprintf("cannot resolve %s port %s: %s", host,
			    port, gai_strerror(rc));
		return -1;
	}

	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (deadline >= 0 && iox_remaining(deadline) == 0) {
			saved = ETIMEDOUT;
			break;
		}
		fd = iox_connect_addr(ai, source, deadline);
		if (fd < 0) {
			saved = errno;
			sockaddr_to_str(ai->ai_addr, addr, sizeof(addr));
		}
	}
	freeaddrinfo(res);

	if (fd < 0 && err_out != NULL)
		*err_out = xasprintf("connect to %s[%s]:%s failed: %s", host,
		    addr[0] ? addr : "?", port, strerror(saved));
	if (fd < 0)
		errno = saved;
	return fd;
}
