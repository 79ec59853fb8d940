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

/* -vv, binary: a request's header dump and command line (raw: header,
 * extras and key; auth -1 without -S, else whether authenticated). */
void	conn_log_bin_request(int fd, const char *raw, size_t n, int auth);
/* -vv, binary: the header dump (and error line) of each response
 * starting in [p, p + n); *left tracks the response in progress. */
void	conn_log_bin_out(int fd, const char *p, size_t n, size_t *left);
/* -vv, binary: n bytes of the response in progress went out as a value. */
void	conn_log_bin_value(size_t n, size_t *left);

#endif
