/*
 * warm_queue.c -- the producer/consumer queue between the thread that
 * reads the manifest and the -j workers that run commands and store.
 *
 * Data structure: a ring of cap job pointers.  The producer waits while
 * it is full, so at most cap jobs (plus one per worker in hand) exist at
 * once whatever the size of the manifest.  Workers wait while it is
 * empty and return NULL once it is closed and drained.
 *
 * Locking: one mutex guards the ring, the closed flag and the counts;
 * not_full wakes the producer, not_empty the workers.  No job is touched
 * under the lock, only its pointer.
 */
#include "config.h"

#include "warm.h"

#include <pthread.h>
#include <stdlib.h>

struct wq {
	pthread_mutex_t	 lock;
	pthread_cond_t	 not_full;
	pthread_cond_t	 not_empty;
	void		**ring;
	size_t		 cap, head, count;
	bool		 closed;
	pthread_t	*threads;
	unsigned	 nthreads;
};

/* Creates a queue of cap slots. */
struct wq *
warm_queue_create(size_t cap)
{
	struct wq *q = calloc(1, sizeof *q);

	if (q == NULL)
		return NULL;
	if (cap == 0)
		cap = 1;
	if ((q->ring = calloc(cap, sizeof *q->ring)) == NULL) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_full, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	return q;
}

/* Frees the queue. */
void
warm_queue_destroy(struct wq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	free(q->threads);
	free(q->ring);
	free(q);
}

/* Queues a job, waiting for room. */
void
warm_queue_push(struct wq *q, void *job)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->ring[(q->head + q->count) % q->cap] = job;
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

/* Takes the oldest job; NULL once closed and empty. */
void *
warm_queue_pop(struct wq *q)
{
	void *job = NULL;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->count > 0) {
		job = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return job;
}

/* Marks the end of the jobs and wakes every idle worker. */
void
warm_queue_close(struct wq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

/* Starts n workers. */
unsigned
warm_queue_start(struct wq *q, unsigned n, void *(*fn)(void *), void *arg)
{
	unsigned i;

	if ((q->threads = calloc(n, sizeof *q->threads)) == NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (pthread_create(&q->threads[i], NULL, fn, arg) != 0)
			break;
	q->nthreads = i;
	return i;
}

/* Joins every worker. */
void
warm_queue_join(struct wq *q)
{
	unsigned i;

	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	q->nthreads = 0;
}
