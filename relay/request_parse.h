/*
 * request_parse.h: a client frame taken apart without a connection or a
 * database (request_parse.c): JSON object, id, type, then the parameters
 * of its request_types[] row as the statement's texts. request.c answers
 * what is wrong; test/fuzz/request_fuzz.c feeds it arbitrary bytes.
 */
#ifndef RELAY_REQUEST_PARSE_H
#define RELAY_REQUEST_PARSE_H

#include "request.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The protocol's error codes (a closed set: docs/protocol.md). */
enum err_code
{
	E_UNAUTHORIZED,
	E_FORBIDDEN,
	E_INVALID,
	E_RATE_LIMITED,
	E_TOO_LARGE,
	E_UNAVAILABLE,
	E_INTERNAL
};

/* What is wrong with a frame: code, stable reason, words for a person. */
struct request_error
{
	enum err_code code;
	const char *reason;
	const char *message;
};

/* A frame taken apart. */
struct parsed_request
{
	json_t	   *msg;			/* the JSON, or NULL (too large, binary, not JSON) */
	bool		typing;			/* type is "typing": its own rate bucket */
	char	   *id;				/* the id as JSON text (malloc'd), once known */
	const char *type;			/* inside msg, once known */
};

/*
 * Take a whole client message apart. 0 with out->id and out->type set, or
 * -1 with *err (and out->id set when the frame had a usable id). Either
 * way out->msg and out->typing are set: the caller takes a rate token
 * first, then answers. request_parsed_free releases it.
 */
int			request_parse(const char *data, size_t len, bool binary, bool too_large,
						  struct parsed_request *out, struct request_error *err);
void		request_parsed_free(struct parsed_request *p);

/* The index of a request type's row in request_types[], or -1. */
int			request_type_index(const char *name);

/*
 * The texts of row t's parameters from msg into out[0..] (NULL: SQL NULL;
 * malloc'd, the caller frees every one set, also on error), their number
 * in *n. NULL, or what is wrong (reason bad_param).
 */
const char *request_params(const struct request_type *t, json_t *msg, char **out, int *n);

#endif
