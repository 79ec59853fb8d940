/*
 * chase_bench.c -- what this machine's CPUs give a second thread, with
 * no store in the way: the ceiling store_bench's 2-thread / 1-thread
 * ratios are read against (docs/benchmarks.md).  Not a test.
 *
 *   chase_bench [-d secs] [-m MiB] [-H lines]
 *
 * For 1 and 2 threads, three loops, each thread on data of its own
 * unless said:
 *   alu      an LCG step: no memory at all;
 *   private  a pointer chase over a random cycle of MiB (default 256)
 *            of 8-byte nodes, huge pages advised: one cache miss a step,
 *            nothing shared (a store lookup's first load, without the
 *            sharing);
 *   hot      both threads visit random lines of one shared set of
 *            `lines` (default 4096) 64-byte lines and add 1 to a word in
 *            each: what writing the same hot data costs (a hot key set
 *            by one thread and read by the other).
 * Prints the steps a second of each, and 2 threads / 1 thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum mode { M_ALU, M_PRIVATE, M_HOT, NMODES };
static const char *const mode_name[NMODES] = { "alu", "private", "hot" };

struct line {
	_Atomic uint64_t w;
	char		 pad[56];
};

static double		 secs = 2;
static size_t		 nodes = (size_t)256 << 17;	/* 256 MiB */
static size_t		 nhot = 4096;
static struct line	*hot;
static volatile uint64_t sink;

struct job {
	enum mode	 mode;
	unsigned	 seed;
	double		 rate;		/* steps a second, out */
	pthread_barrier_t *start;
};

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* A random cycle through n nodes: a[i] is the node after i. */
static uint64_t *
make_cycle(size_t n, unsigned seed)
{
	uint64_t *a;
	uint32_t *perm;
	size_t i, j;

	a = mmap(NULL, n * 8, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return NULL;
	(void)madvise(a, n * 8, MADV_HUGEPAGE);
	if ((perm = malloc(n * sizeof(*perm))) == NULL) {
		munmap(a, n * 8);
		return NULL;
	}
	for (i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	for (i = n - 1; i > 0; i--) {
		j = (size_t)rand_r(&seed) % (i + 1);
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < n; i++)
		a[perm[i]] = perm[(i + 1) % n];
	free(perm);
	return a;
}

static void *
run(void *arg)
{
	struct job *j = arg;
	uint64_t *a = NULL, p = 0, x = j->seed, n = 0;
	double t0, t;
	int k;

	if (j->mode == M_PRIVATE &&
	    (a = make_cycle(nodes, j->seed)) == NULL) {
		perror("chase_bench: mmap");
		exit(1);
	}
	pthread_barrier_wait(j->start);
	t0 = now();
	do {
		for (k = 0; k < 100000; k++) {
			switch (j->mode) {
			case M_ALU:
				x = x * 6364136223846793005ULL +
				    1442695040888963407ULL;
				break;
			case M_PRIVATE:
				p = a[p];
				break;
			default:
				x = x * 6364136223846793005ULL +
				    1442695040888963407ULL;
				atomic_fetch_add_explicit(
				    &hot[(x >> 33) % nhot].w, 1,
				    memory_order_relaxed);
				break;
			}
		}
		n += 100000;
		t = now();
	} while (t - t0 < secs);
	sink = p + x;
	j->rate = n / (t - t0);
	if (a != NULL)
		munmap(a, nodes * 8);
	return NULL;
}

/* Steps a second of `threads` threads running mode, summed. */
static double
measure(enum mode mode, int threads)
{
	pthread_barrier_t start;
	pthread_t t[2];
	struct job j[2];
	double sum = 0;
	int i;

	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (i = 0; i < threads; i++) {
		j[i] = (struct job){ mode, 7u * (unsigned)i + 1, 0, &start };
		if (pthread_create(&t[i], NULL, run, &j[i]) != 0) {
			perror("chase_bench: pthread_create");
			exit(1);
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += j[i].rate;
	}
	pthread_barrier_destroy(&start);
	return sum;
}

int
main(int argc, char **argv)
{
	int c, m;

	while ((c = getopt(argc, argv, "d:m:H:")) != -1) {
		switch (c) {
		case 'd':
			secs = atof(optarg);
			break;
		case 'm':
			nodes = (size_t)strtoul(optarg, NULL, 10) << 17;
			break;
		case 'H':
			nhot = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: chase_bench [-d secs] "
			    "[-m MiB] [-H lines]\n");
			return 64;
		}
	}
	if (secs <= 0 || nodes < 2 || nodes > UINT32_MAX || nhot == 0) {
		fprintf(stderr, "chase_bench: -d above 0, -m 1-32767, -H "
		    "1 and up\n");
		return 64;
	}
	if ((hot = aligned_alloc(64, nhot * sizeof(*hot))) == NULL) {
		perror("chase_bench: aligned_alloc");
		return 1;
	}
	memset(hot, 0, nhot * sizeof(*hot));
	printf("| loop | 1 thread, M steps/s | 2 threads | ratio |\n"
	    "|---|---|---|---|\n");
	for (m = 0; m < NMODES; m++) {
		double one = measure((enum mode)m, 1);
		double two = measure((enum mode)m, 2);

		printf("| %s | %.1f | %.1f | %.2f |\n", mode_name[m],
		    one / 1e6, two / 1e6, two / one);
		fflush(stdout);
	}
	free(hot);
	return 0;
}
