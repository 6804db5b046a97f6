/*
 * peers.c: handshakes in progress per source address (peers.h). Indexed by
 * descriptor; an address's count lives in a small open-addressing table.
 */
#include "peers.h"

#include "alloc.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ADDR_BUCKETS 4096

struct handshake
{
	bool		used;
	uint64_t	addr;			/* a hash of the peer's address */
	int64_t		since;
	struct lws *wsi;			/* NULL until bound */
};

struct addr_count
{
	uint64_t	addr;
	int			n;
};

uint64_t	peers_evicted;

static struct handshake *by_fd;
static int	nfds;
static struct addr_count counts[ADDR_BUCKETS];

/* FNV-1a of the address bytes (not the port); 0 is never an address's. */
static uint64_t
addr_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);
	const unsigned char *p;
	size_t		n;
	uint64_t	h = 14695981039346656037ULL;

	if (getpeername(fd, (struct sockaddr *) &ss, &len) != 0)
		return 1;
	if (ss.ss_family == AF_INET)
		p = (const unsigned char *) &((struct sockaddr_in *) &ss)->sin_addr, n = 4;
	else if (ss.ss_family == AF_INET6)
		p = (const unsigned char *) &((struct sockaddr_in6 *) &ss)->sin6_addr, n = 16;
	else
		return 1;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h ? h : 1;
}

/* The count of addr (made at 0 when absent); NULL when the table is full. */
static struct addr_count *
count_of(uint64_t addr)
{
	for (size_t i = 0; i < ADDR_BUCKETS; i++)
	{
		struct addr_count *a = &counts[(addr + i) % ADDR_BUCKETS];

		if (a->addr == addr)
			return a;
		if (a->addr == 0)
		{
			a->addr = addr;
			return a;
		}
	}
	return NULL;
}

static void
forget(int fd)
{
	struct addr_count *a;

	if (fd < 0 || fd >= nfds || !by_fd[fd].used)
		return;
	a = count_of(by_fd[fd].addr);
	if (a && a->n > 0)
		a->n--;					/* an entry at 0 stays, so probes stay valid (see rebuild) */
	memset(&by_fd[fd], 0, sizeof(by_fd[fd]));
}

/* Close the oldest bound handshake of addr. */
static void
evict_oldest(uint64_t addr)
{
	int			oldest = -1;

	for (int fd = 0; fd < nfds; fd++)
		if (by_fd[fd].used && by_fd[fd].addr == addr && by_fd[fd].wsi &&
			(oldest < 0 || by_fd[fd].since < by_fd[oldest].since))
			oldest = fd;
	if (oldest < 0)
		return;
	lws_set_timeout(by_fd[oldest].wsi, PENDING_TIMEOUT_HOLDING_AH, LWS_TO_KILL_ASYNC);
	forget(oldest);
	peers_evicted++;
}

/* Forget the addresses at 0: count again from the handshakes there are. */
static void
rebuild(void)
{
	memset(counts, 0, sizeof(counts));
	for (int fd = 0; fd < nfds; fd++)
		if (by_fd[fd].used)
		{
			struct addr_count *a = count_of(by_fd[fd].addr);

			if (a)
				a->n++;
		}
}

void
peers_accepted(int fd)
{
	struct addr_count *a;
	uint64_t	addr;

	if (fd < 0)
		return;
	if (fd >= nfds)
	{
		int			n = fd + 1024;

		by_fd = xrealloc(by_fd, (size_t) n * sizeof(*by_fd));
		memset(by_fd + nfds, 0, (size_t) (n - nfds) * sizeof(*by_fd));
		nfds = n;
	}
	forget(fd);					/* a reused descriptor */
	addr = addr_of(fd);
	if ((a = count_of(addr)) == NULL)
	{
		rebuild();
		if ((a = count_of(addr)) == NULL)
			return;				/* 4096 addresses in handshake at once: not counted */
	}
	if (a->n >= cf_max_handshakes_per_address)
		evict_oldest(addr);
	a->n++;
	by_fd[fd] = (struct handshake) {true, addr, lws_now_usecs(), NULL};
}

void
peers_bound(struct lws *wsi)
{
	int			fd = lws_get_socket_fd(wsi);

	if (fd >= 0 && fd < nfds && by_fd[fd].used && by_fd[fd].wsi == NULL)
		by_fd[fd].wsi = wsi;
}

void
peers_done(struct lws *wsi)
{
	int			fd = lws_get_socket_fd(wsi);

	if (fd >= 0 && fd < nfds && by_fd[fd].used && (by_fd[fd].wsi == wsi || by_fd[fd].wsi == NULL))
		forget(fd);
}

void
peers_free(void)
{
	free(by_fd);
	by_fd = NULL;
	nfds = 0;
	memset(counts, 0, sizeof(counts));
}
