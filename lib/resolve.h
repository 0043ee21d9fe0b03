/*
 * resolve - where an address goes: its address class, transport and
 * next hop, from mydestination, virtual_mailbox_domains, relay_domains,
 * transport_maps and relayhost. smtpd uses it to decide relay access and
 * recipient validity; qmgr uses it to route.
 *
 * Domain lists (mydestination, virtual_mailbox_domains, relay_domains)
 * hold domain names, compared case-insensitively, ".example.com" for
 * every subdomain, and "type:name" tables looked up by domain. An address
 * without a domain is completed with myorigin. An address literal
 * "[192.0.2.1]" is local when it is one of inet_interfaces' addresses.
 * NOTE: only named domains are matched in this version; literals never
 * count as local.
 */
#ifndef POSTERN_RESOLVE_H
#define POSTERN_RESOLVE_H

enum addr_class {
	ADDR_CLASS_LOCAL,    /* domain in mydestination */
	ADDR_CLASS_VIRTUAL,  /* domain in virtual_mailbox_domains */
	ADDR_CLASS_RELAY,    /* domain in relay_domains */
	ADDR_CLASS_DEFAULT   /* anything else: relaying */
};

struct resolve_result {
	enum addr_class addr_class;
	char transport[64];  /* master.cf service name: "local", "smtp", ... */
	char nexthop[512];   /* "" (transport default), "[host]:port", "domain" */
	char recipient[512]; /* the address, completed with myorigin if bare */
};

/* Opens the tables named in the configuration. Call once after
 * config_load(), before dropping privileges. Returns 0 or -1 with a
 * message. Calling it again reopens them. After -1 the tables that opened
 * work, lookups that need one that did not open fail as temporary errors,
 * and opening it is retried every few seconds. */
int resolve_init(char **err_out);

/*
 * Resolves addr. Returns 0 with *out filled, or -1 when a table lookup
 * failed (a temporary error), with a message in *err_out (caller frees).
 * transport_maps is tried with the full address, then the domain, then
 * each parent domain as ".parent", then "*"; a result "transport:nexthop"
 * with either part empty keeps the class default for that part. Class
 * defaults: local_transport for LOCAL, virtual_transport for VIRTUAL,
 * relay_transport for RELAY, default_transport for DEFAULT; the next hop
 * defaults to relayhost for RELAY and DEFAULT, else to the domain.
 */
int resolve_addr(const char *addr, struct resolve_result *out,
    char **err_out);

/* Address class of a bare domain; -1 on a table error. */
int resolve_domain_class(const char *domain, char **err_out);

/*
 * Decides whether a recipient in a local or virtual domain exists:
 * LOCAL: the local part is found in local_recipient_maps (default
 * "unix:passwd.byname $alias_maps"; an empty setting accepts everyone);
 * VIRTUAL: the full address, or "@domain", is found in
 * virtual_mailbox_maps or virtual_alias_maps. Other classes return 1.
 * Returns 1 exists, 0 unknown, -1 table error (message in *err_out).
 */
int resolve_recipient_exists(const char *addr, char **err_out);

#endif
