/* Serves a VM API socket backed by the VMM test double, for curl-driven tests.
 * usage: fc-api-double SOCKET [OPLOG]; runs until SIGTERM/SIGINT. */
#include "api/fc_api.h"
#include "api/fc_double.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fc-api-double SOCKET [OPLOG]\n");
		return 2;
	}
	static struct fc_double d;
	fc_double_init(&d);
	if (argc > 2) {
		d.log = fopen(argv[2], "w");
		if (!d.log) {
			perror(argv[2]);
			return 1;
		}
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct fc_api_server *s;
	int rc = fc_api_serve(argv[1], &fc_double_ops, &d, &s);
	if (rc) {
		fprintf(stderr, "fc-api-double: cannot serve on %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	int sig;
	sigwait(&set, &sig);
	fc_api_stop(s);
	if (d.log)
		fclose(d.log);
	return 0;
}
