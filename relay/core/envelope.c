/*
 * envelope.c: taking a chat_events payload apart (see envelope.h). The
 * event is only delimited here, not decoded: its bytes are what clients
 * get, the same whether it came alone or in a batch.
 */
#include "envelope.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

struct cursor
{
	const char *p,
			   *end;
};

/* Consume the literal s if it is next. */
static bool
take(struct cursor *c, const char *s)
{
	size_t		n = strlen(s);

	if ((size_t) (c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* An integer in 64 bits, as JSON writes it (no sign but '-', no leading zeros). */
static bool
take_id(struct cursor *c, int64_t *out)
{
	bool		neg = take(c, "-");
	uint64_t	v = 0;
	const char *start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
	{
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t) (*c->p++ - '0');
	}
	if (c->p == start || (c->p - start > 1 && *start == '0'))
		return false;
	if (v > (uint64_t) INT64_MAX + (neg ? 1 : 0))
		return false;
	*out = neg ? (int64_t) (0 - v) : (int64_t) v;
	return true;
}

/*
 * Step over one JSON object, strings and nesting included. Only its extent
 * is found here; whether it is valid JSON is the event parser's business.
 */
static bool
skip_object(struct cursor *c)
{
	int			depth = 0;

	if (c->p >= c->end || *c->p != '{')
		return false;
	while (c->p < c->end)
	{
		char		ch = *c->p++;

		if (ch == '"')
		{
			while (c->p < c->end && *c->p != '"')
				c->p += (*c->p == '\\' && c->end - c->p > 1) ? 2 : 1;
			if (c->p >= c->end)
				return false;
			c->p++;
		}
		else if (ch == '{' || ch == '[')
			depth++;
		else if ((ch == '}' || ch == ']') && --depth == 0)
			return true;
	}
	return false;
}

/* Room for one more recipient id. */
static void
push_id(struct envelope_list *l, int64_t id)
{
	if (l->nids == l->ids_cap)
	{
		l->ids_cap = l->ids_cap ? l->ids_cap * 2 : 64;
		l->ids = xrealloc(l->ids, l->ids_cap * sizeof(*l->ids));
	}
	l->ids[l->nids++] = id;
}

/* {"to":[…]|null,"ev":{…}} */
static bool
take_envelope(struct cursor *c, struct envelope_list *l)
{
	struct envelope e = {0};
	size_t		first = l->nids;

	if (!take(c, "{\"to\":"))
		return false;
	if (take(c, "null"))
		e.broadcast = true;
	else
	{
		int64_t		id;

		if (!take(c, "["))
			return false;
		if (!take(c, "]"))
		{
			do
			{
				if (!take_id(c, &id))
					return false;
				push_id(l, id);
			} while (take(c, ","));
			if (!take(c, "]"))
				return false;
		}
	}
	if (!take(c, ",\"ev\":"))
		return false;
	e.ev = c->p;
	if (!skip_object(c))
		return false;
	e.ev_len = (size_t) (c->p - e.ev);
	if (!take(c, "}"))
		return false;
	e.nto = l->nids - first;
	e.to = (const int64_t *) (uintptr_t) first;	/* an index until the ids stop moving */
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = e;
	return true;
}

int
envelope_parse(const char *payload, size_t len, struct envelope_list *out)
{
	struct cursor c = {payload, payload + len};
	bool		ok;

	out->n = 0;
	out->nids = 0;
	if (take(&c, "["))
	{
		ok = take_envelope(&c, out);
		while (ok && take(&c, ","))
			ok = take_envelope(&c, out);
		ok = ok && take(&c, "]");
	}
	else
		ok = take_envelope(&c, out);
	if (!ok || c.p != c.end)
	{
		out->n = 0;
		return -1;
	}
	for (size_t i = 0; i < out->n; i++)
		out->v[i].to = out->ids + (uintptr_t) out->v[i].to;
	return 0;
}

void
envelope_list_free(struct envelope_list *l)
{
	free(l->v);
	free(l->ids);
	memset(l, 0, sizeof(*l));
}
