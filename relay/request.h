/*
 * request.h: client requests (request.c) and the table of request types
 * (request_types.c).
 */
#ifndef RELAY_REQUEST_H
#define RELAY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/* How a statement's result becomes the `result` of the answer. */
enum result_kind
{
	RK_VALUE,					/* the one value (jsonb, number), or null */
	RK_ROWS,					/* every row's value, as an array */
	RK_VOID						/* null */
};

enum param_kind
{
	P_INT,						/* a JSON integer */
	P_STR,						/* a string of at most max bytes, no NUL */
	P_BOOL,
	P_INTS,						/* an array of at most max integers */
	P_OBJ						/* a JSON object of at most max bytes (compact), as its JSON text */
};

#define REQUEST_MAX_PARAMS 5	/* and the user id: DB_MAX_PARAMS */

struct request_param
{
	enum param_kind kind;
	const char *name;			/* NULL: no more parameters */
	bool		required;
	size_t		max;
};

struct request_type
{
	const char *name;
	const char *sql;
	enum result_kind result;
	struct request_param params[REQUEST_MAX_PARAMS];
	/*
	 * A successful result's second column holds user ids (or NULL) whose
	 * presence the connection follows from then on (subscribe.c).
	 */
	bool		subscribes;
};

/* The table, ended by a row whose name is NULL. */
extern const struct request_type request_types[];

/* Register every request type's statement with the database client. */
void		request_init(void);

/* One whole client message. */
void		request_message(struct conn *c, const char *data, size_t len, bool binary, bool too_large);

/* A connection closes: its requests are still answered by the database, to nobody. */
void		request_detach_all(struct conn *c);

#define REQUEST_ERROR_CODES 7

/* Metric names of the error codes (NULL past the last). */
const char *request_error_name(int i);

/* Refill a token bucket (rate per second, burst) and take a token; false when empty. */
bool		bucket_take(double *tokens, int64_t *refill_us, double rate, int burst);

#endif
