/*
 * pickup - turns the files that sendmail drops into maildrop/ into queue
 * files in incoming/ and wakes qmgr. One process (master.cf maxproc 1)
 * that scans maildrop/ at start, on each wake-up over public/pickup, and
 * every PICKUP_SCAN_SECONDS.
 *
 * main.c runs the loop, maildrop.c checks and converts one file, and
 * policy.c decides who may submit and which senders they may use.
 */
#ifndef POSTERN_PICKUP_H
#define POSTERN_PICKUP_H

#include <stddef.h>
#include <sys/types.h>

struct pickup_settings {
	const char *myhostname;
	const char *myorigin;
	const char *mail_name;
	size_t message_size_limit;  /* bytes; 0: no limit */
};

extern struct pickup_settings pickup;

/* Opens the tables of authorized_submit_users and
 * local_login_sender_maps; exits on an invalid setting. Call before
 * dropping privileges. */
void pickup_policy_open(void);

/*
 * Returns 1 when the user may submit mail (root always may), 0 when
 * authorized_submit_users does not allow it, -1 when a table lookup
 * failed (logged; try again later).
 */
int pickup_policy_may_submit(uid_t uid, const char *login);

/*
 * Returns 1 when the user may use sender (internal form, "" for the null
 * sender) as envelope sender, 0 when not, -1 when a lookup failed
 * (logged). Root may use any sender, and every user login@myorigin.
 */
int pickup_policy_may_send_as(uid_t uid, const char *login,
    const char *sender);

/* Processes every complete file in maildrop/ (relative to the queue
 * directory, the working directory). */
void pickup_scan(void);

#endif
