/*
 * auth_fuzz.c: libFuzzer on relay/auth.c, token checking with libjwt. The
 * first byte of an input picks the configuration (byte % 3: HS256, RS256,
 * ES256; bit 2: jwt_issuer "chat-test" and jwt_audience "chat"), the rest
 * is the token. Keys: the test-only ones of test/fuzz/auth_keys/ (the seed
 * tokens of auth_corpus/ are signed with them: make_auth_corpus.py). An
 * accepted token must have a positive user id and a sane exp.
 */
#include "auth.h"
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_KEYS
#error "FUZZ_KEYS: the folder of the test keys (test/fuzz/Makefile sets it)"
#endif

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const algs[] = {"HS256", "RS256", "ES256"};
static char *defaults[5];		/* what config_load set, kept reachable */
static int	loaded = -1;		/* the configuration auth.c holds */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	   *args[] = {"auth_fuzz", "--jwt-secret-file", FUZZ_KEYS "/hs256.secret", NULL};

	/* every other setting at the relay's own default (config.c) */
	if (config_load(3, args) != 0)
		abort();
	defaults[0] = cf_jwt_alg;
	defaults[1] = cf_jwt_secret_file;
	defaults[2] = cf_jwt_public_key_file;
	defaults[3] = cf_jwt_issuer;
	defaults[4] = cf_jwt_audience;
	return 0;
}

/* Make auth.c hold configuration conf (the key is read again only when it changes). */
static void
configure(int conf)
{
	int			alg = conf % 3;
	bool		claims = (conf & 4) != 0;

	cf_jwt_issuer = claims ? "chat-test" : "";
	cf_jwt_audience = claims ? "chat" : "";
	if (alg == loaded)
		return;
	cf_jwt_alg = (char *) algs[alg];
	cf_jwt_secret_file = alg == 0 ? FUZZ_KEYS "/hs256.secret" : "";
	cf_jwt_public_key_file = alg == 1 ? FUZZ_KEYS "/rs256.pub" : alg == 2 ? FUZZ_KEYS "/es256.pub" : "";
	if (auth_load_keys() != 0)
		abort();				/* the test keys must load */
	loaded = alg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_result ar;
	const char *why = NULL;
	char	   *tok;

	if (size == 0)
		return 0;
	configure(data[0] & 7);
	/* exactly the token's bytes, no NUL after them: ASan sees any overread */
	tok = malloc(size - 1 ? size - 1 : 1);
	memcpy(tok, data + 1, size - 1);
	if (auth_verify(tok, size - 1, &ar, &why) == 0)
	{
		if (ar.user_id <= 0 || ar.exp <= 0)
			abort();
	}
	else if (why == NULL || strlen(why) == 0)
		abort();				/* every refusal says why */
	free(tok);
	return 0;
}
