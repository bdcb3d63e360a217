/* The on-disk layout of the FSM store: one LMDB environment in
 * <data>/fsm with three named databases. Values are opaque bytes to
 * storage/; raft/fsm encodes them with proto/.
 *
 *   db       key                               value
 *   -------  --------------------------------  ------------------------------
 *   flags    flag key (1..256 bytes, no NUL)   packed flip.Flag without key
 *   changes  u64be revision | u32be position   packed flip.Flag with key; no
 *                                              value = deletion
 *   meta     "applied_index"                   u64be: last raft index applied
 *            "compacted"                       u64be: highest revision trimmed
 *                                              from `changes` (0 = none)
 *            "format"                          u32be: STORE_FORMAT
 *
 * What a flags/changes value holds, and the only code that reads or writes
 * one: storage/flags.h. The change key's codec is below (store.c and
 * flags.c use it; nothing else builds one).
 *
 * `applied_index` is written in the same write transaction as the changes of
 * that entry, so a replayed entry is recognised and skipped. `changes` is
 * trimmed inside apply to the count stamped in each entry, so every node
 * holds identical rows.
 *
 * Beside data.mdb: `boot_id` (kernel boot id when the env was opened) and
 * `clean` (present after a clean close). The env runs with MDB_NOSYNC (the
 * raft log is the durable record); if the machine rebooted without a clean
 * close, the env may be torn and is rebuilt from raft instead of trusted. */
#ifndef FLIP_STORAGE_LAYOUT_H
#define FLIP_STORAGE_LAYOUT_H

#include <stdint.h>

#include "lib/buf.h"

#define STORE_FORMAT 1

enum store_db
{
    STORE_FLAGS = 0,
    STORE_CHANGES = 1,
    STORE_META = 2,
    STORE_NDB = 3
};

#define STORE_CHANGE_KEY 12 /* u64be revision + u32be position */

static inline void store_change_key(uint8_t *key,
                                    uint64_t revision,
                                    uint32_t position)
{
    buf_put_u64be(key, revision);
    buf_put_u32be(key + 8, position);
}

/* Of a key of STORE_CHANGE_KEY bytes. */
static inline uint64_t store_change_key_revision(const void *key)
{
    return buf_get_u64be(key);
}

static inline uint32_t store_change_key_position(const void *key)
{
    return buf_get_u32be((const uint8_t *)key + 8);
}

#endif
