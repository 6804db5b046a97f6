/*
 * event.h: events from LISTEN chat_events to the clients (event.c).
 */
#ifndef RELAY_EVENT_H
#define RELAY_EVENT_H

#include <stddef.h>

/* A NOTIFY payload from chat_events (the database client's notify hook). */
void		event_notify(const char *payload, size_t len);
/* Tell every client to catch up. */
void		event_resync(const char *reason);
/* Drop every event waiting behind a fetch. */
void		event_free(void);
/* At exit: event_free and the parser's memory. */
void		event_shutdown(void);

#endif
