/*
 * Restriction internals shared by policy.c (the lists and their
 * evaluation), restrictions.c (the checks that look at the client, HELO
 * name, sender or session) and access.c (check_*_access tables).
 */
#ifndef POSTERN_SMTPD_POLICY_H
#define POSTERN_SMTPD_POLICY_H

#include <stddef.h>

#include "resolve.h"
#include "smtpd.h"

struct maplist;

/* The subject that a list's own "reject" names, e.g. "<addr>: Sender
 * address". */
enum policy_subject {
	POLICY_SUBJECT_CLIENT,
	POLICY_SUBJECT_HELO,
	POLICY_SUBJECT_SENDER,
	POLICY_SUBJECT_RECIPIENT
};

/* Everything a restriction may look at while a RCPT is checked. */
struct policy_request {
	struct smtpd_session *sess;
	const char *rcpt;                /* internal form */
	const char *rcpt_text;           /* external form, sanitized */
	const struct resolve_result *res;
	const char *sender;              /* internal form, "" for <> */
	const char *sender_text;         /* external form, sanitized */
	enum policy_subject subject;     /* of the list being evaluated */
	struct maplist *table;           /* check_*_access: its table */
};

struct restriction;

/* One entry of a parsed list. */
struct restriction_item {
	const struct restriction *r;
	struct maplist *table;     /* for check_*_access, else NULL */
};

struct smtpd_restriction_list {
	const char *param;
	enum policy_subject subject;  /* what the list's "reject" names */
	struct restriction_item *items;
	size_t count;
};

/* The restriction name of a list entry, as spelled in the table. */
const char *policy_item_name(const struct restriction_item *item);

typedef enum smtpd_policy_result (*restriction_fn)(
    const struct policy_request *req, char *reply, size_t reply_size);

/*
 * Writes "<subject text>: Kind rejected" (e.g. "<a@b>: Sender address
 * rejected") for subject into out.
 */
void policy_subject_text(const struct policy_request *req,
    enum policy_subject subject, char *out, size_t size);

/* restrictions.c */
enum smtpd_policy_result restriction_check_client_access(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_check_helo_access(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_check_sender_access(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_check_recipient_access(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_reject_non_fqdn_sender(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_reject_non_fqdn_recipient(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_reject_sender_login_mismatch(
    const struct policy_request *req, char *reply, size_t reply_size);
enum smtpd_policy_result restriction_reject_plaintext_session(
    const struct policy_request *req, char *reply, size_t reply_size);

/* Opens smtpd_sender_login_maps; exits (log_fatal) when it cannot be
 * opened or is empty. Called when a list uses
 * reject_sender_login_mismatch. */
void restriction_login_maps_init(void);

/* ---- access.c: access tables (pure functions for the unit tests). */

/*
 * Turns an access table value into a decision. "OK" or a number
 * (other than a 4NN or 5NN code) permits, and "DUNNO" gives DUNNO.
 * "REJECT [text]", "DEFER [text]", "4NN text" and "5NN text" reject or
 * defer. A number may be followed by an X.Y.Z enhanced code of the same
 * class. The reply "NNN X.Y.Z <prefix>: text" goes into reply, where
 * prefix is for example "<a@b>: Sender address rejected". Any other value defers with 451
 * 4.3.5 and returns -1 so the caller can log the configuration error.
 */
int access_parse_result(const char *value, const char *prefix,
    enum smtpd_policy_result *result_out, char *reply, size_t reply_size);

/*
 * Lookup keys of an access table, most specific first, as a
 * NULL-terminated array in one allocation (caller frees).
 *   address: "user@sub.example.com", "sub.example.com", "example.com",
 *            "com", "user@"; the null sender gives "<>".
 *   domain:  the name and each parent domain.
 *   client:  the host name and parents (when not "unknown"), then the
 *            address and its parent networks ("192.0.2.40", "192.0.2",
 *            "192.0", "192"; IPv6 by 16-bit groups).
 */
char **access_address_keys(const char *addr);
char **access_domain_keys(const char *domain);
char **access_client_keys(const char *name, const char *addr);

/*
 * Looks keys up in table, first hit wins, and decides as
 * access_parse_result. A table read error defers with 451 4.3.0.
 * Returns DUNNO when no key is found.
 */
enum smtpd_policy_result access_check(struct maplist *table, char **keys,
    const char *prefix, char *reply, size_t reply_size);

/*
 * Same as access_check with the keys of access_client_keys(name, addr),
 * except that cidr: tables see only the name and the full address and
 * do the network matching themselves (maplist_lookup_parent).
 */
enum smtpd_policy_result access_check_client(struct maplist *table,
    const char *name, const char *addr, const char *prefix, char *reply,
    size_t reply_size);

#endif
