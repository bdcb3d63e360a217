/* What the request client (client.c) and the watch (watch.c, wloop.c)
 * share about a cluster's endpoints: the list as the application gives it,
 * and the jittered backoff between rounds of failed endpoints. Which
 * endpoint to try next stays with each (the client prefers the leader,
 * the watch a node that is not stale). */
#ifndef FLIP_CLIENT_ENDPOINTS_H
#define FLIP_CLIENT_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "client/wire.h"

/* Initialises eps[*n], eps[*n + 1], ... from "host:port,host:port": blanks
 * and tabs around an item are trimmed, empty items ("a,,b", a trailing
 * comma) skipped.
 * @return FLIP_OK with at least one endpoint in all; FLIP_INVALID (an
 *         item too long or not an address, more than max, or none at all);
 *         FLIP_NOMEM. On failure eps[0..*n) stay initialised: the caller
 *         destroys them. */
int endpoints_parse(const char *csv, struct wire *eps, size_t max, size_t *n);

/* A seed for endpoints_random that differs between processes started
 * together and between objects of one process (owner's address). */
uint64_t endpoints_seed(const void *owner);

/* xorshift64*: per-object state, so no global mutable state. */
uint64_t endpoints_random(uint64_t *rng);

/* The next sleep of a backoff: *backoff_ms doubles from min_ms up to
 * max_ms (0: not started), and the sleep is uniform in [b/2, b] so that
 * clients failed by the same event do not come back in the same ms. */
int64_t endpoints_backoff(uint64_t *rng,
                          unsigned *backoff_ms,
                          unsigned min_ms,
                          unsigned max_ms);

#endif
