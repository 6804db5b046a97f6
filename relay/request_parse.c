/*
 * request_parse.c: a client frame taken apart, with nothing but bytes in
 * and the parsed request or what is wrong with it out (no connection, no
 * database: test/fuzz/request_fuzz.c reaches every line of it).
 */
#include "request_parse.h"

#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
refuse(struct request_error *err, enum err_code code, const char *reason, const char *message)
{
	err->code = code;
	err->reason = reason;
	err->message = message;
	return -1;
}

/*
 * The checks every message passes before its type matters: JSON object,
 * id, type.
 */
int
request_parse(const char *data, size_t len, bool binary, bool too_large,
			  struct parsed_request *out, struct request_error *err)
{
	json_t	   *typev,
			   *idv;

	memset(out, 0, sizeof(*out));
	out->msg = too_large || binary ? NULL : json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	typev = json_object_get(out->msg, "type");
	out->typing = json_is_string(typev) && strcmp(json_string_value(typev), "typing") == 0;
	if (too_large)
		return refuse(err, E_TOO_LARGE, "frame_too_large", "message too large");
	if (binary)
		return refuse(err, E_INVALID, "bad_frame", "binary frames are not supported; send JSON text");
	if (!json_is_object(out->msg))
		return refuse(err, E_INVALID, "bad_frame", "a request is one JSON object");
	idv = json_object_get(out->msg, "id");
	if (idv && !(json_is_integer(idv) || (json_is_string(idv) && json_string_length(idv) <= 128)))
		return refuse(err, E_INVALID, "bad_id", "id must be an integer or a string of at most 128 bytes");
	out->id = idv ? json_dumps(idv, JSON_ENCODE_ANY) : xstrdup("null");
	if (!json_is_string(typev))
		return refuse(err, E_INVALID, "bad_type", "type must be a string");
	out->type = json_string_value(typev);
	return 0;
}

void
request_parsed_free(struct parsed_request *p)
{
	free(p->id);
	json_decref(p->msg);
	memset(p, 0, sizeof(*p));
}

int
request_type_index(const char *name)
{
	for (int i = 0; request_types[i].name; i++)
		if (strcmp(request_types[i].name, name) == 0)
			return i;
	return -1;
}

/* An array of integers as a PostgreSQL array literal, {1,2,3}; false if one is not. */
static bool
ints_text(json_t *v, char **out)
{
	size_t		i;
	json_t	   *e;
	char	   *buf,
			   *end;

	buf = end = xmalloc(json_array_size(v) * 22 + 3);
	*end++ = '{';
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e))
		{
			free(buf);
			return false;
		}
		end += sprintf(end, "%s%lld", i ? "," : "", (long long) json_integer_value(e));
	}
	strcpy(end, "}");
	*out = buf;
	return true;
}

/* A parameter's text for the statement (NULL: SQL NULL), or what is wrong with it. */
static const char *
param_text(json_t *msg, const struct request_param *p, char **out)
{
	static char err[128];
	json_t	   *v = json_object_get(msg, p->name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!p->required)
			return NULL;
		snprintf(err, sizeof(err), "%s is required", p->name);
		return err;
	}
	switch (p->kind)
	{
		case P_INT:
			if (!json_is_integer(v))
				break;
			xasprintf(out, "%lld", (long long) json_integer_value(v));
			return NULL;
		case P_STR:
			if (!json_is_string(v))
				break;
			if (json_string_length(v) > p->max || strlen(json_string_value(v)) != json_string_length(v))
			{
				snprintf(err, sizeof(err), "%s is too long or contains a NUL", p->name);
				return err;
			}
			*out = xstrdup(json_string_value(v));
			return NULL;
		case P_BOOL:
			if (!json_is_boolean(v))
				break;
			*out = xstrdup(json_is_true(v) ? "true" : "false");
			return NULL;
		case P_INTS:
			if (!json_is_array(v) || json_array_size(v) > p->max)
				break;
			if (ints_text(v, out))
				return NULL;
			snprintf(err, sizeof(err), "%s must be an array of integers", p->name);
			return err;
		case P_OBJ:
			if (!json_is_object(v))
				break;
			*out = json_dumps(v, JSON_COMPACT);
			if (*out && strlen(*out) <= p->max)
				return NULL;
			free(*out);
			*out = NULL;
			snprintf(err, sizeof(err), "%s is over %zu bytes", p->name, p->max);
			return err;
	}
	if (p->kind == P_INTS)
		snprintf(err, sizeof(err), "%s must be an array of at most %zu integers", p->name, p->max);
	else
		snprintf(err, sizeof(err), "%s must be %s", p->name,
				 p->kind == P_INT ? "an integer" : p->kind == P_STR ? "a string" :
				 p->kind == P_OBJ ? "a JSON object" : "true or false");
	return err;
}

const char *
request_params(const struct request_type *t, json_t *msg, char **out, int *n)
{
	*n = 0;
	for (const struct request_param *p = t->params; p < t->params + REQUEST_MAX_PARAMS && p->name; p++)
	{
		const char *e = param_text(msg, p, &out[(*n)++]);

		if (e)
			return e;
	}
	return NULL;
}
