/*
 * version.h -- what "version" and "stats" report.  Clients such as
 * libmemcached parse the leading major.minor.micro to decide which commands
 * a server has, so the memcached release whose text protocol we implement
 * leads, followed by our own version.
 */
#ifndef CACHED_VERSION_H
#define CACHED_VERSION_H

#define CACHED_COMPAT_VERSION	"1.6.18"
#define CACHED_WIRE_VERSION	CACHED_COMPAT_VERSION "-cached-" PACKAGE_VERSION

#endif
