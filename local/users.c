/*
 * Mailbox owners: system users from the password database, virtual
 * mailboxes from virtual_mailbox_maps, and the switch of effective ids
 * around each delivery. local keeps its real uid 0 so that it can switch
 * back after every delivery. The mailbox is written with the owner's
 * effective uid, gid and group list.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "deliver.h"
#include "local.h"
#include "log.h"

static int priv_root;
static gid_t priv_groups[NGROUPS_MAX];
static int priv_ngroups;

void local_priv_init(void)
{
	priv_root = geteuid() == 0;
	if (!priv_root) {
		log_info("not running as root: delivering every mailbox as "
		    "uid %ld", (long)geteuid());
		return;
	}
	priv_ngroups = getgroups(NGROUPS_MAX, priv_groups);
	if (priv_ngroups < 0)
		priv_ngroups = 0;
}

int local_priv_is_root(void)
{
	return priv_root;
}

int local_priv_become(uid_t uid, gid_t gid)
{
	int err;

	if (!priv_root)
		return 0;
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
		err = errno;
		local_priv_restore();
		errno = err;
		return -1;
	}
	return 0;
}

void local_priv_restore(void)
{
	if (!priv_root)
		return;
	if (seteuid(0) < 0 || setegid(0) < 0
	    || setgroups((size_t)priv_ngroups, priv_groups) < 0)
		log_panic("cannot switch back to root after a delivery: %s",
		    strerror(errno));
}

void local_mailbox_free(struct local_mailbox *mb)
{
	free(mb->path);
	mb->path = NULL;
}

int local_system_mailbox(const char *name, struct local_mailbox *mb,
    struct local_result *res)
{
	const char *home_mailbox = config_str("home_mailbox");
	struct passwd *pw;
	size_t len;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH)
			return 0;
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot look up user %s: %s", name, strerror(errno));
		return -1;
	}
	if (pw->pw_uid == 0) {
		local_result_set(res, DELIVER_BOUNCE, "5.7.1",
		    "delivery to the mailbox of %s (uid 0) is disabled; define "
		    "an alias for %s", name, name);
		return -1;
	}

	mb->uid = pw->pw_uid;
	mb->gid = pw->pw_gid;
	if (home_mailbox[0] != '\0') {
		len = strlen(home_mailbox);
		mb->maildir = home_mailbox[len - 1] == '/';
		mb->path = xasprintf("%s/%s", pw->pw_dir, home_mailbox);
	} else {
		mb->maildir = 0;
		mb->path = xasprintf("%s/%s", config_str("mail_spool_directory"),
		    name);
	}
	return 1;
}

int local_virtual_lookup(const char *param, const char *addr,
    char **value_out, struct local_result *res)
{
	const char *domain = addr_domain(addr);
	char *key, *base;
	int rc;

	rc = local_maps_lookup(param, addr, value_out, res);
	if (rc != 0 || domain == NULL)
		return rc;

	base = local_part_key(addr, 1);
	key = xasprintf("%s@%s", base, domain);
	if (strcasecmp(key, addr) != 0)
		rc = local_maps_lookup(param, key, value_out, res);
	free(key);
	free(base);
	if (rc != 0)
		return rc;

	key = xasprintf("@%s", domain);
	rc = local_maps_lookup(param, key, value_out, res);
	free(key);
	return rc;
}

/* Looks up a numeric id for addr in param. Returns 0, or -1 with res. */
static int virtual_id(const char *param, const char *addr, long *id_out,
    struct local_result *res)
{
	char *value = NULL, *end;
	int rc = local_virtual_lookup(param, addr, &value, res);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "no %s entry for %s", param, addr);
		return -1;
	}
	errno = 0;
	*id_out = strtol(value, &end, 10);
	if (errno != 0 || end == value || *str_trim(end) != '\0'
	    || *id_out < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "invalid %s value for %s: \"%s\" is not a number", param,
		    addr, value);
		free(value);
		return -1;
	}
	free(value);
	return 0;
}

/* 1 when the relative path has a ".." component or is absolute. */
static int path_escapes(const char *rel)
{
	const char *p = rel;

	if (*rel == '/')
		return 1;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

int local_virtual_mailbox(const char *addr, struct local_mailbox *mb,
    struct local_result *res)
{
	const char *base = config_str("virtual_mailbox_base");
	char *rel = NULL;
	long uid = (long)geteuid(), gid = (long)getegid();
	int rc;

	rc = local_virtual_lookup("virtual_mailbox_maps", addr, &rel, res);
	if (rc <= 0)
		return rc;
	if (base[0] != '/') {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "virtual_mailbox_base \"%s\" is not an absolute path; set it "
		    "to the directory of the virtual mailboxes", base);
		free(rel);
		return -1;
	}
	str_trim(rel);
	if (rel[0] == '\0' || path_escapes(rel)) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "invalid virtual_mailbox_maps path for %s: \"%s\" must be "
		    "relative to virtual_mailbox_base without \"..\"", addr, rel);
		free(rel);
		return -1;
	}

	/* As another user the ids do not matter: every file is ours. */
	if (priv_root && (virtual_id("virtual_uid_maps", addr, &uid, res) < 0
	    || virtual_id("virtual_gid_maps", addr, &gid, res) < 0)) {
		free(rel);
		return -1;
	}
	if (priv_root && uid == 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "virtual_uid_maps gives uid 0 for %s; virtual mailboxes "
		    "must not belong to root", addr);
		free(rel);
		return -1;
	}

	mb->uid = (uid_t)uid;
	mb->gid = (gid_t)gid;
	mb->maildir = rel[strlen(rel) - 1] == '/';
	mb->path = xasprintf("%s/%s", base, rel);
	free(rel);
	return 1;
}

int local_mailbox_deliver(const struct local_msg *m,
    const struct local_mailbox *mb, const char *rcpt,
    struct local_result *res)
{
	int rc;

	if (local_priv_become(mb->uid, mb->gid) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot switch to uid %ld gid %ld: %s", (long)mb->uid,
		    (long)mb->gid, strerror(errno));
		return -1;
	}
	if (mb->maildir)
		rc = maildir_deliver(m, mb->path, rcpt, res);
	else
		rc = mbox_deliver(m, mb->path, mb->uid, mb->gid, rcpt, res);
	local_priv_restore();
	return rc;
}
