/* The replicated state machine: libraft's raft_fsm over storage/store.
 * It decides what an entry does (validation, compare-and-set, types, the
 * size budget, deduplication); what a flag record is and where it goes is
 * storage/flags.h's, which apply writes through.
 *
 * Happy path: raft commits entry I; fsm_apply decodes the envelope, applies
 * every change in one LMDB write txn together with applied_index = I,
 * commits, and tells the observer what happened at revision I.
 *
 * Failure modes, and what apply does about them (it never returns non-zero:
 * on libraft 0.22 that corrupts the follower's heap):
 *   - entry at or below the stored applied_index (replay after restart):
 *     skipped, counted;
 *   - malformed envelope or invalid change (bad key, bad value, bad request
 *     id, duplicate key in one entry, a stored record that does not
 *     decode; a valid change's record always fits, storage/flags.c shows
 *     why): a deterministic no-op for that change, recorded as FSM_INVALID,
 * logged and counted (n_rejected), the index still recorded. Anything a client
 * could have put into an entry ends here: every replica would hit it alike, so
 * apply never aborts on it;
 *   - a request id applied before (a client's retry): not applied again,
 *     answered with the recorded outcome (outcome.duplicate; see dedup.h);
 *   - compare-and-set mismatch: FSM_CONFLICT, nothing written for it;
 *   - a SET with another value type than the flag's, without change_type:
 *     FSM_TYPE_MISMATCH; a SET that would take the store past the entry's
 *     max_store_bytes even after dropping the oldest change-log rows:
 *     FSM_STORE_FULL (deletes are never refused for size);
 *   - local failure (I/O error, no memory, decoding the entry or a stored
 *     record included, LMDB map full: the map is sized
 *     well above the budget, so only a local condition such as a reader
 *     pinning pages fills it): abort(). raft and the store recover on
 *     restart, where the map grows; a half-applied FSM would not.
 *
 * Deterministic: no clock, no random numbers, no configuration; timestamps,
 * actors and the change-log bound come from the entry itself. */
#ifndef FLIP_RAFT_FSM_H
#define FLIP_RAFT_FSM_H

#include <stdint.h>

#include <raft.h>
#include <uv.h>

#include "command.pb-c.h"
#include "storage/store.h"

/* Largest number of changes one entry may carry; extra ones are invalid. */
#define FSM_MAX_CHANGES 1024

/* Stored in the deduplication table: never renumber. */
enum fsm_status
{
    FSM_OK = 0,
    FSM_CONFLICT = 1,
    FSM_NOTFOUND = 2,
    FSM_INVALID = 3,
    FSM_TYPE_MISMATCH = 4,
    FSM_STORE_FULL = 5
};

struct fsm_outcome
{
    enum fsm_status status;
    /* OK: the new revision; CONFLICT/NOTFOUND/TYPE_MISMATCH: current */
    uint64_t revision;
    /* OK: the flag's create_revision, as logged in its change row */
    uint64_t create_revision;
    /* A repeated request id: this is the first attempt's outcome, and
     * nothing was applied now (no change event for it). */
    int duplicate;
};

struct fsm_observer
{
    void *data;
    /* After entry `index` committed to LMDB. `cmd` is NULL for an entry that
     * did not decode; outcomes[i] belongs to cmd->changes[i]. Both valid
     * only during the call. */
    void (*on_applied)(void *data,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes);
    /* After a snapshot replaced the whole store at `index`. */
    void (*on_restored)(void *data, uint64_t index);
};

/* Asked before every local snapshot; returning 0 declines it (libraft
 * retries on a later apply). See node.c for why a node declines. */
typedef int (*fsm_snapshot_gate)(void *data);

struct fsm_snap_job; /* fsm.c: the local snapshot being written */
struct prealloc;     /* prealloc.h */

struct fsm
{
    struct raft_fsm raft_fsm; /* handed to raft_init */
    fsm_snapshot_gate gate;   /* NULL = always allowed */
    void *gate_data;
    uint64_t n_declined; /* local snapshots declined by the gate */
    struct raft *raft;   /* set before raft_start: index of an apply */
    struct store *store; /* not owned */
    struct fsm_observer observer;
    uint64_t n_applied;   /* entries applied since start */
    uint64_t n_skipped;   /* replayed entries skipped */
    uint64_t n_invalid;   /* entries that failed to decode */
    uint64_t n_rejected;  /* changes refused as invalid by apply */
    uint64_t n_duplicate; /* changes answered from the dedup table */
    uint64_t n_restored;  /* snapshots loaded */
    /* Off-loop snapshots (fsm_offload_snapshots; loop NULL = written on
     * the caller's thread, as under raft_fixture). */
    uv_loop_t *loop;
    struct fsm_snap_job *job; /* at most one: libraft takes one at a time */
    int (*next_put)(struct raft_io *io,
                    unsigned trailing,
                    struct raft_io_snapshot_put *req,
                    const struct raft_snapshot *snapshot,
                    raft_io_snapshot_put_cb cb);
    void (*next_close)(struct raft_io *io, raft_io_close_cb cb);
    raft_io_close_cb close_cb; /* raft_close waiting for the job */
    struct raft_io *close_io;
    uint64_t n_snapshots;      /* local snapshots written */
    uint64_t snapshot_bytes;   /* size of the last one */
    uint64_t snapshot_us;      /* time the last one took to write */
    struct prealloc *prealloc; /* with a loop: the store's blocks ahead */
};

/* Prepares `f` over `store`; `raft` must be set (fsm->raft) before
 * raft_start. Nothing is allocated. */
void fsm_init(struct fsm *f, struct store *store);

/* Moves local snapshots off the loop thread (raft/fsm.c explains how):
 * wraps io->snapshot_put and io->close. With the loop also comes the
 * store's file allocated ahead of the commits (raft/prealloc.h), until
 * io->close. Call after raft_init and before
 * anything else wraps io->snapshot_put (raft/ioshim.c must sit above it, so
 * that it sees the local snapshot as in progress from the start). */
void fsm_offload_snapshots(struct fsm *f, uv_loop_t *loop, struct raft_io *io);

#endif
