/*
 * dblookup.c: the database's host names looked up off the event loop.
 *
 * libpq resolves a host name with a blocking getaddrinfo() inside
 * PQconnectPoll, which would stall every client for as long as the
 * resolver takes (seconds when DNS is down, on every reconnect). So the
 * names of the connection string are looked up in a short-lived thread,
 * and libpq is given their addresses as hostaddr, each next to its name
 * (host stays what certificates and .pgpass are checked against). Socket
 * directories and numeric addresses need no lookup; a connection string
 * that already sets hostaddr is left alone.
 */
#include "alloc.h"
#include "dblookup.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum
{
	L_RUNNING,
	L_DONE,
	L_ABANDONED
};

struct db_lookup
{
	_Atomic int state;
	int			n;				/* host entries */
	char	  **hosts;			/* as written */
	char	  **ports;			/* NULL: libpq's own port applies to all */
	bool	   *is_name;
	/* results, written by the thread */
	char	   *host_list;
	char	   *hostaddr_list;
	char	   *port_list;
	char		error[256];
	char		hung[INET6_ADDRSTRLEN];	/* the address that hung last time */
	char		hung_port[16];	/* and its port ("": any) */
	void		(*wake) (void); /* called by the thread when it is done */
};

/* Split a comma-separated list (libpq's syntax, no escapes needed here). */
static char **
split(const char *s, int *n)
{
	char	  **v = NULL;
	const char *p = s;

	*n = 0;
	for (;;)
	{
		size_t		len = strcspn(p, ",");

		v = xrealloc(v, sizeof(char *) * (size_t) (*n + 1));
		v[(*n)++] = xstrndup(p, len);
		if (p[len] == '\0')
			return v;
		p += len + 1;
	}
}

static void
free_list(char **v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void
lookup_free(struct db_lookup *l)
{
	free_list(l->hosts, l->n);
	free_list(l->ports, l->n);
	free(l->is_name);
	free(l->host_list);
	free(l->hostaddr_list);
	free(l->port_list);
	free(l);
}

/* A host entry for a socket directory (or the default one). */
static bool
is_socket(const char *h)
{
	return h[0] == '\0' || h[0] == '/' || h[0] == '@';
}

/* A host entry that is a name to look up (not a socket path or address). */
static bool
is_host_name(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return !is_socket(h) && inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1;
}

/*
 * Append item (the index-th) to a growing comma-separated list. By index,
 * not by length: an empty first item still needs its comma.
 */
static void
append(char **list, size_t *len, int index, const char *item)
{
	size_t		add = strlen(item) + 1;

	*list = xrealloc(*list, *len + add + 1);
	if (index > 0)
		(*list)[(*len)++] = ',';
	memcpy(*list + *len, item, add);
	*len += add - 1;
}

/* One host entry of the lists to give libpq. */
struct entry
{
	const char *host;
	char		addr[INET6_ADDRSTRLEN];	/* "" for a socket or an address */
	const char *port;
};

/*
 * The thread: look every name up, then write the three lists, an address
 * that hung the last attempt put last (libpq has no per-address timeout:
 * starting from it again would hang again).
 */
static void *
run(void *arg)
{
	struct db_lookup *l = arg;
	struct entry *e = NULL;
	int			n = 0;
	size_t		hl = 0,
				al = 0,
				pl = 0;

	for (int i = 0; i < l->n; i++)
	{
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;
		int			rc;

		if (!l->is_name[i])
		{
			/* an address is its own hostaddr; a socket directory has none */
			e = xrealloc(e, sizeof(*e) * (size_t) (n + 1));
			e[n] = (struct entry) {l->hosts[i], "", l->ports ? l->ports[i] : NULL};
			if (!is_socket(l->hosts[i]))
				snprintf(e[n].addr, sizeof(e[n].addr), "%s", l->hosts[i]);
			n++;
			continue;
		}
		rc = getaddrinfo(l->hosts[i], NULL, &hints, &res);
		if (rc != 0)
		{
			snprintf(l->error, sizeof(l->error), "could not look up host \"%s\": %s",
					 l->hosts[i], gai_strerror(rc));
			continue;
		}
		for (struct addrinfo *a = res; a; a = a->ai_next)
		{
			const void *src = a->ai_family == AF_INET ?
				(const void *) &((struct sockaddr_in *) a->ai_addr)->sin_addr :
				(const void *) &((struct sockaddr_in6 *) a->ai_addr)->sin6_addr;

			if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
				continue;
			e = xrealloc(e, sizeof(*e) * (size_t) (n + 1));
			e[n] = (struct entry) {l->hosts[i], "", l->ports ? l->ports[i] : NULL};
			if (inet_ntop(a->ai_family, src, e[n].addr, sizeof(e[n].addr)) != NULL)
				n++;
		}
		freeaddrinfo(res);
	}
	for (int last = 0, k = 0; last < 2; last++)
		for (int i = 0; i < n; i++)
		{
			bool		hung = l->hung[0] && !strcmp(e[i].addr, l->hung) &&
				(!l->hung_port[0] || !e[i].port || !strcmp(e[i].port, l->hung_port));

			if (last != hung)
				continue;
			append(&l->host_list, &hl, k, e[i].host);
			append(&l->hostaddr_list, &al, k, e[i].addr);
			if (e[i].port)
				append(&l->port_list, &pl, k, e[i].port);
			k++;
		}
	free(e);
	if (n > 0)
		l->error[0] = '\0';		/* some host is left to try */
	{
		/* once it is DONE the loop may free l: nothing of it is read after */
		void		(*wake) (void) = l->wake;

		if (atomic_exchange(&l->state, L_DONE) == L_ABANDONED)
			lookup_free(l);
		else
			wake();
	}
	return NULL;
}

struct db_lookup *
db_lookup_start(const char *conninfo, const char *hung, const char *hung_port,
				void (*wake) (void), const char **error)
{
	static char err[256];
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL,
			   *hostaddr = NULL,
			   *port = NULL;
	struct db_lookup *l;
	bool		any = false;
	int			np = 0;
	pthread_t	t;
	pthread_attr_t attr;

	*error = NULL;
	if (opts == NULL)
		return NULL;			/* libpq will say what is wrong with it */
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "hostaddr"))
			hostaddr = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
	}
	if (!host || !*host)
		host = getenv("PGHOST");
	if (!port || !*port)
		port = getenv("PGPORT");
	if ((hostaddr && *hostaddr) || !host || !*host)
	{
		PQconninfoFree(opts);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->hosts = split(host, &l->n);
	l->is_name = xcalloc((size_t) l->n, sizeof(bool));
	for (int i = 0; i < l->n; i++)
		any |= l->is_name[i] = is_host_name(l->hosts[i]);
	/* a list of ports goes with the list of hosts, so it grows with it */
	if (port && strchr(port, ','))
	{
		l->ports = split(port, &np);
		if (np != l->n)
		{
			/* libpq will refuse the mismatch itself */
			free_list(l->ports, np);
			l->ports = NULL;
			PQconninfoFree(opts);
			lookup_free(l);
			return NULL;
		}
	}
	PQconninfoFree(opts);
	/* nothing to look up, unless a list is to be reordered after a hang */
	if (!any && !(hung && *hung && l->n > 1))
	{
		lookup_free(l);
		return NULL;
	}
	snprintf(l->hung, sizeof(l->hung), "%s", hung ? hung : "");
	snprintf(l->hung_port, sizeof(l->hung_port), "%s", hung_port ? hung_port : "");
	atomic_init(&l->state, L_RUNNING);
	l->wake = wake;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, run, l) != 0)
	{
		snprintf(err, sizeof(err), "cannot start a thread to look the database host up");
		*error = err;
		pthread_attr_destroy(&attr);
		lookup_free(l);
		return NULL;
	}
	pthread_attr_destroy(&attr);
	return l;
}

bool
db_lookup_done(struct db_lookup *l)
{
	return atomic_load(&l->state) == L_DONE;
}

const char *
db_lookup_error(struct db_lookup *l)
{
	if (l->host_list)
		return NULL;
	return l->error[0] ? l->error : "no address found for the database host";
}

void
db_lookup_lists(struct db_lookup *l, const char **host, const char **hostaddr, const char **port)
{
	*host = l->host_list;
	*hostaddr = l->hostaddr_list;
	*port = l->port_list;
}

void
db_lookup_free(struct db_lookup *l)
{
	if (l && atomic_exchange(&l->state, L_ABANDONED) == L_DONE)
		lookup_free(l);
}
