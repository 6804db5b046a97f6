/*
 * LD_PRELOAD for a test: getaddrinfo() of a host name (not of a numeric
 * address) takes SLOW_GETADDRINFO_MS, like a resolver that is down.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <time.h>

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			struct addrinfo **res)
{
	int			(*real) (const char *, const char *, const struct addrinfo *, struct addrinfo **) =
		(int (*) (const char *, const char *, const struct addrinfo *, struct addrinfo **)) dlsym(RTLD_NEXT, "getaddrinfo");
	unsigned char buf[16];
	const char *ms = getenv("SLOW_GETADDRINFO_MS");

	if (node && ms && inet_pton(AF_INET, node, buf) != 1 && inet_pton(AF_INET6, node, buf) != 1)
	{
		long		n = atol(ms);
		struct timespec ts = {n / 1000, (n % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	return real(node, service, hints, res);
}
