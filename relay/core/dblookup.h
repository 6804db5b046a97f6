/*
 * dblookup.h: the database's host names looked up in a thread, so that
 * libpq, given addresses, never blocks the event loop on a resolver.
 */
#ifndef CORE_DBLOOKUP_H
#define CORE_DBLOOKUP_H

#include <stdbool.h>

struct db_lookup;

/*
 * Start looking up the host names of a connection string; the address
 * hung at port hung_port (if not NULL or "") is put last. NULL when there
 * is nothing to look up (socket directory, numeric addresses, hostaddr
 * given) or, with *error set, when the lookup could not start. The thread
 * calls wake() when it is done, maybe after db_lookup_free: it must be safe
 * from any thread at any time.
 */
struct db_lookup *db_lookup_start(const char *conninfo, const char *hung, const char *hung_port,
								   void (*wake) (void), const char **error);

/* Has it finished? Then: NULL or why no address was found. */
bool		db_lookup_done(struct db_lookup *l);
const char *db_lookup_error(struct db_lookup *l);

/*
 * The lists to give libpq after the connection string: host (each name
 * once per address), hostaddr, and port (NULL unless the string had a list
 * of ports). Valid until db_lookup_free.
 */
void		db_lookup_lists(struct db_lookup *l, const char **host, const char **hostaddr,
							const char **port);

/* Free it, or let the thread free it when it is done. */
void		db_lookup_free(struct db_lookup *l);

#endif
