/* The deduplication table of exactly-once writes (part of the FSM).
 *
 * A client names each write with a request id: a random 16-byte client id
 * chosen once per client process and a sequence number. Apply records the
 * outcome of every change that carries an id, in the same LMDB write txn
 * as the change itself; a later change with the same id is not applied
 * again and is answered with the recorded outcome, whichever leader
 * proposed it and however often the client resent it.
 *
 * Layout (rows in the store's meta db, so they travel in snapshots and
 * count in the state hash; all integers big-endian):
 *
 *   key                                     value
 *   "rq/" | client_id[16] | seq u64         time_ms u64 | status u8 |
 *                                           revision u64
 *   "rt/" | time_ms u64 | client_id | seq   "" (age index of the above)
 *   "dedup_rows"                            u64: number of "rq/" rows
 *
 * Bounds: a row is kept for the entry-stamped retention window
 * (Command.dedup_window_ms, DEDUP_WINDOW_DEFAULT_MS when absent) measured
 * in leader-stamped time_ms, and at most DEDUP_MAX_ROWS rows are kept
 * (the oldest go first). Each apply expires at most n_changes +
 * DEDUP_EXPIRE_SLACK rows, so apply stays O(changes). Everything depends
 * only on the entries, so every replica holds the same rows.
 *
 * A retry that arrives after its row expired is applied as a new write:
 * the client library never retries past its own deadline (seconds), far
 * inside the window. */
#ifndef FLIP_RAFT_DEDUP_H
#define FLIP_RAFT_DEDUP_H

#include <stdint.h>

#include "flip.pb-c.h"
#include "fsm.h"
#include "storage/store.h"

#define DEDUP_CLIENT_LEN        16
#define DEDUP_WINDOW_DEFAULT_MS (10u * 60u * 1000u) /* 10 minutes */
#define DEDUP_MAX_ROWS          100000u
#define DEDUP_EXPIRE_SLACK      16u

struct dedup_id
{
    uint8_t client[DEDUP_CLIENT_LEN];
    uint64_t seq;
};

/* Validates a wire request id: client_id exactly 16 bytes, seq >= 1.
 * FLIP_OK and *out filled, or FLIP_INVALID with *why set. */
int dedup_id_parse(const Flip__RequestId *w, struct dedup_id *out,
                   const char **why);

/* FLIP_OK with the recorded outcome in *out (out->duplicate set) when
 * `id` was applied before; FLIP_NOTFOUND when not; another code on a
 * store error. */
int dedup_lookup(struct store_txn *txn,
                 const struct dedup_id *id,
                 struct fsm_outcome *out);

/* Records the outcome of `id`, applied at leader time `time_ms`. */
int dedup_record(struct store_txn *txn,
                 const struct dedup_id *id,
                 int64_t time_ms,
                 const struct fsm_outcome *o);

/* Deletes rows older than `window_ms` before `now_ms`, and the oldest
 * rows past DEDUP_MAX_ROWS; at most `max_ops` rows. */
int dedup_expire(struct store_txn *txn,
                 int64_t now_ms,
                 uint64_t window_ms,
                 size_t max_ops);

/* Number of rows (for status and tests). */
uint64_t dedup_rows(struct store_txn *txn);

#endif
