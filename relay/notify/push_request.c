/*
 * push_request.c: the request helpers the push senders share (push_request.h).
 */
#include "push_request.h"

#include "alloc.h"

#include <stdlib.h>

void
push_header(struct push *p, const char *name, const char *value)
{
	char	   *line;

	xasprintf(&line, "%s: %s", name, value);
	p->headers = curl_slist_append(p->headers, line);
	free(line);
}

void
push_request_free(struct push *p)
{
	curl_slist_free_all(p->headers);
	p->headers = NULL;
	free(p->req_body);
	p->req_body = NULL;
	free(p->url);
	p->url = NULL;
}

void
push_request_end(struct push *p, int status, const char *error)
{
	push_request_free(p);
	delivery_sent(&p->d, status, error);
}
