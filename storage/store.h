/* The FSM's LMDB store. Single writer (raft apply and restore, on the loop
 * thread); readers are short read-only transactions on the same thread.
 *
 * Pointers returned by reads point into the LMDB map and are valid only
 * inside the visitor callback or until the next write on the same txn, as
 * each function says. Nothing here keeps them. MDB_* codes are translated:
 * MDB_MAP_FULL -> FLIP_NOSPACE, MDB_NOTFOUND -> FLIP_NOTFOUND, anything else
 * -> FLIP_IOERR (logged with mdb_strerror). */
#ifndef FLIP_STORAGE_STORE_H
#define FLIP_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

struct store;
struct store_txn;

#define STORE_MAPSIZE_DEFAULT ((size_t)1 << 30) /* 1 GiB of address space */

/* The LMDB map for a store budget of `budget` bytes (0: none): 3x the
 * budget (B-tree pages half full after churn, old pages kept for readers,
 * the dedup rows) plus 256 MiB, at least STORE_MAPSIZE_DEFAULT. store_open
 * grows it further to 1.5x an existing data file, so a map that filled on
 * a local condition is larger after the restart. */
size_t store_mapsize(uint64_t budget);
/* LMDB reader slots (one per open read view). Past it readers get
 * FLIP_BUSY; pubsub also bounds how many snapshots stream at once. */
#define STORE_MAX_READERS 1024

/* Opens (creating if needed) the store in directory `dir`, which must
 * exist. On success *out is owned by the caller (store_close). */
int store_open(struct store **out, const char *dir, size_t mapsize);
/* Flushes, marks the store clean and frees it. NULL is ignored. */
void store_close(struct store *s);
/* Forces data to disk (MDB_NOSYNC defers it). */
int store_sync(struct store *s);
/* The data file as far as LMDB uses it: *end is the byte after its last
 * page (commits write past it only to grow the file), *limit the map size
 * (the file never grows past it). Reads LMDB's meta page, no lock: call it
 * on the writer's thread. FLIP_OK or FLIP_IOERR. */
int store_data_extent(struct store *s, uint64_t *end, uint64_t *limit);
/* A new descriptor of the data file, owned by the caller (close it), for
 * raft/prealloc.c, which allocates the file's blocks ahead of LMDB from
 * another thread; -1 (errno set) on failure. */
int store_data_fd(struct store *s);

/* Last applied raft index, 0 for a fresh store. */
uint64_t store_applied_index(struct store *s);
/* Highest revision trimmed from the change log (0 = nothing trimmed). */
uint64_t store_compacted(struct store *s);
/* Logical size in bytes: key + value of every row of flags and changes.
 * The size budget is measured in it; it depends only on the content, so it
 * is identical on every replica at the same applied index. */
uint64_t store_bytes(struct store *s);
/* The part of store_bytes in the flags db (the live state). */
uint64_t store_flag_bytes(struct store *s);
/* Number of rows in `db`. */
uint64_t store_count(struct store *s, enum store_db db);

/* ---- write transactions (one at a time) ---------------------------------- */
int store_begin(struct store *s, struct store_txn **txn);
/* Commits and frees the txn (also on failure). */
int store_commit(struct store_txn *txn);
void store_abort(struct store_txn *txn);
int store_put(struct store_txn *txn,
              enum store_db db,
              const void *key,
              size_t klen,
              const void *val,
              size_t vlen);
/* FLIP_NOTFOUND when absent. */
int store_del(struct store_txn *txn,
              enum store_db db,
              const void *key,
              size_t klen);
/* *val points into the map until the next write on this txn. */
int store_txn_get(struct store_txn *txn,
                  enum store_db db,
                  const void *key,
                  size_t klen,
                  const void **val,
                  size_t *vlen);
int store_txn_set_applied(struct store_txn *txn, uint64_t index);
/* store_bytes as of this txn's own writes. */
uint64_t store_txn_bytes(const struct store_txn *txn);
/* The part of store_txn_bytes that trimming the change log cannot remove:
 * the flags, and the change rows this txn appended itself (one txn applies
 * one entry, so those are at its own revision). */
uint64_t store_txn_floor_bytes(const struct store_txn *txn);
/* The first row of `db` whose key starts with `prefix` (plen 0: the first
 * row). FLIP_NOTFOUND when none. Pointers valid until the next write on
 * this txn. */
int store_txn_first(struct store_txn *txn,
                    enum store_db db,
                    const void *prefix,
                    size_t plen,
                    const void **key,
                    size_t *klen,
                    const void **val,
                    size_t *vlen);
/* Appends a change row keyed (revision, position). */
int store_change_append(struct store_txn *txn,
                        uint64_t revision,
                        uint32_t position,
                        const void *val,
                        size_t vlen);
/* Deletes the oldest change rows until at most `keep` remain, recording the
 * highest trimmed revision in meta. keep = 0 means unbounded. */
int store_change_trim(struct store_txn *txn, uint64_t keep);
/* Deletes the oldest change rows (whole revisions, none >= `below`) until
 * store_txn_bytes is at most `max_bytes` or no such row is left. */
int store_change_trim_bytes(struct store_txn *txn,
                            uint64_t max_bytes,
                            uint64_t below);

/* ---- reads -----------------------------------------------------------------
 */

/* Visitor: return 0 to continue, non-zero to stop. key/val valid only
 * during the call. */
typedef int (*store_visit_cb)(void *arg,
                              const void *key,
                              size_t klen,
                              const void *val,
                              size_t vlen);

/* Calls `cb` once with the value of `key` in `db` inside a read txn.
 * FLIP_NOTFOUND when absent. */
int store_get(struct store *s,
              enum store_db db,
              const void *key,
              size_t klen,
              store_visit_cb cb,
              void *arg);
/* True when `db` holds `key` (a short read txn; errors read as absent). */
int store_has(struct store *s, enum store_db db, const void *key, size_t klen);

/* Visits rows of `db` whose key starts with `prefix`, in key order, starting
 * after `after` (NULL = from the start), at most `limit` rows (0 = all).
 * *more is set when rows remained past the limit. */
int store_scan(struct store *s,
               enum store_db db,
               const void *prefix,
               size_t plen,
               const void *after,
               size_t alen,
               size_t limit,
               store_visit_cb cb,
               void *arg,
               int *more);

/* ---- long-lived readers
 * ------------------------------------------------------
 *
 * A reader pins one consistent view of the store (an LMDB read txn) across
 * loop turns, so a subscriber's snapshot can be streamed in chunks while
 * apply goes on. Keep readers short-lived: they hold old pages alive. */
struct store_reader;

int store_reader_open(struct store *s, struct store_reader **out);
void store_reader_close(struct store_reader *r);
/* applied_index / compacted as of the reader's view. */
uint64_t store_reader_applied(const struct store_reader *r);
uint64_t store_reader_compacted(const struct store_reader *r);
/* As store_scan, inside the reader's view. */
int store_reader_scan(struct store_reader *r,
                      enum store_db db,
                      const void *prefix,
                      size_t plen,
                      const void *after,
                      size_t alen,
                      size_t limit,
                      store_visit_cb cb,
                      void *arg,
                      int *more);

/* ---- snapshots ----------------------------------------------------------- */

/* Serialises every database into one buffer obtained from `alloc` (owned by
 * the caller; on failure it may hold a partial buffer with *len = 0, also
 * the caller's to free). `index` must be the store's applied index (the
 * header carries the content's own index, review M4): FLIP_INVALID
 * otherwise. Format and the off-loop path: storage/snapshot.h. */
int store_snapshot(struct store *s,
                   uint64_t index,
                   void *(*alloc)(size_t),
                   void **buf,
                   size_t *len);
/* Reads the index from a snapshot header; FLIP_CORRUPT if malformed. */
int store_snapshot_index(const void *buf, size_t len, uint64_t *index);
/* Replaces the whole store with the snapshot's content in one txn; the
 * applied index is the one the content carries in its meta rows (the header's
 * when it has none). FLIP_CORRUPT (store unchanged) when the buffer fails
 * validation. */
int store_restore(struct store *s, const void *buf, size_t len);

/* Content hash of every db (tests compare nodes with it). */
uint64_t store_hash(struct store *s);

#endif
