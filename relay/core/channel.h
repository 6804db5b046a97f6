/*
 * channel.h: the sealed channel chat_events for any listening daemon. It
 * loads the keys on the LISTEN connection before LISTEN (so the floor of
 * numbers is known before the first payload), opens every payload
 * (seal.h) and hands the daemon only what opened. A payload under a key it
 * does not hold waits, with everything after it, while the keys are loaded
 * again; the keys are also refreshed every refresh_s seconds, so that a
 * rotated key is known before the extension seals with it.
 */
#ifndef CORE_CHANNEL_H
#define CORE_CHANNEL_H

#include "seal.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct channel_hooks
{
	void		(*deliver) (const char *plain, size_t len);	/* an opened payload */
	void		(*lost) (const char *reason);	/* payloads were dropped: catch up */
};

struct channel_stats
{
	uint64_t	opened;
	uint64_t	refused[SEAL_NRESULTS];
	uint64_t	key_loads;
	int			keys;			/* held now */
};

extern struct channel_stats channel_stats;

/* Before db_start: registers the keyring statement. */
void		channel_init(const struct channel_hooks *hooks, int refresh_s);
/* For db_settings.listen_setup_sql and db_hooks.listen_setup / notify. */
extern const char channel_setup_sql[];
bool		channel_setup(PGresult *res);
void		channel_notify(const char *payload, size_t len);
void		channel_shutdown(void);

#endif
