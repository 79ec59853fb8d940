/*
 * pool.c -- the connection sets a client's threads share.
 *
 * A libmemcached handle (memcached_st) is not thread-safe, so each call
 * borrows one for its duration.  The pool clones the configured master
 * handle lazily, up to `max` clones; when all are lent out a caller waits
 * on a condition variable (monotonic clock) for up to its deadline.  Each
 * clone keeps its own connections and its own view of failed servers.
 *
 * Data structure: a stack of idle clones.  Locking: `lock` guards every
 * field; it is never held during I/O (cloning does none).
 */
#include "client_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct pool {
	pthread_mutex_t	  lock;
	pthread_cond_t	  freed;	/* signalled when a clone comes back */
	memcached_st	 *master;	/* template, never used for I/O */
	memcached_st	**idle;		/* stack of idle clones */
	unsigned	  nidle;
	unsigned	  created;
	unsigned	  max;
};

/* Creates a pool of at most max clones of master, taking master over. */
struct pool *
client_pool_create(memcached_st *master, unsigned max)
{
	struct pool		*p;
	pthread_condattr_t	 attr;

	if (max == 0 || (p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	if ((p->idle = calloc(max, sizeof *p->idle)) == NULL)
		goto fail;
	if (pthread_mutex_init(&p->lock, NULL) != 0)
		goto fail;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_cond_init(&p->freed, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto fail_mutex;
	}
	pthread_condattr_destroy(&attr);
	p->master = master;
	p->max = max;
	return p;

fail_mutex:
	pthread_mutex_destroy(&p->lock);
fail:
	free(p->idle);
	free(p);
	return NULL;
}

/* Frees the pool, its master and the idle clones (all must be back). */
void
client_pool_destroy(struct pool *p)
{
	if (p == NULL)
		return;
	while (p->nidle > 0)
		memcached_free(p->idle[--p->nidle]);
	memcached_free(p->master);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->idle);
	free(p);
}

/* Computes the absolute monotonic time wait_ms from now. */
static struct timespec
deadline_after(unsigned wait_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Borrows an idle clone, makes a new one, or waits for one to return. */
memcached_st *
client_pool_get(struct pool *p, unsigned wait_ms)
{
	memcached_st	*m = NULL;
	struct timespec	 deadline;
	bool		 have_deadline = false;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->nidle > 0) {
			m = p->idle[--p->nidle];
			break;
		}
		if (p->created < p->max) {
			if ((m = memcached_clone(NULL, p->master)) != NULL)
				p->created++;
			break;
		}
		if (!have_deadline) {
			deadline = deadline_after(wait_ms);
			have_deadline = true;
		}
		if (pthread_cond_timedwait(&p->freed, &p->lock,
		    &deadline) == ETIMEDOUT && p->nidle == 0)
			break;
	}
	pthread_mutex_unlock(&p->lock);
	return m;
}

/* Returns a borrowed clone and wakes one waiter. */
void
client_pool_put(struct pool *p, memcached_st *memc)
{
	pthread_mutex_lock(&p->lock);
	p->idle[p->nidle++] = memc;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}
