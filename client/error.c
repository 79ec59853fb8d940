/*
 * error.c -- status codes, their names and the per-thread error message.
 *
 * Every failing call leaves a one-line description in a thread-local
 * buffer that cc_errmsg() returns, in the manner of dlerror(), so the
 * message of one thread's failure never mixes with another's.  The status
 * table maps libmemcached's many results onto our few.
 */
#include "client_internal.h"

#include <stdarg.h>
#include <stdio.h>

#define ERRMSG_LEN 256

static _Thread_local char errmsg[ERRMSG_LEN];

static const char *const status_names[] = {
	[CC_OK]			= "success",
	[CC_NOT_FOUND]		= "not found",
	[CC_NOT_STORED]		= "not stored",
	[CC_BAD_ARGUMENT]	= "bad argument",
	[CC_NON_NUMERIC]	= "value is not a number",
	[CC_TOO_LARGE]		= "value too large",
	[CC_NO_MEMORY]		= "out of memory",
	[CC_TIMEOUT]		= "timed out",
	[CC_UNREACHABLE]	= "server unreachable",
	[CC_SERVER_ERROR]	= "server error",
	[CC_PROTOCOL_ERROR]	= "protocol error",
	[CC_COMPUTE_FAILED]	= "compute callback failed",
	[CC_ERROR]		= "error",
};

/* Returns a short static description of a status. */
const char *
cc_strerror(cc_status status)
{
	if ((unsigned)status >= sizeof status_names / sizeof status_names[0] ||
	    status_names[status] == NULL)
		return "unknown status";
	return status_names[status];
}

/* Returns the calling thread's last error message. */
const char *
cc_errmsg(void)
{
	return errmsg[0] != '\0' ? errmsg : "no error";
}

/* Records a formatted message for the calling thread and returns st. */
cc_status
client_err_set(cc_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	return st;
}

/* Maps a libmemcached result onto a status. */
cc_status
client_err_map(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_SUCCESS:
	case MEMCACHED_STORED:
	case MEMCACHED_DELETED:
	case MEMCACHED_END:
	case MEMCACHED_BUFFERED:
		return CC_OK;
	case MEMCACHED_NOTFOUND:
		return CC_NOT_FOUND;
	case MEMCACHED_NOTSTORED:
	case MEMCACHED_DATA_EXISTS:
		return CC_NOT_STORED;
	case MEMCACHED_E2BIG:
		return CC_TOO_LARGE;
	case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
		return CC_NO_MEMORY;
	case MEMCACHED_TIMEOUT:
		return CC_TIMEOUT;
	case MEMCACHED_CONNECTION_FAILURE:
	case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
	case MEMCACHED_HOST_LOOKUP_FAILURE:
	case MEMCACHED_WRITE_FAILURE:
	case MEMCACHED_READ_FAILURE:
	case MEMCACHED_UNKNOWN_READ_FAILURE:
	case MEMCACHED_ERRNO:
	case MEMCACHED_NO_SERVERS:
	case MEMCACHED_SERVER_MARKED_DEAD:
	case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
	case MEMCACHED_CONNECTION_BIND_FAILURE:
		return CC_UNREACHABLE;
	case MEMCACHED_SERVER_ERROR:
	case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
		return CC_SERVER_ERROR;
	case MEMCACHED_PROTOCOL_ERROR:
	case MEMCACHED_PARTIAL_READ:
	case MEMCACHED_CLIENT_ERROR:
		return CC_PROTOCOL_ERROR;
	case MEMCACHED_BAD_KEY_PROVIDED:
	case MEMCACHED_KEY_TOO_BIG:
	case MEMCACHED_INVALID_ARGUMENTS:
		return CC_BAD_ARGUMENT;
	default:
		return CC_ERROR;
	}
}

/* Records libmemcached's message for a failed `what`; returns it mapped. */
cc_status
client_err_memc(memcached_st *memc, memcached_return_t rc, const char *what)
{
	cc_status	 st = client_err_map(rc);
	const char	*detail = NULL;

	if (memc != NULL && memcached_last_error(memc) == rc)
		detail = memcached_last_error_message(memc);
	if (detail == NULL)
		detail = memcached_strerror(memc, rc);
	return client_err_set(st, "%s: %s", what,
	    detail != NULL ? detail : "?");
}
