/*
 * addr - RFC 5321 mail addresses.
 *
 * Postern keeps addresses in internal form: the local part unquoted
 * ("john doe@example.com" for <"john doe"@example.com>), the domain as
 * received. Comparisons of domains are case-insensitive; local parts are
 * compared as received except where a table lookup lowercases its key.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_MAX_LOCAL 64     /* RFC 5321 4.5.3.1.1 */
#define ADDR_MAX_DOMAIN 255   /* RFC 5321 4.5.3.1.2 */
#define ADDR_MAX_PATH 256     /* RFC 5321 4.5.3.1.3, with the brackets */

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,      /* not a valid path */
	ADDR_ERR_NO_BRACKETS, /* missing < or > */
	ADDR_ERR_LOCAL_LONG,  /* local part over 64 octets */
	ADDR_ERR_DOMAIN_LONG, /* domain over 255 octets */
	ADDR_ERR_PATH_LONG,   /* path over 256 octets */
	ADDR_ERR_NO_DOMAIN    /* "user" without "@domain" */
};

/*
 * Parses a reverse-path or forward-path at the start of s (the text after
 * "MAIL FROM:" or "RCPT TO:", leading blanks allowed): "<>" (only when
 * allow_empty), "<local@domain>" with a dot-string or quoted-string local
 * part and a domain name or address literal ("[192.0.2.1]",
 * "[IPv6:...]"). A source route ("<@a,@b:user@domain>") is accepted and
 * dropped (RFC 5321 4.1.1.3, C). "<postmaster>" without a domain is
 * accepted when allow_bare_postmaster. On success returns ADDR_OK, sets
 * *addr_out (internal form, caller frees) and *rest_out to the text after
 * '>' (the ESMTP parameters). On failure returns the error and sets
 * nothing.
 */
enum addr_error addr_parse_path(const char *s, int allow_empty,
    int allow_bare_postmaster, char **addr_out, const char **rest_out);

/* Human-readable text for an addr_error, for SMTP replies. */
const char *addr_strerror(enum addr_error err);

/* Pointer to the domain after the last '@', or NULL when there is none. */
const char *addr_domain(const char *addr);

/* Copy of the local part (caller frees). */
char *addr_localpart(const char *addr);

/*
 * Writes addr in external form to a malloc'd string: the local part is
 * quoted when it is not a valid dot-string. "" stays "". Caller frees.
 */
char *addr_externalize(const char *addr);

/* 1 when the domain is fully qualified (has a dot, or is a literal). */
int addr_domain_is_fqdn(const char *domain);

/*
 * Checks the syntax of a domain name (letters, digits, hyphens, dots,
 * labels of 1..63 octets) or address literal. Returns 1 when valid.
 */
int addr_domain_valid(const char *domain);

#endif
