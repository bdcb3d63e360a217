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
 *   "rq/" | client_id[16] | seq u64         time u64 | status u8 |
 *                                           revision u64 | digest u64
 *   "rt/" | time u64 | client_id | seq      one 0 byte (age index)
 *   "dedup_rows"                            u64: number of "rq/" rows
 *   "dedup_clock"                           u64: the table's clock
 *
 * The table's clock is the highest leader-stamped time_ms seen so far,
 * so a leader whose wall clock is behind cannot make new rows look old
 * (they would be evicted first, exactly when a resend needs them).
 *
 * The digest (FNV-1a of op, key, value, expected revision and
 * change_type, not of the actor, which may be a connection's address)
 * catches a request id reused for another write (two processes sharing
 * one by fork, a client bug): such a change is refused as invalid and
 * logged, never answered with another write's outcome.
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
 * inside the window. The row cap makes the window shorter under heavy
 * write rates: 100,000 ids at 1,000 writes/s last 100 s. */
#ifndef FLIP_RAFT_DEDUP_H
#define FLIP_RAFT_DEDUP_H

#include <stdint.h>

#include "command.pb-c.h"
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
    uint64_t digest; /* of the change it names (dedup_id_of) */
};

/* Validates a wire request id: client_id exactly 16 bytes, seq >= 1.
 * FLIP_OK and *out filled (digest 0), or FLIP_INVALID with *why set. */
int dedup_id_parse(const Flip__RequestId *w,
                   struct dedup_id *out,
                   const char **why);

/* The id of change `ch` with its content digest; FLIP_INVALID (and *why)
 * for a malformed id. */
int dedup_id_of(const Flipcmd__Change *ch,
                struct dedup_id *out,
                const char **why);

/* Advances the table's clock to the entry's `time_ms` (never back) and
 * returns it in *now. */
int dedup_clock(struct store_txn *txn, int64_t time_ms, uint64_t *now);

/* FLIP_OK with the recorded outcome in *out (out->duplicate set) when
 * `id` was applied before; FLIP_NOTFOUND when not; FLIP_CONFLICT when the
 * id was applied for a change with another digest; another code on a
 * store error. A malformed row counts as absent. */
int dedup_lookup(struct store_txn *txn,
                 const struct dedup_id *id,
                 struct fsm_outcome *out);

/* Records the outcome of `id`, applied at table time `now`. The row count
 * is brought up to date by dedup_expire, once per entry. */
int dedup_record(struct store_txn *txn,
                 const struct dedup_id *id,
                 uint64_t now,
                 const struct fsm_outcome *o);

/* After an entry recorded `added` rows: deletes rows older than
 * `window_ms` before `now`, and the oldest rows past DEDUP_MAX_ROWS, at
 * most `max_ops` of them, and stores the row count (once per entry). */
int dedup_expire(struct store_txn *txn,
                 uint64_t now,
                 uint64_t window_ms,
                 uint64_t added,
                 size_t max_ops);

/* True when the store (outside any txn) holds a row for `id`: the leader
 * then leaves a resend's answer to apply. */
int dedup_known(struct store *s, const struct dedup_id *id);

/* Number of rows (for status and tests). */
uint64_t dedup_rows(struct store_txn *txn);

#endif
