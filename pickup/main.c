/*
 * pickup - the service behind public/pickup. master runs one process
 * (a fixed service, like qmgr); it scans maildrop/ at start, after each
 * wake-up line from sendmail or master, and every PICKUP_SCAN_SECONDS,
 * so a lost wake-up only delays mail.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "iox.h"
#include "log.h"
#include "pickup.h"
#include "sbuf.h"
#include "service.h"

/* Seconds between scans without a wake-up. */
#define PICKUP_SCAN_SECONDS 60
/* Milliseconds a wake-up client may take to send its line. */
#define PICKUP_WAKEUP_TIMEOUT_MS 1000

struct pickup_settings pickup;

/* Reads and discards the wake-up line: any line means "scan". */
static void pickup_read_wakeup(int fd)
{
	char buf[128];

	(void)iox_read_timeout(fd, buf, sizeof(buf), PICKUP_WAKEUP_TIMEOUT_MS);
	close(fd);
}

int main(int argc, char **argv)
{
	struct service svc;
	const char *queue_dir;

	service_init(&svc, "pickup", argc, argv);
	queue_dir = config_str("queue_directory");
	pickup.myhostname = xstrdup(config_str("myhostname"));
	pickup.myorigin = xstrdup(config_str("myorigin"));
	pickup.mail_name = xstrdup(config_str("mail_name"));
	pickup.message_size_limit = (size_t)config_int("message_size_limit");
	pickup_policy_open();

	/* Queue paths are relative from here on, which also holds after a
	 * chroot into the queue directory. */
	if (chdir(queue_dir) < 0)
		log_fatal("cannot change to queue_directory %s: %s", queue_dir,
		    strerror(errno));
	service_drop_privileges(&svc);
	if (service_chrooted() && chdir("/") < 0)
		log_fatal("cannot change to / after chroot: %s", strerror(errno));
	log_info("started");

	service_report(&svc, SERVICE_STATE_BUSY);
	pickup_scan();
	while (!service_stop_requested && !service_drain_requested) {
		service_report(&svc, SERVICE_STATE_IDLE);
		int fd = service_accept(&svc, PICKUP_SCAN_SECONDS * 1000);

		if (service_stop_requested || service_drain_requested) {
			if (fd >= 0)
				close(fd);
			break;
		}
		service_report(&svc, SERVICE_STATE_BUSY);
		if (fd >= 0)
			pickup_read_wakeup(fd);
		pickup_scan();
	}
	log_info("stopping");
	return 0;
}
