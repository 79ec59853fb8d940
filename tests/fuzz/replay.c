/*
 * replay.c -- a main() for the fuzz targets without libFuzzer: runs every
 * file named on the command line, or found in a directory named there,
 * through LLVMFuzzerTestOneInput once.  `make check` uses it to replay the
 * seed and regression corpora under the normal and the sanitizer builds.
 *
 * Exit status: 0 when every input ran (a failed check aborts), 1 when a
 * path could not be read or no input was found.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads a whole file into a heap buffer of exactly its size; NULL on
 * error. */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "rb");
	uint8_t	*buf = NULL;
	long	 n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc(n > 0 ? (size_t)n : 1)) != NULL &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		*len = (size_t)n;
	fclose(f);
	return buf;
}

/* Runs one file through the target; returns 0 or -1. */
static int
run_file(const char *path)
{
	size_t	 len = 0;
	uint8_t	*buf = read_file(path, &len);

	if (buf == NULL) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

/* Runs every regular file of a directory; returns the count or -1. */
static int
run_dir(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*e;
	char		 path[4096];
	int		 n = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: cannot open %s\n", dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) != 0) {
			n = -1;
			break;
		}
		n++;
	}
	closedir(d);
	return n;
}

/* Replays every file and directory named on the command line. */
int
main(int argc, char **argv)
{
	int total = 0;

	for (int i = 1; i < argc; i++) {
		struct stat	st;
		int		n;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: no such path %s\n", argv[i]);
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) :
		    run_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	printf("replay: %d inputs ran\n", total);
	return total > 0 ? 0 : 1;
}
