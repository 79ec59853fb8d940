/*
 * proto_dump.c -- composes the lines of memcached 1.6.18's key dumps
 * ("lru_crawler metadump", "stats cachedump") and parses the crawler's
 * class lists (proto_dump.h).  No I/O, no allocation, no state.
 */
#include <string.h>

#include "proto_dump.h"

/* Copies a string constant, returns the end. */
static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT(p, lit)	put((p), (lit), sizeof(lit) - 1)

/* URL-encodes a key: unreserved bytes stay, the rest become %XX. */
size_t
proto_uriencode(char *out, const char *key, size_t nkey)
{
	static const char hex[] = "0123456789ABCDEF";
	char *p = out;

	for (size_t i = 0; i < nkey; i++) {
		unsigned char c = (unsigned char)key[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	return (size_t)(p - out);
}

/* One metadump line. */
size_t
proto_metadump_line(char *out, const struct proto_dump_item *d)
{
	size_t nkey = d->nkey > PROTO_KEY_MAX ? PROTO_KEY_MAX : d->nkey;
	char *p = PUT(out, "key=");

	p += proto_uriencode(p, d->key, nkey);
	p = PUT(p, " exp=");
	if (d->exptime == 0)
		p = PUT(p, "-1");
	else
		p += proto_fmt_u64(p, d->exptime);
	p = PUT(p, " la=");
	p += proto_fmt_u64(p, d->atime);
	p = PUT(p, " cas=");
	p += proto_fmt_u64(p, d->cas);
	p = d->fetched ? PUT(p, " fetch=yes") : PUT(p, " fetch=no");
	p = PUT(p, " cls=");
	p += proto_fmt_u64(p, PROTO_DUMP_CLASS);
	p = PUT(p, " size=");
	p += proto_fmt_u64(p, d->size);
	*p++ = '\n';
	return (size_t)(p - out);
}

/* One cachedump line: the key as stored, not encoded. */
size_t
proto_cachedump_line(char *out, const struct proto_dump_item *d)
{
	size_t nkey = d->nkey > PROTO_KEY_MAX ? PROTO_KEY_MAX : d->nkey;
	char *p = PUT(out, "ITEM ");

	p = put(p, d->key, nkey);
	p = PUT(p, " [");
	p += proto_fmt_u64(p, d->nbytes);
	p = PUT(p, " b; ");
	p += proto_fmt_u64(p, d->exptime);
	p = PUT(p, " s]\r\n");
	return (size_t)(p - out);
}

/* Parses one class id: digits only, 1 .. PROTO_DUMP_CLASSES - 1. */
static bool
class_id(const char *s, size_t n, unsigned *id)
{
	unsigned v = 0;

	if (n == 0 || n > 3)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v >= PROTO_DUMP_CLASSES)
		return false;
	*id = v;
	return true;
}

/* Parses a crawler's class list. */
enum proto_classes
proto_dump_classes(const char *s, size_t n, bool *has_ours)
{
	const char *end = s + n, *e;
	bool any = false;
	unsigned id;

	*has_ours = false;
	if (n == 3 && memcmp(s, "all", 3) == 0) {
		*has_ours = true;
		return PROTO_CLASSES_SOME;
	}
	if (n == 4 && memcmp(s, "hash", 4) == 0)
		return PROTO_CLASSES_HASH;
	for (; s < end; s = e + 1) {
		e = memchr(s, ',', (size_t)(end - s));
		if (e == NULL)
			e = end;
		if (e == s)
			continue;	/* strtok skips empty ids */
		/* Leading zeros: "01" is 1, as strtoul reads it. */
		while (e - s > 1 && *s == '0')
			s++;
		if (!class_id(s, (size_t)(e - s), &id))
			return PROTO_CLASSES_BAD;
		any = true;
		*has_ours |= id == PROTO_DUMP_CLASS;
		if (e == end)
			break;
	}
	return any ? PROTO_CLASSES_SOME : PROTO_CLASSES_NONE;
}
