/* push_senders_off.c: placeholder senders (every kind off) until the real ones land. */
#include "apns_send.h"
#include "fcm_send.h"
#include "push.h"

#define OFF(k) \
	bool k##_on(void) { return false; } \
	int k##_configure(void) { return 0; } \
	void k##_free(void) { } \
	void k##_send(struct push *p) { delivery_sent(&p->d, 0, "off"); } \
	void k##_abort(struct push *p) { (void) p; }
OFF(fcm)
OFF(apns)
