/*
 * addr - parsing RFC 5321 paths into the internal (unquoted) form and
 * writing them back in external form.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "sbuf.h"

/* atext of RFC 5322 3.2.3: the characters of a dot-string atom. */
static int addr_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* qtextSMTP of RFC 5321 4.1.2: printable ASCII but '"' and '\'. */
static int addr_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static int addr_let_dig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* Length of the domain name at s (sub-domains of letters, digits and
 * inner hyphens, 1 to 63 octets each, separated by single dots), or 0
 * when s does not start with one. */
static size_t addr_scan_domain_name(const char *s)
{
	size_t pos = 0;

	for (;;) {
		size_t label = 0;

		if (!addr_let_dig((unsigned char)s[pos]))
			return 0;
		while (addr_let_dig((unsigned char)s[pos + label]) ||
		    s[pos + label] == '-')
			label++;
		if (label > 63 || s[pos + label - 1] == '-')
			return 0;
		pos += label;
		if (s[pos] != '.' || !addr_let_dig((unsigned char)s[pos + 1]))
			return pos;
		pos++;
	}
}

/* Checks the text between the brackets of an address literal:
 * IPv4 dotted quad or "IPv6:" followed by an IPv6 address. */
static int addr_literal_valid(const char *s, size_t len)
{
	char buf[64];
	unsigned char bin[16];

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, bin) == 1;
	return inet_pton(AF_INET, buf, bin) == 1;
}

/* Length of the domain (name or address literal) at s, or 0. */
static size_t addr_scan_domain(const char *s)
{
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || !addr_literal_valid(s + 1, (size_t)(end - s - 1)))
			return 0;
		return (size_t)(end - s) + 1;
	}
	return addr_scan_domain_name(s);
}

/* Skips a source route "@a,@b:" at s (RFC 5321 4.1.2 A-d-l). Returns the
 * bytes used, 0 when there is none, or -1 on a syntax error. */
static long addr_skip_route(const char *s)
{
	size_t pos = 0;

	if (s[0] != '@')
		return 0;
	for (;;) {
		size_t dlen = addr_scan_domain(s + pos + 1);

		if (dlen == 0)
			return -1;
		pos += 1 + dlen;
		if (s[pos] == ':')
			return (long)pos + 1;
		if (s[pos] != ',' || s[pos + 1] != '@')
			return -1;
		pos++;
	}
}

/* Parses the local part at s into out (unquoted). Returns the bytes
 * used, or 0 on a syntax error. */
static size_t addr_scan_local(const char *s, struct sbuf *out)
{
	size_t pos = 0;

	if (s[0] == '"') {
		for (pos = 1; s[pos] != '"'; pos++) {
			unsigned char c = (unsigned char)s[pos];

			if (c == '\\') {
				c = (unsigned char)s[++pos];
				if (c < 32 || c > 126)
					return 0;
			} else if (!addr_qtext(c)) {
				return 0;
			}
			sbuf_putc(out, (char)c);
		}
		return pos + 1;
	}

	for (;;) {
		size_t start = pos;

		while (addr_atext((unsigned char)s[pos]))
			pos++;
		if (pos == start)
			return 0;
		if (s[pos] != '.')
			break;
		pos++;
	}
	sbuf_append(out, s, pos);
	return pos;
}

/* Parses "<...>" after the '<' at s; sets *end_out past the '>'. */
static enum addr_error addr_parse_mailbox(const char *s, int allow_bare_postmaster,
    struct sbuf *out, const char **end_out)
{
	const char *start = s;
	long route = addr_skip_route(s);
	size_t local_len, domain_len;

	if (route < 0)
		return ADDR_ERR_SYNTAX;
	s += route;
	local_len = addr_scan_local(s, out);
	if (local_len == 0)
		return ADDR_ERR_SYNTAX;
	s += local_len;

	if (*s == '>') {
		if (!allow_bare_postmaster || route != 0 ||
		    strcasecmp(sbuf_cstr(out), "postmaster") != 0)
			return ADDR_ERR_NO_DOMAIN;
		*end_out = s + 1;
		return ADDR_OK;
	}
	if (*s != '@')
		return ADDR_ERR_SYNTAX;
	domain_len = addr_scan_domain(s + 1);
	if (domain_len == 0 || s[1 + domain_len] != '>')
		return ADDR_ERR_SYNTAX;

	/* Limits of RFC 5321 4.5.3.1, on the octets as sent. */
	if (local_len > ADDR_MAX_LOCAL)
		return ADDR_ERR_LOCAL_LONG;
	if (domain_len > ADDR_MAX_DOMAIN)
		return ADDR_ERR_DOMAIN_LONG;
	/* The path counts both brackets: the one before start and the '>'. */
	if ((size_t)(s + 1 + domain_len - start) + 2 > ADDR_MAX_PATH)
		return ADDR_ERR_PATH_LONG;
	sbuf_putc(out, '@');
	sbuf_append(out, s + 1, domain_len);
	*end_out = s + 2 + domain_len;
	return ADDR_OK;
}

enum addr_error addr_parse_path(const char *s, int allow_empty,
    int allow_bare_postmaster, char **addr_out, const char **rest_out)
{
	struct sbuf out;
	const char *end = NULL;
	enum addr_error err;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '<')
		return ADDR_ERR_NO_BRACKETS;
	s++;
	if (*s == '>') {
		if (!allow_empty)
			return ADDR_ERR_SYNTAX;
		*addr_out = xstrdup("");
		*rest_out = s + 1;
		return ADDR_OK;
	}
	if (strchr(s, '>') == NULL)
		return ADDR_ERR_NO_BRACKETS;

	/* The cap only guards memory: a valid path is far shorter. */
	sbuf_init(&out, 4 * ADDR_MAX_PATH);
	err = addr_parse_mailbox(s, allow_bare_postmaster, &out, &end);
	if (err != ADDR_OK) {
		sbuf_free(&out);
		return err;
	}
	*addr_out = sbuf_detach(&out);
	*rest_out = end;
	return ADDR_OK;
}

const char *addr_strerror(enum addr_error err)
{
	switch (err) {
	case ADDR_OK: return "valid address";
	case ADDR_ERR_SYNTAX: return "invalid address syntax";
	case ADDR_ERR_NO_BRACKETS: return "address must be enclosed in <>";
	case ADDR_ERR_LOCAL_LONG: return "local part of address exceeds 64 octets";
	case ADDR_ERR_DOMAIN_LONG: return "domain of address exceeds 255 octets";
	case ADDR_ERR_PATH_LONG: return "address exceeds 256 octets";
	case ADDR_ERR_NO_DOMAIN: return "address has no domain";
	}
	return "invalid address";
}

const char *addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : NULL;
}

char *addr_localpart(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
}

/* 1 when local[0..len) is a dot-string and so needs no quotes. */
static int addr_is_dot_string(const char *local, size_t len)
{
	int atom_len = 0;

	for (size_t i = 0; i < len; i++) {
		if (local[i] == '.') {
			if (atom_len == 0)
				return 0;
			atom_len = 0;
		} else if (addr_atext((unsigned char)local[i])) {
			atom_len++;
		} else {
			return 0;
		}
	}
	return atom_len > 0;
}

char *addr_externalize(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local_len = at ? (size_t)(at - addr) : strlen(addr);
	struct sbuf out;

	if (addr[0] == '\0')
		return xstrdup("");
	if (addr_is_dot_string(addr, local_len))
		return xstrdup(addr);

	sbuf_init(&out, 0);
	sbuf_putc(&out, '"');
	for (size_t i = 0; i < local_len; i++) {
		if (addr[i] == '"' || addr[i] == '\\')
			sbuf_putc(&out, '\\');
		sbuf_putc(&out, addr[i]);
	}
	sbuf_putc(&out, '"');
	if (at != NULL)
		sbuf_puts(&out, at);
	return sbuf_detach(&out);
}

int addr_domain_is_fqdn(const char *domain)
{
	return domain[0] == '[' || strchr(domain, '.') != NULL;
}

int addr_domain_valid(const char *domain)
{
	size_t len = strlen(domain);

	return len > 0 && len <= ADDR_MAX_DOMAIN && addr_scan_domain(domain) == len;
}
