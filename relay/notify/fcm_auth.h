/*
 * fcm_auth.h: FCM's service account and its OAuth2 access token
 * (fcm_auth.c): one fetch at a time, the pushes waiting for it queued.
 */
#ifndef NOTIFY_FCM_AUTH_H
#define NOTIFY_FCM_AUTH_H

#include <stdbool.h>

/* A token, or NULL and a short error (no secret in it). */
typedef void (*fcm_token_cb) (void *arg, const char *token, const char *error);

/* Load (or on SIGHUP reload) the service-account JSON: 0, or -1 (logged, the old kept). */
int			fcm_auth_load(const char *path);
bool		fcm_auth_loaded(void);
const char *fcm_auth_project(void);

/*
 * The cached token if it has 5 min left, else NULL and cb(arg, …) is called
 * later, once (never from inside this call) — unless fcm_auth_cancel(arg).
 */
const char *fcm_auth_token(fcm_token_cb cb, void *arg);
void		fcm_auth_cancel(void *arg);

/* FCM answered 401 to token: fetch a new one next time. */
void		fcm_auth_invalidate(const char *token);

void		fcm_auth_free(void);

#endif
