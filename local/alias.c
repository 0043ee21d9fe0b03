/*
 * Alias expansion. An alias recipient is replaced by a new queue file
 * that carries the same sender and the expanded recipients. The message
 * in it starts with "Delivered-To: ALIAS", so a loop of aliases is
 * detected when the expansion comes back to an alias already passed.
 * Only then is the alias recipient marked delivered, so a crash in
 * between can forward twice but never lose the message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "deliver.h"
#include "local.h"
#include "log.h"
#include "qfile.h"
#include "service.h"
#include "wakeup.h"

void alias_targets_free(struct alias_target **targets, size_t count)
{
	if (*targets == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*targets)[i].value);
	free(*targets);
	*targets = NULL;
}

/* Parses an address target. A bare name gets "@origin". */
static int alias_address(const char *item, const char *origin,
    struct alias_target *t, char **err_out)
{
	char *path, *addr = NULL;
	const char *rest;
	enum addr_error e;
	int trailing;

	if (strchr(item, '@') == NULL)
		path = xasprintf("<%s@%s>", item, origin);
	else
		path = xasprintf("<%s>", item);
	e = addr_parse_path(path, 0, 0, &addr, &rest);
	trailing = e == ADDR_OK && *rest != '\0';
	free(path);
	if (e != ADDR_OK || trailing) {
		free(addr);
		*err_out = xasprintf("invalid address \"%s\" in alias: %s", item,
		    e != ADDR_OK ? addr_strerror(e) : "text after the address");
		return -1;
	}
	t->kind = ALIAS_ADDRESS;
	t->value = addr;
	return 0;
}

/* Turns one trimmed item into a target. Returns 0 or -1 with *err_out. */
static int alias_item(char *item, const char *origin,
    struct alias_target *t, char **err_out)
{
	size_t len = strlen(item);

	/* A fully quoted item: "|command args" or "/path with blanks". */
	if (len >= 2 && item[0] == '"' && item[len - 1] == '"'
	    && strchr(item + 1, '"') == item + len - 1) {
		item[len - 1] = '\0';
		item++;
		len -= 2;
	}
	if (strncasecmp(item, ":include:", 9) == 0) {
		t->kind = ALIAS_INCLUDE;
		t->value = xstrdup(item + 9);
		return 0;
	}
	if (item[0] == '|' || item[0] == '/') {
		t->kind = item[0] == '|' ? ALIAS_COMMAND : ALIAS_FILE;
		t->value = xstrdup(item[0] == '|' ? item + 1 : item);
		return 0;
	}

	/* An address, with or without <>. */
	if (item[0] == '<') {
		if (len < 3 || item[len - 1] != '>') {
			*err_out = xasprintf("invalid address \"%s\" in alias: "
			    "missing >", item);
			return -1;
		}
		item[len - 1] = '\0';
		item++;
	}
	return alias_address(item, origin, t, err_out);
}

int alias_parse(const char *value, const char *origin,
    struct alias_target **out, size_t *count_out, char **err_out)
{
	char *copy = xstrdup(value), *p = copy, *start = copy;
	struct alias_target *targets = NULL;
	size_t count = 0;
	int quoted = 0, done = 0;

	*out = NULL;
	*count_out = 0;
	while (!done) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		if ((*p == ',' && !quoted) || *p == '\0') {
			char *item;

			done = *p == '\0';
			if (done && quoted) {
				*err_out = xasprintf("unclosed quote in alias \"%s\"",
				    value);
				goto fail;
			}
			*p = '\0';
			item = str_trim(start);
			start = p + 1;
			if (item[0] != '\0') {
				targets = xrealloc(targets,
				    (count + 1) * sizeof(*targets));
				targets[count].value = NULL;
				if (alias_item(item, origin, &targets[count],
				    err_out) < 0)
					goto fail;
				count++;
			}
		}
		p++;
	}
	free(copy);
	if (count == 0) {
		free(targets);
		*err_out = xasprintf("empty alias value");
		return -1;
	}
	*out = targets;
	*count_out = count;
	return 0;
fail:
	free(copy);
	alias_targets_free(&targets, count);
	return -1;
}

/* Appends a chunk of the original message to the new queue file. */
static int alias_write_chunk(const char *buf, size_t len, void *arg)
{
	return qwriter_write(arg, buf, len);
}

/* Writes the new queue file. Returns 0 with its ID in qid, or -1 with res
 * set. Runs with the effective ids of mail_owner when root, so that the
 * file belongs to the user that qmgr runs as. */
static int alias_write_queue_file(const struct local_msg *m,
    const struct qrcpt *r, struct alias_target *targets, size_t count,
    char qid[QID_SIZE], struct local_result *res)
{
	struct qenv *env = qenv_new();
	struct qwriter *w = NULL;
	struct timeval tv;
	char *err = NULL, *header = NULL;
	int rc = -1;

	gettimeofday(&tv, NULL);
	env->arrival_sec = tv.tv_sec;
	env->arrival_usec = tv.tv_usec;
	env->sender = xstrdup(m->env->sender);
	env->client_name = xstrdup("local");
	env->client_addr = xstrdup("local");
	env->helo = xstrdup("local");
	env->protocol = xstrdup("LOCAL");
	if (m->env->envid)
		env->envid = xstrdup(m->env->envid);
	if (m->env->ret)
		env->ret = xstrdup(m->env->ret);
	for (size_t i = 0; i < count; i++)
		qenv_add_rcpt(env, targets[i].value,
		    r->orcpt ? r->orcpt : r->addr, r->notify);

	w = qwriter_open(m->queue_dir, env, &err);
	if (w == NULL) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot create a queue file for the alias expansion: %s",
		    err ? err : strerror(errno));
		goto out;
	}
	header = addr_externalize(r->addr);
	if (qwriter_write(w, "Delivered-To: ", 14) < 0
	    || qwriter_write(w, header, strlen(header)) < 0
	    || qwriter_write(w, "\n", 1) < 0
	    || local_msg_each_chunk(m, alias_write_chunk, w) < 0) {
		local_result_errno(res, errno, "alias queue file");
		qwriter_abort(&w);
		goto out;
	}
	snprintf(qid, QID_SIZE, "%s", qwriter_qid(w));
	if (qwriter_commit(&w, &err) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot commit the queue file for the alias expansion: %s",
		    err ? err : strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(header);
	free(err);
	qenv_free(&env);
	return rc;
}

/* Sets a bounce and returns 1 when a target kind is disabled or not
 * implemented. Returns 0 when every target can be forwarded. */
static int alias_check_kinds(const struct alias_target *targets,
    size_t count, const char *alias, struct local_result *res)
{
	for (size_t i = 0; i < count; i++) {
		const struct alias_target *t = &targets[i];

		if (t->kind == ALIAS_COMMAND && !config_bool("allow_mail_to_commands")) {
			local_result_set(res, DELIVER_BOUNCE, "5.7.1",
			    "alias %s: mail to commands is disabled", alias);
			return 1;
		}
		if (t->kind == ALIAS_FILE && !config_bool("allow_mail_to_files")) {
			local_result_set(res, DELIVER_BOUNCE, "5.7.1",
			    "alias %s: mail to files is disabled", alias);
			return 1;
		}
		/* TODO: deliver to commands, files and :include: lists. Until
		 * then an alias that names one bounces as a whole. */
		if (t->kind != ALIAS_ADDRESS) {
			local_result_set(res, DELIVER_BOUNCE, "5.7.1",
			    "alias %s: delivery to %s is not implemented", alias,
			    t->kind == ALIAS_COMMAND ? "commands"
			    : t->kind == ALIAS_FILE ? "files" : ":include: lists");
			return 1;
		}
	}
	return 0;
}

/* Drops targets equal to the alias itself. Returns 1 when there was one. */
static int alias_drop_self(struct alias_target *targets, size_t *count,
    const char *alias)
{
	size_t kept = 0;
	int found = 0;

	for (size_t i = 0; i < *count; i++) {
		if (strcasecmp(targets[i].value, alias) == 0) {
			free(targets[i].value);
			found = 1;
			continue;
		}
		targets[kept++] = targets[i];
	}
	*count = kept;
	return found;
}

/* Forwards to the targets in a new queue file and wakes qmgr. */
static int alias_forward(const struct local_msg *m, const struct qrcpt *r,
    struct alias_target *targets, size_t count, struct local_result *res)
{
	char qid[QID_SIZE];
	uid_t uid;
	gid_t gid;
	int rc;

	if (service_mail_owner(&uid, &gid) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "mail_owner %s does not exist", config_str("mail_owner"));
		return -1;
	}
	if (local_priv_become(uid, gid) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot switch to mail_owner: %s", strerror(errno));
		return -1;
	}
	rc = alias_write_queue_file(m, r, targets, count, qid, res);
	local_priv_restore();
	if (rc < 0)
		return -1;

	if (wakeup_qmgr(m->queue_dir, qid) < 0)
		log_warn("%s: cannot wake qmgr for %s: %s", m->qid, qid,
		    strerror(errno));
	log_info("%s: alias %s forwarded as %s to %zu recipient%s", m->qid,
	    r->addr, qid, count, count == 1 ? "" : "s");
	local_result_set(res, DELIVER_SENT, "2.0.0", "forwarded as %s", qid);
	return 0;
}

/* Finds the alias value: alias_maps by local part, with and without the
 * extension; virtual_alias_maps by address, then "@domain". */
static int alias_lookup(const char *param, const char *addr,
    char **value_out, struct local_result *res)
{
	char *key;
	int rc;

	if (strcmp(param, "virtual_alias_maps") == 0)
		return local_virtual_lookup(param, addr, value_out, res);

	key = local_part_key(addr, 0);
	rc = local_maps_lookup(param, key, value_out, res);
	if (rc == 0) {
		char *base = local_part_key(addr, 1);

		if (strcmp(base, key) != 0)
			rc = local_maps_lookup(param, base, value_out, res);
		free(base);
	}
	free(key);
	return rc;
}

int alias_expand(const struct local_msg *m, const struct qrcpt *r,
    const char *param, struct local_result *res)
{
	struct alias_target *targets = NULL;
	size_t count = 0;
	char *value = NULL, *err = NULL;
	int rc, self;

	rc = alias_lookup(param, r->addr, &value, res);
	if (rc <= 0)
		return rc;

	if (alias_parse(value, config_str("myorigin"), &targets, &count,
	    &err) < 0) {
		log_warn("%s: %s lookup of %s: %s", m->qid, param, r->addr, err);
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "malformed alias for %s: %s", r->addr, err);
		free(err);
		free(value);
		return -1;
	}
	free(value);
	if (alias_check_kinds(targets, count, r->addr, res)) {
		alias_targets_free(&targets, count);
		return 1;
	}

	/* "user: user, other" delivers to user's own mailbox too, because
	 * forwarding to itself would come back as a loop. */
	self = alias_drop_self(targets, &count, r->addr);
	rc = 1;
	if (self && local_deliver_mailbox(m, r,
	    strcmp(param, "virtual_alias_maps") == 0, res) < 0)
		rc = res->status[0] == 'd' ? -1 : 1;
	else if (count > 0 && alias_forward(m, r, targets, count, res) < 0)
		rc = -1;
	alias_targets_free(&targets, count);
	return rc;
}
