/*
 * iox - small I/O helpers over file descriptors.
 */
#ifndef POSTERN_IOX_H
#define POSTERN_IOX_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes, retrying on EINTR and short writes; on a
 * non-blocking descriptor waits with poll. Returns len or -1 with errno. */
ssize_t iox_write_all(int fd, const void *buf, size_t len);

/* Like iox_write_all but gives up after timeout_ms (errno ETIMEDOUT). */
ssize_t iox_write_timeout(int fd, const void *buf, size_t len, int timeout_ms);

/* Reads at most len bytes, waiting at most timeout_ms (-1: forever).
 * Returns bytes read, 0 at end of file, -1 with errno (ETIMEDOUT). */
ssize_t iox_read_timeout(int fd, void *buf, size_t len, int timeout_ms);

/* poll() for events on fd, retrying on EINTR. Returns 1 ready, 0 timed
 * out, -1 error. */
int iox_wait(int fd, short events, int timeout_ms);

int iox_set_nonblock(int fd, int on);
int iox_set_cloexec(int fd, int on);

/* fsync()s a directory. Returns 0 or -1 with errno. */
int iox_fsync_dir(const char *path);

/* Connects to a UNIX stream socket. nonblock=1 leaves the socket non-
 * blocking. Returns the descriptor or -1 with errno. */
int iox_unix_connect(const char *path, int nonblock);

/* Creates a listening UNIX stream socket at path (removing a stale one)
 * with the given mode. Returns the descriptor or -1 with errno. */
int iox_unix_listen(const char *path, mode_t mode, int backlog);

/*
 * Creates a listening TCP socket for "port", "host:port" or
 * "[host]:port" (SO_REUSEADDR; a bare port listens on every IPv6 and
 * IPv4 address). Returns the descriptor, or -1 with a message in
 * *err_out naming the address and the error.
 */
int iox_inet_listen(const char *hostport, int backlog, char **err_out);

/*
 * Connects to host:port over TCP, trying each address, with a timeout.
 * Returns a blocking descriptor with TCP_NODELAY set, or -1 with a message
 * in *err_out. When source is not NULL the socket binds to that address.
 */
int iox_tcp_connect(const char *host, const char *port, int timeout_ms,
    const char *source, char **err_out);

/* Sets TCP_NODELAY; errors are ignored (the socket may be a UNIX one). */
void iox_set_nodelay(int fd);

/* Monotonic time in milliseconds. */
long long iox_now_ms(void);

struct sbuf;

/*
 * Appends the whole contents of the file at path to out. A file larger
 * than out's cap is an error, not a partial read. Returns 0, or -1 with
 * a message naming path in *err_out when err_out is not NULL (the
 * caller frees it).
 */
int iox_read_file(const char *path, struct sbuf *out, char **err_out);

#endif
