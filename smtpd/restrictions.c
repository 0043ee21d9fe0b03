/*
 * Restrictions that look at the client, the HELO name, the sender or the
 * session rather than at the recipient's resolution: the check_*_access
 * tables, reject_non_fqdn_*, reject_sender_login_mismatch and
 * reject_plaintext_session. policy.c lists them by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "policy.h"

static struct maplist *login_maps;

static enum smtpd_policy_result access_with_keys(
    const struct policy_request *req, enum policy_subject subject,
    char **keys, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];
	enum smtpd_policy_result r;

	policy_subject_text(req, subject, prefix, sizeof(prefix));
	r = access_check(req->table, keys, prefix, reply, reply_size);
	free(keys);
	return r;
}

enum smtpd_policy_result restriction_check_client_access(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];

	policy_subject_text(req, POLICY_SUBJECT_CLIENT, prefix, sizeof(prefix));
	return access_check_client(req->table, req->sess->name,
	    req->sess->addr, prefix, reply, reply_size);
}

enum smtpd_policy_result restriction_check_helo_access(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	if (req->sess->helo == NULL)
		return SMTPD_POLICY_DUNNO;
	return access_with_keys(req, POLICY_SUBJECT_HELO,
	    access_domain_keys(req->sess->helo), reply, reply_size);
}

enum smtpd_policy_result restriction_check_sender_access(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return access_with_keys(req, POLICY_SUBJECT_SENDER,
	    access_address_keys(req->sender), reply, reply_size);
}

enum smtpd_policy_result restriction_check_recipient_access(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return access_with_keys(req, POLICY_SUBJECT_RECIPIENT,
	    access_address_keys(req->rcpt), reply, reply_size);
}

/* 1 when addr has a fully qualified domain. */
static int address_is_fqdn(const char *addr)
{
	const char *domain = addr_domain(addr);

	return domain != NULL && addr_domain_is_fqdn(domain);
}

enum smtpd_policy_result restriction_reject_non_fqdn_sender(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];

	if (*req->sender == '\0' || address_is_fqdn(req->sender))
		return SMTPD_POLICY_DUNNO;
	policy_subject_text(req, POLICY_SUBJECT_SENDER, prefix, sizeof(prefix));
	snprintf(reply, reply_size, "504 5.5.2 %s: need fully-qualified "
	    "address", prefix);
	return SMTPD_POLICY_REJECT;
}

enum smtpd_policy_result restriction_reject_non_fqdn_recipient(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];

	if (address_is_fqdn(req->rcpt))
		return SMTPD_POLICY_DUNNO;
	policy_subject_text(req, POLICY_SUBJECT_RECIPIENT, prefix,
	    sizeof(prefix));
	snprintf(reply, reply_size, "504 5.5.2 %s: need fully-qualified "
	    "address", prefix);
	return SMTPD_POLICY_REJECT;
}

void restriction_login_maps_init(void)
{
	char *err = NULL;

	if (login_maps)
		return;
	login_maps = maplist_open(config_str("smtpd_sender_login_maps"), &err);
	if (login_maps == NULL)
		log_fatal("cannot open smtpd_sender_login_maps: %s", err);
	if (maplist_count(login_maps) == 0)
		log_fatal("reject_sender_login_mismatch is used but "
		    "smtpd_sender_login_maps is empty: set it to a table of "
		    "sender addresses and their login names");
}

/* Looks up the owners of sender: the address, then "@domain". Returns 1
 * with a value, 0 when not found, -1 on a table error. */
static int login_owners(const char *sender, char **value_out)
{
	const char *at = strrchr(sender, '@');
	char *err = NULL;
	int r = maplist_lookup(login_maps, sender, value_out, &err);

	if (r == 0 && at)
		r = maplist_lookup(login_maps, at, value_out, &err);
	if (r < 0) {
		log_warn("smtpd_sender_login_maps lookup of \"%s\" failed: %s",
		    sender, err ? err : "unknown error");
		free(err);
	}
	return r;
}

/* 1 when user is one of the names in owners (comma or space separated). */
static int login_owned_by(const char *owners, const char *user)
{
	size_t n;
	char **names = str_split(owners, ", \t", &n);
	int found = 0;

	for (size_t i = 0; i < n && !found; i++)
		found = strcasecmp(names[i], user) == 0;
	free(names);
	return found;
}

enum smtpd_policy_result restriction_reject_sender_login_mismatch(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	const char *user = req->sess->sasl_user;
	char prefix[SMTPD_REPLY_MAX];
	char *owners = NULL;
	int r;

	if (*req->sender == '\0')
		return SMTPD_POLICY_DUNNO;
	policy_subject_text(req, POLICY_SUBJECT_SENDER, prefix, sizeof(prefix));
	r = login_owners(req->sender, &owners);
	if (r < 0) {
		snprintf(reply, reply_size, "451 4.3.0 %s: Temporary lookup "
		    "failure", prefix);
		return SMTPD_POLICY_DEFER;
	}
	/* An unauthenticated client may not use an owned address, and an
	 * authenticated one only an address it owns. */
	if (user == NULL && r == 1) {
		free(owners);
		snprintf(reply, reply_size, "553 5.7.1 %s: not logged in",
		    prefix);
		return SMTPD_POLICY_REJECT;
	}
	if (user != NULL && (r == 0 || !login_owned_by(owners, user))) {
		free(owners);
		snprintf(reply, reply_size, "553 5.7.1 %s: not owned by user %s",
		    prefix, user);
		return SMTPD_POLICY_REJECT;
	}
	free(owners);
	return SMTPD_POLICY_DUNNO;
}

enum smtpd_policy_result restriction_reject_plaintext_session(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	if (req->sess->tls_active)
		return SMTPD_POLICY_DUNNO;
	snprintf(reply, reply_size, "450 4.7.1 Session encryption is required");
	return SMTPD_POLICY_DEFER;
}
