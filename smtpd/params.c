/*
 * Command-line splitting and ESMTP parameter parsing for MAIL and RCPT.
 * Nothing here does I/O, so the unit tests call these directly.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "qfile.h"
#include "smtpd.h"

#define PARAM_MAX 512

void smtpd_cmd_split(const char *line, size_t *verb_len,
    const char **args_out)
{
	size_t n = strcspn(line, " \t");
	const char *p = line + n;

	while (*p == ' ' || *p == '\t')
		p++;
	*verb_len = n;
	*args_out = p;
}

const char *smtpd_path_arg(const char *args, const char *keyword)
{
	size_t n = strlen(keyword);

	if (strncasecmp(args, keyword, n) != 0 || args[n] != ':')
		return NULL;
	args += n + 1;
	while (*args == ' ' || *args == '\t')
		args++;
	return args;
}

int smtpd_xtext_valid(const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			/* "+" must be followed by two uppercase hex digits. */
			if (i + 2 >= len || !s[i + 1] || !s[i + 2] ||
			    !strchr(hex, s[i + 1]) || !strchr(hex, s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return 0;
		}
	}
	return 1;
}

/*
 * Splits the next parameter off *p: the keyword into key, the value (or
 * "" and *has_value = 0) into value. Returns 1 when a parameter was
 * found, 0 at the end, -1 when one is longer than PARAM_MAX.
 */
static int param_next(const char **p, char *key, char *value,
    int *has_value)
{
	const char *s = *p;
	size_t n, k;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0')
		return 0;
	n = strcspn(s, " \t");
	if (n >= PARAM_MAX)
		return -1;
	k = strcspn(s, "=");
	if (k > n)
		k = n;
	memcpy(key, s, k);
	key[k] = '\0';
	*has_value = k < n;
	if (*has_value) {
		memcpy(value, s + k + 1, n - k - 1);
		value[n - k - 1] = '\0';
	} else {
		value[0] = '\0';
	}
	*p = s + n;
	return 1;
}

static int all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* RFC 1870: SIZE=digits. Overflow saturates, so it exceeds any limit. */
static int parse_size(const char *value, unsigned long long *out)
{
	unsigned long long n = 0;

	if (!all_digits(value))
		return -1;
	for (const char *s = value; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (ULLONG_MAX - d) / 10) {
			*out = ULLONG_MAX;
			return 0;
		}
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

static int parse_one_mail_param(const char *key, const char *value,
    int has_value, int ext, struct smtpd_mail_params *out, char *reply,
    size_t reply_size)
{
	if (strcasecmp(key, "SIZE") == 0) {
		if (out->size_given || !has_value ||
		    parse_size(value, &out->size) < 0)
			goto bad_value;
		out->size_given = 1;
	} else if (strcasecmp(key, "BODY") == 0) {
		if (out->body != SMTPD_BODY_NONE)
			goto bad_value;
		if (strcasecmp(value, "7BIT") == 0)
			out->body = SMTPD_BODY_7BIT;
		else if (strcasecmp(value, "8BITMIME") == 0)
			out->body = SMTPD_BODY_8BITMIME;
		else
			goto bad_value;
	} else if (strcasecmp(key, "AUTH") == 0) {
		/* RFC 4954 5: "<>" or an xtext mailbox; the value is not
		 * trusted from an unauthenticated client, so it is dropped. */
		if (out->auth_given || !has_value || (strcmp(value, "<>") != 0 &&
		    (value[0] == '\0' || !smtpd_xtext_valid(value, strlen(value)))))
			goto bad_value;
		out->auth_given = 1;
	} else if ((ext & SMTPD_EXT_DSN) && strcasecmp(key, "RET") == 0) {
		if (out->ret != SMTPD_RET_NONE)
			goto bad_value;
		if (strcasecmp(value, "FULL") == 0)
			out->ret = SMTPD_RET_FULL;
		else if (strcasecmp(value, "HDRS") == 0)
			out->ret = SMTPD_RET_HDRS;
		else
			goto bad_value;
	} else if ((ext & SMTPD_EXT_DSN) && strcasecmp(key, "ENVID") == 0) {
		size_t n = strlen(value);

		/* RFC 3461 4.4: at most 100 characters. */
		if (out->envid[0] || n == 0 || n >= sizeof(out->envid) ||
		    !smtpd_xtext_valid(value, n))
			goto bad_value;
		memcpy(out->envid, value, n + 1);
	} else {
		snprintf(reply, reply_size, "555 5.5.4 Unsupported option: %s",
		    key);
		return -1;
	}
	return 0;

bad_value:
	snprintf(reply, reply_size, "501 5.5.4 Bad %s parameter syntax", key);
	return -1;
}

/* Sanitizes a keyword for echoing it in a reply. */
static void clean_key(char *key)
{
	for (char *p = key; *p; p++)
		if ((unsigned char)*p < 33 || (unsigned char)*p > 126)
			*p = '?';
	if (strlen(key) > 40)
		key[40] = '\0';
}

/* Turns the last result of param_next into the result of a parameter
 * list: 0 at its end, else -1 with the reply. */
static int params_end(int r, char *reply, size_t reply_size)
{
	if (r < 0) {
		snprintf(reply, reply_size, "501 5.5.4 Parameter too long");
		return -1;
	}
	if (r > 0) {
		snprintf(reply, reply_size, "501 5.5.4 Bad parameter syntax");
		return -1;
	}
	return 0;
}

int smtpd_parse_mail_params(const char *rest, int ext,
    struct smtpd_mail_params *out, char *reply, size_t reply_size)
{
	char key[PARAM_MAX], value[PARAM_MAX];
	int has_value, r;

	memset(out, 0, sizeof(*out));
	while ((r = param_next(&rest, key, value, &has_value)) > 0) {
		clean_key(key);
		if (key[0] == '\0')
			break;
		if (parse_one_mail_param(key, value, has_value, ext, out,
		    reply, reply_size) < 0)
			return -1;
	}
	return params_end(r, reply, reply_size);
}

/* RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
static int parse_notify(const char *value, int *out)
{
	char copy[PARAM_MAX];
	char *save = NULL;
	int flags = 0;

	/* strtok_r skips empty items, so reject them first. */
	if (value[0] == '\0' || strlen(value) >= sizeof(copy) ||
	    value[0] == ',' || value[strlen(value) - 1] == ',' ||
	    strstr(value, ",,"))
		return -1;
	strcpy(copy, value);
	for (char *t = strtok_r(copy, ",", &save); t;
	    t = strtok_r(NULL, ",", &save)) {
		int bit;

		if (strcasecmp(t, "NEVER") == 0)
			bit = QNOTIFY_NEVER;
		else if (strcasecmp(t, "SUCCESS") == 0)
			bit = QNOTIFY_SUCCESS;
		else if (strcasecmp(t, "FAILURE") == 0)
			bit = QNOTIFY_FAILURE;
		else if (strcasecmp(t, "DELAY") == 0)
			bit = QNOTIFY_DELAY;
		else
			return -1;
		if (flags & bit)
			return -1;
		flags |= bit;
	}
	if (flags == 0 || ((flags & QNOTIFY_NEVER) && flags != QNOTIFY_NEVER))
		return -1;
	*out = flags;
	return 0;
}

/* RFC 3461 4.2: ORCPT=addr-type;xtext with an atom as addr-type. */
static int orcpt_valid(const char *value)
{
	const char *semi = strchr(value, ';');

	if (semi == NULL || semi == value || semi[1] == '\0')
		return 0;
	for (const char *p = value; p < semi; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 33 || c > 126 || strchr("()<>@,;:\\\".[]", c))
			return 0;
	}
	return smtpd_xtext_valid(semi + 1, strlen(semi + 1));
}

int smtpd_parse_rcpt_params(const char *rest, int ext,
    struct smtpd_rcpt_params *out, char *reply, size_t reply_size)
{
	char key[PARAM_MAX], value[PARAM_MAX];
	int has_value, r;

	memset(out, 0, sizeof(*out));
	while ((r = param_next(&rest, key, value, &has_value)) > 0) {
		clean_key(key);
		if (key[0] == '\0')
			break;
		if ((ext & SMTPD_EXT_DSN) && strcasecmp(key, "NOTIFY") == 0) {
			if (out->notify || parse_notify(value, &out->notify) < 0)
				goto bad_value;
		} else if ((ext & SMTPD_EXT_DSN) &&
		    strcasecmp(key, "ORCPT") == 0) {
			if (out->orcpt[0] || strlen(value) >= sizeof(out->orcpt) ||
			    !orcpt_valid(value))
				goto bad_value;
			strcpy(out->orcpt, value);
		} else {
			snprintf(reply, reply_size,
			    "555 5.5.4 Unsupported option: %s", key);
			return -1;
		}
	}
	return params_end(r, reply, reply_size);

bad_value:
	snprintf(reply, reply_size, "501 5.5.4 Bad %s parameter syntax", key);
	return -1;
}
