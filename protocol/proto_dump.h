/*
 * proto_dump.h -- the text lines of memcached's key dumps, composed: the
 * items of "lru_crawler metadump" and "stats cachedump", the URL encoding
 * of keys the first one uses, the crawler's fixed replies and the parsing
 * of its class lists.  Pure functions over bytes, like the rest of
 * protocol/.
 */
#ifndef CACHED_PROTO_DUMP_H
#define CACHED_PROTO_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Room for the longest line either composer writes. */
#define PROTO_DUMP_LINE_MAX	(3 * PROTO_KEY_MAX + 128)

/* Every item lives in this class ("cls=", "stats cachedump <class>"):
 * the store has no slab classes (stats items/slabs show the same one). */
#define PROTO_DUMP_CLASS	1
/* Class ids run 1 .. PROTO_DUMP_CLASSES - 1 (memcached's 64 classes). */
#define PROTO_DUMP_CLASSES	64

/* One item as the dumps show it. */
struct proto_dump_item {
	const char	*key;
	size_t		 nkey;
	uint32_t	 exptime;	/* absolute unix time, 0 never */
	uint32_t	 atime;		/* last access, unix time */
	uint64_t	 cas;
	bool		 fetched;
	uint32_t	 nbytes;	/* value length */
	size_t		 size;		/* bytes it takes in memory */
};

/* Writes "key=<urlencoded> exp=<-1|time> la=<time> cas=<n>
 * fetch=<yes|no> cls=1 size=<n>\n" (memcached ends these lines in "\n"
 * alone) into out (PROTO_DUMP_LINE_MAX); returns its length. */
size_t	proto_metadump_line(char *out, const struct proto_dump_item *d);
/* Writes "ITEM <key> [<nbytes> b; <exptime or 0> s]\r\n"; returns its
 * length. */
size_t	proto_cachedump_line(char *out, const struct proto_dump_item *d);
/* URL-encodes a key as memcached does: letters, digits and "-._~" stay,
 * every other byte becomes %XX (upper case); returns the length. */
size_t	proto_uriencode(char *out, const char *key, size_t nkey);

/* What a class list ("all", "hash", "1,2,...") selects. */
enum proto_classes {
	PROTO_CLASSES_BAD,	/* BADCLASS invalid class id */
	PROTO_CLASSES_NONE,	/* no ids at all (","): NOTSTARTED */
	PROTO_CLASSES_HASH,	/* "hash" */
	PROTO_CLASSES_SOME,	/* ids given, or "all"; *has_ours says
				 * whether PROTO_DUMP_CLASS is among them */
};

/* Parses a crawler's class list: "all", "hash", or comma-separated ids
 * from 1 to 63 (empty ones skipped; digits only, unlike memcached's
 * strtoul, which takes "+1" and wraps "4294967297" to 1). */
enum proto_classes proto_dump_classes(const char *s, size_t n,
	    bool *has_ours);

/* Fixed replies of lru_crawler and stats cachedump, "\r\n" included. */
#define PROTO_DUMP_R_END	"END\r\n"
#define PROTO_DUMP_R_OK		"OK\r\n"
#define PROTO_DUMP_R_ERROR	"ERROR\r\n"
#define PROTO_DUMP_R_BADCLASS	"BADCLASS invalid class id\r\n"
#define PROTO_DUMP_R_NOTSTARTED	"NOTSTARTED no items to crawl\r\n"
#define PROTO_DUMP_R_UNKNOWN	"ERROR an unknown error happened\r\n"
#define PROTO_DUMP_R_DISABLED	"CLIENT_ERROR lru crawler disabled\r\n"
#define PROTO_DUMP_R_NOT_ALLOWED "ERROR metadump not allowed\r\n"
#define PROTO_DUMP_R_NO_START	"ERROR failed to start lru crawler thread\r\n"
#define PROTO_DUMP_R_FORMAT	"CLIENT_ERROR bad command line format\r\n"
#define PROTO_DUMP_R_SLEEP	"CLIENT_ERROR sleep must be one second or less\r\n"
#define PROTO_DUMP_R_CD_LINE	"CLIENT_ERROR bad command line\r\n"
#define PROTO_DUMP_R_CD_SLAB	"CLIENT_ERROR Illegal slab id\r\n"
#define PROTO_DUMP_R_CD_NOT_ALLOWED \
	"CLIENT_ERROR stats cachedump not allowed\r\n"

#endif
