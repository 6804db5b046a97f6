/*
 * push_request.h: what the three push senders do alike with the request
 * they build on a struct push (push.h): add a header, and end the send
 * (free what was made, then report it once).
 */
#ifndef NOTIFY_PUSH_REQUEST_H
#define NOTIFY_PUSH_REQUEST_H

#include "push.h"

/* "name: value" appended to p->headers. */
void		push_header(struct push *p, const char *name, const char *value);

/* p->headers, p->req_body and p->url freed (NULL again). */
void		push_request_free(struct push *p);

/* The send has ended: the request freed, a gone device logged, then delivery_sent(&p->d, status, error). */
void		push_request_end(struct push *p, int status, const char *error);

#endif
