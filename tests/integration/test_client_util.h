/*
 * test_client_util.h -- helpers shared by libcachedclient's integration
 * tests: start and stop real cached and nutcracker processes on loopback
 * (kernel-chosen or probed free ports, or unix sockets in a private
 * directory), bounded waits, and test-friendly client settings.
 */
#ifndef TEST_CLIENT_UTIL_H
#define TEST_CLIENT_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cachedclient.h"

struct tc_proc {
	pid_t		 pid;		/* -1 when not running */
	unsigned	 port;		/* TCP port, 0 for a unix socket */
	char		 dir[64];	/* private temporary directory */
	char		 sock[128];	/* unix socket path, or "" */
	char		 addr[160];	/* entry for a server list */
};

/* A clock for the client: real time plus an offset tests move forward. */
struct tc_clock {
	_Atomic uint64_t offset_ms;
};

/* Starts cached on 127.0.0.1 (port 0: kernel's choice) and waits for it. */
bool		 tc_cached_start(struct tc_proc *p, unsigned port);
/* The same with extra flags (NULL-terminated, may override the defaults). */
bool		 tc_cached_start_args(struct tc_proc *p, unsigned port,
		    const char *const *extra);
/* Starts cached on a unix socket at path and waits until it accepts. */
bool		 tc_cached_start_unix(struct tc_proc *p, const char *path);
/* Sends SIGTERM; true if cached exited with status 0 within 5 s. */
bool		 tc_cached_stop(struct tc_proc *p);
/* Kills a process with SIGKILL and reaps it. */
void		 tc_proc_kill(struct tc_proc *p);
/* Starts nutcracker (ketama, fnv1a_64, auto eject) in front of n servers. */
bool		 tc_nutcracker_start(struct tc_proc *p,
		    const struct tc_proc *backends, size_t n);
/* Sends SIGTERM; true if the process exited within 5 s. */
bool		 tc_proc_stop(struct tc_proc *p);
/* Removes a process's private directory. */
void		 tc_proc_cleanup(struct tc_proc *p);

/* Returns the monotonic clock in milliseconds. */
uint64_t	 tc_now_ms(void);
/* Sleeps ms milliseconds. */
void		 tc_sleep_ms(unsigned ms);
/* The clock callback for struct tc_clock. */
uint64_t	 tc_clock_read(void *ctx);
/* Moves a tc_clock forward. */
void		 tc_clock_advance(struct tc_clock *clk, uint64_t ms);

/* Fills cfg with defaults tuned for fast, bounded tests. */
void		 tc_config(struct cc_config *cfg, const char *servers);
/* Creates a client or fails the test. */
cc_client	*tc_client(const struct cc_config *cfg);
/* Creates a client for one server list with tc_config settings. */
cc_client	*tc_client_for(const char *servers);

#endif
