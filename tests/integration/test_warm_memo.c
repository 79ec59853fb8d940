/*
 * test_warm_memo.c -- a libcachedclient caller for test_warm.py: what a
 * memoized application (or any client routing by the library's
 * consistent hashing) finds after cached-warm ran.
 *
 *   test_warm_memo memo SERVERS NS FN TTL [ARG ...]
 *	cc_memoize with a compute callback that yields "COMPUTED"; prints
 *	"hit\n" or "miss\n", then the value.  An ARG "hex:..." is decoded,
 *	so binary arguments can be given.
 *   test_warm_memo get SERVERS < keys
 *	cc_get of every key read from stdin (one a line); prints
 *	"KEY FLAGS LEN" or "KEY MISSING" for each.
 *
 * Exits 0, or 2 on a usage or library error.  Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachedclient.h"

#define MAX_ARGS	64

/* The compute callback: says it ran, returns "COMPUTED". */
static cc_compute
compute(void *ctx, const cc_arg *args, size_t nargs, void **value,
    size_t *len)
{
	(void)ctx;
	(void)args;
	(void)nargs;
	if ((*value = strdup("COMPUTED")) == NULL)
		return CC_COMPUTE_ERROR;
	*len = 8;
	return CC_COMPUTE_OK;
}

/* Decodes "hex:..." in place; returns the argument. */
static cc_arg
decode_arg(char *s)
{
	size_t		 i, n;
	unsigned	 byte;

	if (strncmp(s, "hex:", 4) != 0)
		return (cc_arg){ s, strlen(s) };
	n = strlen(s + 4) / 2;
	for (i = 0; i < n; i++) {
		if (sscanf(s + 4 + 2 * i, "%2x", &byte) != 1)
			break;
		s[i] = (char)byte;
	}
	return (cc_arg){ s, i };
}

/* Runs one memoized call and prints what it found. */
static int
memo(cc_client *c, int argc, char **argv)
{
	struct cc_memo_result	 res;
	cc_arg			 args[MAX_ARGS];
	size_t			 n = 0;
	int			 i;
	cc_status		 st;

	if (argc < 3 || argc - 3 > MAX_ARGS)
		return 2;
	for (i = 3; i < argc; i++)
		args[n++] = decode_arg(argv[i]);
	st = cc_memoize(c, argv[0], argv[1], args, n,
	    (uint32_t)strtoul(argv[2], NULL, 10), compute, NULL, &res);
	if (st != CC_OK) {
		fprintf(stderr, "memoize: %s\n", cc_errmsg());
		return 2;
	}
	printf("%s\n", res.from_cache ? "hit" : "miss");
	fwrite(res.value, 1, res.len, stdout);
	free(res.value);
	return 0;
}

/* Gets every key named on stdin. */
static int
get(cc_client *c)
{
	char		 key[CC_KEY_MAX + 2];
	void		*v;
	size_t		 len;
	uint32_t	 flags;
	cc_status	 st;

	while (fgets(key, sizeof key, stdin) != NULL) {
		key[strcspn(key, "\n")] = '\0';
		st = cc_get(c, key, &v, &len, &flags);
		if (st == CC_OK) {
			printf("%s %lu %zu\n", key, (unsigned long)flags, len);
			free(v);
		} else if (st == CC_NOT_FOUND)
			printf("%s MISSING\n", key);
		else {
			fprintf(stderr, "get %s: %s\n", key, cc_errmsg());
			return 2;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct cc_config	 cfg;
	cc_client		*c;
	int			 rc;

	if (argc < 3) {
		fprintf(stderr, "usage: test_warm_memo memo|get SERVERS ...\n");
		return 2;
	}
	cc_config_init(&cfg);
	cfg.servers = argv[2];
	cfg.io_timeout_ms = 2000;
	if (cc_client_create(&cfg, &c) != CC_OK) {
		fprintf(stderr, "client: %s\n", cc_errmsg());
		return 2;
	}
	if (strcmp(argv[1], "memo") == 0)
		rc = memo(c, argc - 3, argv + 3);
	else if (strcmp(argv[1], "get") == 0)
		rc = get(c);
	else
		rc = 2;
	cc_client_destroy(c);
	return rc;
}
