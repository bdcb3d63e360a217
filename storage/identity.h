/* Cluster identity in the store's meta db: the cluster id, and which
 * members the cluster has recorded as holding its data.
 *
 *   meta key            value
 *   ------------------  ------------------------------------------------
 *   "cluster_id"        32 lowercase hex digits, written once
 *   "joined:" u64be id  empty: member `id` replicated past the bootstrap
 *
 * Both are written only by raft apply (identity_txn_apply, from an entry a
 * leader proposed), so every replica holds the same rows, and they travel
 * in snapshots with the rest of meta. The first cluster id applied wins;
 * a later one (two leaders proposed one each) is ignored alike on every
 * replica. */
#ifndef FLIP_STORAGE_IDENTITY_H
#define FLIP_STORAGE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define IDENTITY_ID_LEN 32 /* hex digits; buffers hold IDENTITY_ID_LEN + 1 */

/* 1 when `id` is a well-formed cluster id (IDENTITY_ID_LEN lowercase hex
 * digits). */
int identity_valid(const char *id);

/* Fills out[IDENTITY_ID_LEN + 1] with a fresh random cluster id.
 * FLIP_OK or FLIP_IOERR (no randomness). */
int identity_generate(char *out);

/* Reads the stored cluster id into out[IDENTITY_ID_LEN + 1]; "" when none.
 * FLIP_OK, FLIP_NOTFOUND (none stored) or a store error. */
int identity_get(struct store *s, char *out);

/* 1 when the cluster recorded member `id` as joined. */
int identity_joined(struct store *s, uint64_t id);

/* Inside apply: stores `cluster_id` if it is well formed and none is
 * stored yet, and records `joined_member` (0 = none). Anything malformed
 * is ignored (the same on every replica). FLIP_OK or a store error. */
int identity_txn_apply(struct store_txn *txn,
                       const char *cluster_id,
                       uint64_t joined_member);

#endif
