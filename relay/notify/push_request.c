/*
 * push_request.c: what the push senders share (push_request.h), and the
 * kinds' names.
 */
#include "push_request.h"

#include "alloc.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>

const char *const push_kind_names[PUSH_NKINDS] = {"webpush", "fcm", "apns"};

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
	if (p->gone)
		log_info("%s: device %" PRId64 " is no more (%s)", push_kind_names[p->kind], p->device_id, error);
	delivery_sent(&p->d, status, error);
}
