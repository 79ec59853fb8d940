/*
 * log.c -- leveled logging to stderr.
 *
 * log_level is read and written with relaxed atomics: "verbosity" may
 * change it from any worker while others log.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

static int log_level;

/* Sets the most verbose level that is printed. */
void
log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

/* Returns the level set last. */
int
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/* True when messages of this level are printed. */
int
log_enabled(enum log_level level)
{
	return (int)level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/* Prints one line to stderr with a single write so threads do not mix. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;
	int	 n;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, (size_t)n);
}
