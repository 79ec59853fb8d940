/*
 * conn_log.h -- memcached's -vv/-vvv connection log lines (conn_log.c).
 * Callers check log_enabled(LOG_DEBUG) first, so nothing is formatted
 * when logging is off.
 */
#ifndef CACHED_CONN_LOG_H
#define CACHED_CONN_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

/* The codec a connection's replies go through: a wrapper of the text
 * codec that logs each reply when -vv is on, else codec itself. */
const struct proto_codec *conn_log_codec(const struct proto_codec *codec);
/* Logs "<fd line" for a command line (its line end left out). */
void	conn_log_line(int fd, const char *line, size_t n);
/* Logs ">fd ERROR" (or ">fd NOREPLY ...") for a refused line's error. */
void	conn_log_error(int fd, const char *error, bool noreply);

#endif
