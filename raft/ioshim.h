/* A thin layer between libraft 0.22.1 and its raft_io that works around
 * three of its bugs (docs/known-issues.md #1, #6, #9):
 *
 *   #6  a leader that stored a newer snapshot while loading one to send
 *       puts the new last_index with the old snapshot's term into
 *       InstallSnapshot (legacyLoadSnapshotCb); the follower then fails a
 *       later AppendEntries and shuts down. The shim remembers the (index,
 *       term) of the snapshots it stored and corrects the term on send.
 *   #1  an InstallSnapshot accepted while this node is writing a local
 *       snapshot makes libraft dereference a pointer it has just cleared
 *       (legacy.c takeSnapshotCb) when the local write completes. The shim
 *       holds such a message back until the local write is done, then
 *       delivers it.
 *   #9  an InstallSnapshot that arrives while an earlier one is still being
 *       installed is ignored without freeing its payload. The shim frees it
 *       after the call.
 *
 * The shim is not a raft_io itself: the embedding program (raft/node.c over
 * raft_uv; tests/stress over raft_fixture) replaces io->send, io->start and
 * io->snapshot_put with its own three-line functions that find their shim
 * and call ioshim_send / ioshim_start / ioshim_snapshot_put. The #1 and #9
 * checks read libraft's own struct raft fields (snapshot.installing,
 * current_term); they are specific to 0.22.1, which node.c requires. */
#ifndef FLIPD_RAFT_IOSHIM_H
#define FLIPD_RAFT_IOSHIM_H

#include <stdint.h>

#include <raft.h>

#define IOSHIM_STORED 16 /* snapshots remembered for the term check */

struct ioshim
{
    struct raft *raft;
    struct raft_io *io;
    /* what the shim replaced, called through */
    int (*next_send)(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *m,
                     raft_io_send_cb cb);
    int (*next_start)(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv);
    int (*next_snapshot_put)(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb);
    raft_io_recv_cb raft_recv; /* libraft's receive callback */
    struct
    {
        raft_index index;
        raft_term term;
    } stored[IOSHIM_STORED];
    unsigned n_stored;
    unsigned local_puts; /* local snapshot writes in progress */
    int has_deferred;
    struct raft_message deferred; /* owns its payload while held */
    int closed;
    /* counters, for logs and tests */
    uint64_t n_terms_fixed;
    uint64_t n_deferred;
    uint64_t n_dropped; /* held installs replaced by a newer one */
    uint64_t n_freed;   /* ignored installs whose payload was freed */
};

/* Remembers io's current send/start/snapshot_put as the next layer; the
 * caller then points them at its own wrappers. */
void ioshim_init(struct ioshim *sh, struct raft *raft, struct raft_io *io);

int ioshim_send(struct ioshim *sh,
                struct raft_io_send *req,
                const struct raft_message *m,
                raft_io_send_cb cb);

/* `recv` is the caller's wrapper that finds the shim and calls
 * ioshim_recv; libraft's own callback is kept in sh->raft_recv. */
int ioshim_start(struct ioshim *sh,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb raft_recv,
                 raft_io_recv_cb recv);

void ioshim_recv(struct ioshim *sh, struct raft_message *m);

int ioshim_snapshot_put(struct ioshim *sh,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);

/* After raft_close has completed: frees a held message. */
void ioshim_close(struct ioshim *sh);

#endif
