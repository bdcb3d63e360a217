/* The flag domain: what a flag record is, and where it lives in the store.
 * The one module that encodes and decodes records and reads the flags db
 * and the change log (storage/layout.h has the tables). raft/fsm.c writes
 * through it inside apply's txn; server/ reads through it.
 *
 * The record is a packed flip.Flag (proto/flip.proto):
 *
 *   field            flags db row              change-log row
 *   ---------------  ------------------------  ---------------------------
 *   key              absent (it is the row's   the flag's key
 *                    LMDB key)
 *   value            the value's known         the same; absent = deletion
 *                    members only
 *   revision         raft index of the change  the same
 *   create_revision  revision of the set that  the same
 *                    created the flag (absent
 *                    in older rows: read as
 *                    `revision`)
 *   actor, reason,   from the entry            the same
 *   time_ms
 *   deleted          never stored              never stored
 *
 * The stored bytes never change: data directories of earlier versions
 * are read as they are (tests/unit/test_flags.c holds rows written before
 * this module existed). A flag as read (flags_get, flags_row_decode, an
 * event) carries its key, and a change-log row without value (a deletion)
 * reads as deleted = 1: the form the protocol carries.
 *
 * Errors: FLIP_CORRUPT for bytes that are not a record, FLIP_NOMEM, and
 * the store's own (store.h). Decoded flags are owned by the caller
 * (flags_free); nothing returned points into the LMDB map. */
#ifndef FLIP_STORAGE_FLAGS_H
#define FLIP_STORAGE_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "flip.pb-c.h"
#include "proto/codec.h"
#include "store.h"

/* The largest packed record of a valid change (flags.c shows why every
 * one fits): apply packs into a buffer of this size on its stack. */
#define FLAGS_RECORD_MAX (CODEC_VALUE_MAX + 4096)

/* ---- the record ---------------------------------------------------------- */

/* Decodes a stored record (either db) as it is stored: no key in a flags
 * db row, no `deleted`. */
int flags_decode(const void *buf, size_t len, Flip__Flag **out);
/* Frees a decoded flag, its key included. NULL is ignored. */
void flags_free(Flip__Flag *flag);

/* The record of change `i` of `cmd` applied at `revision`, for a flag
 * created at `create_revision` (`revision` for a new one), as the flags db
 * holds it: no key; a SET's value in `*value` (its known members, the ones
 * apply stores), a DELETE none. With `value` NULL the record points at the
 * change's own value instead (an event built from the entry: the same
 * bytes as the stored one unless the client sent members this version
 * does not know). `rec` and `value` point into `cmd`. */
void flags_record_of_change(const Flipcmd__Command *cmd,
                            size_t i,
                            uint64_t revision,
                            uint64_t create_revision,
                            Flip__Flag *rec,
                            Flip__Value *value);
/* Turns a record into the flag as read: with `key` (not copied) and a
 * deletion marked deleted. */
void flags_as_read(Flip__Flag *rec, const char *key);
/* Packs `rec` into `out` (FLAGS_RECORD_MAX bytes); its length. */
size_t flags_pack(const Flip__Flag *rec, uint8_t *out);
/* What the change-log row of a record of `rlen` packed bytes (without
 * key) for a key of `klen` bytes adds to store_bytes: an upper bound
 * (the key field's tag and length take 2 or 3 bytes). */
uint64_t flags_change_row_bytes(size_t rlen, size_t klen);

/* ---- the flag now -------------------------------------------------------- */

/* What apply and the write path need of the stored flag. */
struct flags_head
{
    uint64_t revision;        /* 0: absent */
    uint64_t create_revision; /* older records: their revision */
    Flip__Value__KindCase kind;
    /* key + record as store_bytes counts them; set whenever the row
     * exists, also when its record does not decode */
    size_t bytes;
};

/* The head of `key` inside `txn` (apply). An absent flag is FLIP_OK with
 * revision 0; FLIP_CORRUPT when its record does not decode (then only
 * `bytes` is set). */
int flags_txn_head(struct store_txn *txn,
                   const char *key,
                   size_t klen,
                   struct flags_head *out);
/* As flags_txn_head, in a short read txn of its own. */
int flags_head(struct store *s,
               const char *key,
               size_t klen,
               struct flags_head *out);
/* The flag `key` as read (with its key); FLIP_NOTFOUND when absent. */
int flags_get(struct store *s, const char *key, Flip__Flag **out);

/* ---- writes (apply's txn) ------------------------------------------------ */

/* Stores the packed record `rec` of `rlen` bytes (flags_pack of a record
 * without key) as the flag `key`. */
int flags_txn_put(struct store_txn *txn,
                  const char *key,
                  size_t klen,
                  const uint8_t *rec,
                  size_t rlen);
/* Deletes the flag `key`; FLIP_NOTFOUND when absent. */
int flags_txn_del(struct store_txn *txn, const char *key, size_t klen);
/* Appends the change-log row (revision, position) for the flag `key`
 * whose record (without key) is `rec`. */
int flags_txn_log(struct store_txn *txn,
                  uint64_t revision,
                  uint32_t position,
                  const char *key,
                  const Flip__Flag *rec);

/* ---- scans --------------------------------------------------------------- */

/* One row met by a scan, valid only during the visitor's call. */
struct flags_row
{
    /* flags db: the flag's key (not NUL-terminated); change log: NULL
     * (the key is in the record) */
    const char *key;
    size_t klen;
    uint64_t revision; /* change log: the row's revision and position */
    uint32_t position;
    size_t bytes; /* LMDB key + record, as store_bytes counts them */
    /* private: the stored record (flags_row_decode) */
    const void *rec;
    size_t rlen;
};

/* Visitor: 0 to go on, non-zero to stop. */
typedef int (*flags_row_cb)(void *arg, const struct flags_row *row);

/* The flag of `row` as read, owned by the caller (flags_free): a flags db
 * row gets a copy of its key (and stays as stored otherwise); a change-log
 * row without value reads as deleted. FLIP_CORRUPT when the record does
 * not decode, FLIP_NOMEM. */
int flags_row_decode(const struct flags_row *row, Flip__Flag **out);

/* Visits the flags whose key starts with `prefix` (NULL: all), in key
 * order, after the key `after` (NULL: from the start), at most `limit`
 * rows (0: all); *more is set when rows remained past the limit or the
 * visitor stopped the scan. */
int flags_scan(struct store *s,
               const char *prefix,
               const char *after,
               size_t alen,
               size_t limit,
               flags_row_cb cb,
               void *arg,
               int *more);
/* As flags_scan, inside a reader's view. */
int flags_reader_scan(struct store_reader *r,
                      const char *prefix,
                      const char *after,
                      size_t alen,
                      size_t limit,
                      flags_row_cb cb,
                      void *arg,
                      int *more);
/* Visits the change-log rows of every revision above `revision`, in
 * (revision, position) order, until the visitor stops; a row whose key is
 * not a change key (none is written) is passed over. */
int changes_after(struct store *s,
                  uint64_t revision,
                  flags_row_cb cb,
                  void *arg);

#endif
