/*
 * maps - lookup tables named "type:name".
 *
 *   hash:/path, btree:/path  Berkeley DB file /path.db, built from the
 *                            text file /path by map_build().
 *   pcre:/path               "/regex/flags result" lines, first match wins;
 *                            $1..$9 in result are replaced by captures.
 *                            Flags: i toggles case-insensitivity (default
 *                            on), x extended.
 *   inline:{ k1=v1, k2=v2 }  keys and values given in place.
 *   static:value             every key returns value.
 *   unix:passwd.byname       the system user database (getpwnam).
 *   cidr:/path               "network result" lines (192.0.2.0/24,
 *                            [2001:db8::]/32, or an address), first
 *                            match wins; keys are IP addresses, any
 *                            other key is not found. Read as it is,
 *                            and again when the file changes.
 *
 * Keys of hash, btree, inline and unix are lowercased before lookup, so
 * addresses and domains match case-insensitively. Source text files have
 * "key value" lines ('#' comments, continuation lines starting with
 * white space, the value is the rest of the line after the first run of
 * white space, "key: value" as in aliases(5) also accepted).
 *
 * An open hash or btree map notices when its .db file is replaced (by
 * inode and mtime, checked at most once a second) and reopens it, so a
 * rebuilt table takes effect without a restart.
 */
#ifndef POSTERN_MAPS_H
#define POSTERN_MAPS_H

#include <stddef.h>

struct map;

/* Opens spec. Returns NULL with a message naming spec and the fix in
 * *err_out (caller frees) for an unknown type or a file that cannot be
 * opened. */
struct map *map_open(const char *spec, char **err_out);
void map_close(struct map **m);
const char *map_spec(const struct map *m);

/*
 * Looks key up. Returns 1 with a malloc'd value in *value_out, 0 when the
 * key is not found, -1 when the table cannot be read (a temporary error:
 * callers defer, never treat it as not found), with a message in
 * *err_out when err_out is not NULL (caller frees).
 */
int map_lookup(struct map *m, const char *key, char **value_out,
    char **err_out);

/* A list of maps ("hash:/a, pcre:/b"); lookups try each in order. */
struct maplist;
/* Opens every map named in spec (comma or blank separated). An empty spec
 * gives an empty list whose lookups return 0. */
struct maplist *maplist_open(const char *spec, char **err_out);
void maplist_close(struct maplist **l);
/* Same results as map_lookup, first map that finds the key wins. */
int maplist_lookup(struct maplist *l, const char *key, char **value_out,
    char **err_out);
size_t maplist_count(const struct maplist *l);

/*
 * Same as maplist_lookup for a key derived from the one being checked: a
 * parent domain ("example.com" of "mx.example.com") or a shortened
 * address ("192.0.2" of "192.0.2.40"). cidr: tables skip such keys,
 * because they do the network matching on the full address themselves
 * and "2001:db8::5" cut from "2001:db8::5:1" is a different address.
 */
int maplist_lookup_parent(struct maplist *l, const char *key,
    char **value_out, char **err_out);

/*
 * Splits a list of specs at commas and white space, keeping a "{...}"
 * group such as inline:{ a=b, c=d } in one item. Returns a NULL-terminated
 * array in one allocation (caller frees) with the number of items in
 * *count_out (when not NULL), or NULL with a message on unbalanced braces.
 */
char **map_split_list(const char *spec, size_t *count_out, char **err_out);

/*
 * Builds the Berkeley DB file for "hash:/path" or "btree:/path" (a bare
 * path means hash) from the text file /path: written to a temporary file
 * and renamed to /path.db, so readers never see a half-built table.
 * Returns 0, or -1 with a message naming the file and line.
 */
int map_build(const char *spec, char **err_out);

/* 1 when spec looks like "type:name" with a known type. */
int map_spec_valid(const char *spec);

#endif
