/* Load generator for coved (bench/coved-load.sh): N concurrent clients send GET requests
 * over a Unix socket for a bounded time; prints requests, failures, p50/p99 latency.
 * usage: coved-load SOCKET CLIENTS SECONDS PATH [PATH...] */
#include "api/client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES_PER_CLIENT 200000

struct client {
	pthread_t t;
	const char *sock;
	char **paths;
	int npaths;
	double deadline;
	double *lat;
	size_t n, failures;
	char first_error[600];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct client *c = arg;
	for (size_t i = 0; now() < c->deadline && c->n < MAX_SAMPLES_PER_CLIENT; i++) {
		struct api_client_resp r = {0};
		struct cove_err err = {0};
		double t0 = now();
		int rc = api_client_request(c->sock, "GET", c->paths[i % (size_t)c->npaths], NULL,
					    0, 10000, &r, &err);
		double dt = now() - t0;
		if (rc || r.status != 200) {
			if (!c->failures)
				snprintf(c->first_error, sizeof(c->first_error), "%s",
					 rc ? err.msg : "HTTP status not 200");
			c->failures++;
		} else {
			c->lat[c->n++] = dt;
		}
		api_client_resp_free(&r);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: coved-load SOCKET CLIENTS SECONDS PATH [PATH...]\n");
		return 2;
	}
	int nc = atoi(argv[2]);
	double secs = atof(argv[3]);
	if (nc < 1 || nc > 2000 || secs <= 0 || secs > 120) {
		fprintf(stderr, "coved-load: CLIENTS 1..2000, SECONDS up to 120\n");
		return 2;
	}
	struct client *cs = calloc((size_t)nc, sizeof(*cs));
	double start = now();
	for (int i = 0; i < nc; i++) {
		cs[i].sock = argv[1];
		cs[i].paths = argv + 4;
		cs[i].npaths = argc - 4;
		cs[i].deadline = start + secs;
		cs[i].lat = malloc(sizeof(double) * MAX_SAMPLES_PER_CLIENT);
		pthread_create(&cs[i].t, NULL, run, &cs[i]);
	}
	size_t total = 0, failures = 0;
	const char *err = NULL;
	for (int i = 0; i < nc; i++) {
		pthread_join(cs[i].t, NULL);
		total += cs[i].n;
		failures += cs[i].failures;
		if (cs[i].failures && !err)
			err = cs[i].first_error;
	}
	double elapsed = now() - start;
	double *all = malloc(sizeof(double) * (total ? total : 1));
	size_t k = 0;
	for (int i = 0; i < nc; i++) {
		memcpy(all + k, cs[i].lat, cs[i].n * sizeof(double));
		k += cs[i].n;
	}
	qsort(all, total, sizeof(double), cmp);
	double p50 = total ? all[total / 2] : 0,
	       p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
	printf("clients=%d seconds=%.1f requests=%zu failures=%zu rps=%.0f p50_ms=%.2f "
	       "p99_ms=%.2f\n",
	       nc, elapsed, total, failures, (double)total / elapsed, p50 * 1000, p99 * 1000);
	if (err)
		printf("first failure: %s\n", err);
	for (int i = 0; i < nc; i++)
		free(cs[i].lat);
	free(cs);
	free(all);
	return failures ? 1 : 0;
}
