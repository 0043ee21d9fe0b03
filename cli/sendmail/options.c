/*
 * The sendmail option parser. getopt() is not used because sendmail
 * options take values in both forms ("-fuser" and "-f user"), and "-b",
 * "-o" and "-q" carry a mode letter or an option name in the same word.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "options.h"
#include "qfile.h"
#include "sbuf.h"

/* Option letters whose value is the rest of the word or the next word. */
#define SM_VALUE_LETTERS "fFrCcNRVBLOhXo"
/* Option letters accepted and ignored: -G (gateway submission), -U
 * (initial user submission), -n (no aliasing), -m (send to me too),
 * -x, -e, -s and -d/-A values that older programs pass. */
#define SM_IGNORED_LETTERS "GUnmxesdA"
/* Maximum length of a -V ENVID, in bytes (RFC 3461 4.4). */
#define SM_MAX_ENVID 100

int sm_notify_parse(const char *value)
{
	char **words;
	size_t count;
	int bits = 0;

	if (strcasecmp(value, "never") == 0)
		return QNOTIFY_NEVER;
	words = str_split(value, ",", &count);
	for (size_t i = 0; i < count && bits >= 0; i++) {
		char *w = str_trim(words[i]);

		if (strcasecmp(w, "success") == 0)
			bits |= QNOTIFY_SUCCESS;
		else if (strcasecmp(w, "failure") == 0)
			bits |= QNOTIFY_FAILURE;
		else if (strcasecmp(w, "delay") == 0)
			bits |= QNOTIFY_DELAY;
		else
			bits = -1;
	}
	free(words);
	return count == 0 ? -1 : bits;
}

static int sm_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* 1 when s is valid xtext (RFC 3461 4): printable ASCII without '=' and
 * with each '+' followed by two uppercase hex digits. */
static int sm_xtext_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > SM_MAX_ENVID)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '=')
			return 0;
		if (c == '+') {
			if (i + 2 >= len || !sm_upper_hex(s[i + 1])
			    || !sm_upper_hex(s[i + 2]))
				return 0;
			i += 2;
		}
	}
	return 1;
}

/* Applies -b with mode letter m. */
static int sm_option_mode(struct sm_options *o, const char *m, char **err_out)
{
	if (strcmp(m, "m") == 0)
		o->mode = SM_MODE_DELIVER;
	else if (strcmp(m, "p") == 0)
		o->mode = SM_MODE_MAILQ;
	else if (strcmp(m, "i") == 0)
		o->mode = SM_MODE_NEWALIASES;
	else if (strcmp(m, "s") == 0) {
		*err_out = xstrdup("-bs (SMTP on standard input) is not supported;"
		    " submit over SMTP to port 25 or 587, or pipe the message to"
		    " sendmail without -bs");
		return -1;
	} else {
		*err_out = xasprintf("-b%s is not supported; the supported modes are"
		    " -bm (deliver), -bp (mailq) and -bi (newaliases)", m);
		return -1;
	}
	return 0;
}

/* Applies an option that takes a value. */
static int sm_option_value(struct sm_options *o, char letter, const char *value,
    char **err_out)
{
	switch (letter) {
	case 'f':
	case 'r':
		o->sender = value;
		return 0;
	case 'F':
		o->fullname = value;
		return 0;
	case 'C':
	case 'c':
		o->config_dir = value;
		return 0;
	case 'N':
		o->notify = sm_notify_parse(value);
		if (o->notify < 0) {
			*err_out = xasprintf("invalid -N value \"%s\": use never, or"
			    " success, failure and delay joined by commas", value);
			return -1;
		}
		return 0;
	case 'R':
		if (strcasecmp(value, "full") == 0)
			o->ret = "FULL";
		else if (strcasecmp(value, "hdrs") == 0)
			o->ret = "HDRS";
		else {
			*err_out = xasprintf("invalid -R value \"%s\": use full or hdrs",
			    value);
			return -1;
		}
		return 0;
	case 'V':
		if (!sm_xtext_valid(value)) {
			*err_out = xasprintf("invalid -V envelope ID \"%.100s\": use 1 to"
			    " %d printable ASCII characters without '=', with '+'"
			    " only before two uppercase hex digits", value,
			    SM_MAX_ENVID);
			return -1;
		}
		o->envid = value;
		return 0;
	case 'o':
		/* -oi as -i; the other -o options (delivery and error modes of
		 * Sendmail 8) have no meaning here. */
		if (strcmp(value, "i") == 0)
			o->ignore_dots = 1;
		return 0;
	default:
		/* -B body type, -L syslog label, -O option, -h hop count, -X log
		 * file: accepted for compatibility, no effect. */
		return 0;
	}
}

/* Parses one word of flags that take no value, such as "-ti". */
static int sm_option_flags(struct sm_options *o, const char *word,
    int *next_index, int argc, char **argv, struct sbuf *warnings,
    char **err_out)
{
	for (const char *p = word + 1; *p != '\0'; p++) {
		char letter = *p;

		if (strchr(SM_VALUE_LETTERS, letter) != NULL) {
			const char *value = p + 1;

			if (*value == '\0') {
				if (*next_index >= argc) {
					*err_out = xasprintf("option -%c requires a value",
					    letter);
					return -1;
				}
				value = argv[(*next_index)++];
			}
			return sm_option_value(o, letter, value, err_out);
		}
		switch (letter) {
		case 't':
			o->extract_rcpts = 1;
			break;
		case 'i':
			o->ignore_dots = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'I':
			o->mode = SM_MODE_NEWALIASES;
			break;
		case 'b':
			if (p[1] == '\0' && *next_index >= argc) {
				*err_out = xstrdup("option -b requires a mode letter");
				return -1;
			}
			return sm_option_mode(o, p[1] != '\0' ? p + 1
			    : argv[(*next_index)++], err_out);
		case 'q':
			/* -q, -q30m, -qRsite: every form retries the whole queue. */
			o->mode = SM_MODE_FLUSH;
			return 0;
		default:
			if (strchr(SM_IGNORED_LETTERS, letter) != NULL)
				return 0;
			sbuf_printf(warnings, "unknown option -%c ignored\n", letter);
			return 0;
		}
	}
	return 0;
}

int sm_options_parse(int argc, char **argv, const char *progname,
    struct sm_options *opts, struct sbuf *warnings, char **err_out)
{
	int i = 1;

	memset(opts, 0, sizeof(*opts));
	opts->mode = SM_MODE_DELIVER;
	if (strcmp(progname, "mailq") == 0)
		opts->mode = SM_MODE_MAILQ;
	else if (strcmp(progname, "newaliases") == 0)
		opts->mode = SM_MODE_NEWALIASES;

	while (i < argc) {
		const char *word = argv[i];

		if (word[0] != '-' || word[1] == '\0')
			break;
		i++;
		if (strcmp(word, "--") == 0)
			break;
		if (sm_option_flags(opts, word, &i, argc, argv, warnings,
		    err_out) < 0)
			return -1;
	}
	opts->rcpts = argv + i;
	opts->nrcpt = (size_t)(argc - i);
	return 0;
}
