/*
 * apns_token.h: the APNs provider token (apns_token.c): an ES256 JWT
 * {"alg":"ES256","kid":key id}.{"iss":team id,"iat":now} signed with the
 * .p8 auth key, reused for refresh_s seconds. The clock is the caller's
 * (now), so the test can move it.
 */
#ifndef NOTIFY_APNS_TOKEN_H
#define NOTIFY_APNS_TOKEN_H

#include <stdbool.h>
#include <time.h>

/* APNs refuses new tokens signed more often than this (TooManyProviderTokenUpdates). */
#define APNS_TOKEN_MIN_AGE 1200

/*
 * Load the key (PKCS#8 EC P-256 PEM) with its ids; refresh_s is clamped to
 * APNS_TOKEN_MIN_AGE..3500. 0, or -1 (logged) leaving what was loaded.
 */
int			apns_token_load(const char *p8_file, const char *key_id, const char *team_id, int refresh_s);
bool		apns_token_loaded(void);

/* The token to send at now (signed anew when due); NULL when none can be made. */
const char *apns_token_get(time_t now);

/* APNs said ExpiredProviderToken to token at now: sign anew when allowed (an older token's: nothing). */
void		apns_token_expired(const char *token, time_t now);

void		apns_token_free(void);

#endif
