/*
 * log.h -- leveled logging to stderr for the server.
 *
 * The level is set once at start-up (-v, -vv) and only read afterwards;
 * each message is written with one write(2) so lines from different threads
 * do not interleave.
 */
#ifndef CACHED_LOG_H
#define CACHED_LOG_H

/* -v errors and warnings, -vv also every command and reply (memcached's
 * lines), -vvv also connection state changes. */
enum log_level { LOG_ERR = 0, LOG_INFO = 1, LOG_DEBUG = 2, LOG_TRACE = 3 };

/* Sets the most verbose level that is printed (0 = errors only). */
void	log_set_level(int level);
/* Returns the level set last (what "stats settings" shows as verbosity). */
int	log_get_level(void);
/* True when messages of this level are printed. */
int	log_enabled(enum log_level level);
/* Prints one line (a newline is added) if level is enabled. */
void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
