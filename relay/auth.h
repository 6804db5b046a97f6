/*
 * auth.h: JWT verification (libjwt) with the algorithm and key fixed by
 * configuration.
 */
#ifndef RELAY_AUTH_H
#define RELAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct auth_result
{
	int64_t		user_id;		/* from sub */
	int64_t		exp;			/* unix seconds */
};

int			auth_load_keys(void);
int			auth_verify(const char *token, size_t len, struct auth_result *out, const char **why);
void		auth_free(void);

#endif
