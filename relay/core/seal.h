/*
 * seal.h: opening the sealed payloads of chat_events (docs/security.md).
 *
 * A payload is c1.<key id>.<base64(nonce[12] || ciphertext || tag[16])>,
 * AES-256-GCM with "c1.<key id>." as associated data; bytes 4..11 of the
 * nonce are the payload's number, big-endian. A keyring holds the keys a
 * listener has loaded and the numbers it has accepted: each number once,
 * none at or below the floor set when it started listening, none older
 * than the window behind the newest.
 */
#ifndef CORE_SEAL_H
#define CORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_MAX_KEYS 16
/* numbers accepted out of order behind the newest (direct mode reorders a few) */
#define SEAL_WINDOW 4096

enum seal_result
{
	SEAL_OK,
	SEAL_MALFORMED,				/* not c1.<id>.<base64> of a possible length */
	SEAL_UNKNOWN_KEY,			/* a key id the ring does not hold (yet) */
	SEAL_FORGED,				/* does not authenticate under its key */
	SEAL_REPLAYED,				/* authentic, but its number was accepted or is too old */
	SEAL_NRESULTS
};

struct seal_key
{
	int			id;
	unsigned char key[SEAL_KEY_LEN];
};

struct seal_ring
{
	struct seal_key keys[SEAL_MAX_KEYS];
	int			nkeys;
	uint64_t	floor;			/* nothing at or below it is accepted */
	uint64_t	newest;			/* the highest number accepted, or floor */
	uint64_t	seen[SEAL_WINDOW / 64]; /* bit (n % SEAL_WINDOW): number n accepted */
	void	   *ctx;			/* the OpenSSL cipher context, made once */
	const struct seal_key *ctx_key; /* the key ctx is keyed with, or NULL */
	unsigned char *buf;			/* the opened payload, reused */
	size_t		buf_size;
};

/* What each result is called in metrics and logs. */
extern const char *const seal_result_names[SEAL_NRESULTS];

/* Replace the keys (at most SEAL_MAX_KEYS; the accepted numbers stay). */
void		seal_ring_set_keys(struct seal_ring *r, const struct seal_key *keys, int n);
/* Start over from floor: a new LISTEN sees nothing numbered at or below it. */
void		seal_ring_reset(struct seal_ring *r, uint64_t floor);
bool		seal_ring_has_key(const struct seal_ring *r, int id);
void		seal_ring_free(struct seal_ring *r);

/*
 * Open payload. On SEAL_OK *plain (NUL-terminated, owned by the ring until
 * the next call) and *plain_len hold the payload; *key_id is set whenever
 * the header could be read.
 */
enum seal_result seal_open(struct seal_ring *r, const char *payload, size_t len,
						   const char **plain, size_t *plain_len, int *key_id);

/* Seal plain under key with number seq into out (tests, fuzzing); its length, or -1. */
int			seal_seal(const struct seal_key *key, uint64_t seq, const char *plain, size_t len,
					  char *out, size_t out_size);

#endif
