/* The FSM snapshot format, written from one read view of the store.
 *
 * Format (version 1, unchanged since the first release, so snapshots on
 * disk from any earlier flipd still load):
 *
 *   "FLS1" | u32be version | u64be index
 *   per db (flags, changes, meta, in that order):
 *       u32be db | u64be rows | rows of (u32be klen | u32be vlen | k | v)
 *   u64be FNV-1a of every byte before it
 *
 * `index` is the store's applied_index in the same read view as the rows
 * (the content's own index), never raft's: during a restart replay raft's
 * counter trails the store, and a header below the content would make the
 * restoring node apply those entries a second time (review M4).
 *
 * snapshot_write only reads through a store_reader (an LMDB read txn, which
 * the env's MDB_NOTLS lets another thread use), allocates through `alloc`
 * and touches nothing else, so it may run on a worker thread while apply
 * writes on the loop thread (raft/fsm.c says who calls it where). */
#ifndef FLIP_STORAGE_SNAPSHOT_H
#define FLIP_STORAGE_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SNAPSHOT_VERSION 1

/* Serialises the reader's view into one buffer from `alloc` (the caller's
 * on success; nothing allocated on failure). One pass sizes the rows (no
 * hashing), one writes and hashes them. *index is the view's applied
 * index, also written into the header. `cancel` (NULL: never) is polled
 * between rows: once another thread sets it, FLIP_AGAIN. */
int snapshot_write(struct store_reader *r,
                   void *(*alloc)(size_t),
                   const atomic_int *cancel,
                   void **buf,
                   size_t *len,
                   uint64_t *index);

/* The header's index; FLIP_CORRUPT when the header is malformed or of a
 * version this build does not read. */
int snapshot_index(const void *buf, size_t len, uint64_t *index);

/* Checks the whole buffer (header, lengths, db order, checksum) without
 * touching any store. */
int snapshot_check(const void *buf, size_t len);

/* Visits every row of a buffer snapshot_check accepted, in order; a
 * non-zero return from `cb` stops and is returned. */
typedef int (*snapshot_row_cb)(void *arg,
                               enum store_db db,
                               const void *key,
                               size_t klen,
                               const void *val,
                               size_t vlen);
int snapshot_rows(const void *buf, size_t len, snapshot_row_cb cb, void *arg);

#endif
