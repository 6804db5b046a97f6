/*
 * sign.h: Standard Webhooks signatures (https://www.standardwebhooks.com):
 * base64 of HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>",
 * keyed with the base64-decoded part of a "whsec_<base64>" secret.
 */
#ifndef NOTIFY_SIGN_H
#define NOTIFY_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Longest key taken (the extension allows 24 to 64 bytes). */
#define SIGN_MAX_KEY 64

/*
 * The webhook-signature header value for secrets (space separated, newest
 * first): "v1,<sig>" for each, space separated, in their order. NULL (and
 * nothing allocated) when a secret is not whsec_ + base64 of 1 to
 * SIGN_MAX_KEY bytes, or there is none. The caller frees the result.
 */
char	   *sign_webhook(const char *secrets, const char *msg_id, int64_t timestamp,
						 const char *body, size_t body_len);


/* Free what the signer keeps (the HMAC implementation). */
void		sign_free(void);

#endif
