/* A thin layer between libraft 0.22.1 and its raft_io that works around
 * some of its bugs (docs/known-issues.md #1, #4, #6, #9, #12, #13, #19):
 *
 *   #6  a leader that stored a newer snapshot while loading one to send
 *       puts the new last_index with the old snapshot's term into
 *       InstallSnapshot (legacyLoadSnapshotCb); the follower then fails a
 *       later AppendEntries and shuts down. The shim remembers the (index,
 *       term) of the snapshots it stored and corrects the term on send.
 *   #1  an InstallSnapshot accepted while this node is writing a local
 *       snapshot makes libraft dereference a pointer it has just cleared
 *       (legacy.c takeSnapshotCb) when the local write completes. The shim
 *       holds every live install back (not only those beyond the local
 *       log: one inside it with a conflicting term is installed too) until
 *       the local write is done, then delivers it.
 *   #9  an InstallSnapshot that arrives while an earlier one is still being
 *       installed is ignored without freeing its payload.
 *   #12 and the leader waits for exactly that newer snapshot: it ignores
 *       the answer to the older install as stale, and only gives up on a
 *       follower that stops answering. A follower whose install took long
 *       (a full disk) then stays behind for good. The shim keeps the
 *       ignored message (libraft did see it: leader contact) and delivers
 *       it once the install in progress is done.
 *   #13 raft_uv ignores a failed log truncation (ENOSPC while rewriting a
 *       segment) and goes on appending at the wrong indexes. With a room
 *       check set (ioshim_set_room), the shim stops the process before a
 *       truncation when the raft directory has less free space than one
 *       truncation may need: a clear fail-stop instead of a corrupt log.
 *       libraft calls io->truncate before every append, with the new
 *       entries' own index; raft_uv does nothing unless that index is
 *       below its next append index. The shim follows that index the way
 *       raft_uv does (load, truncate, append, installed snapshots) and
 *       checks only real truncations, so a node low on disk keeps taking
 *       appends, and an append costs no statvfs.
 *   #4  a leader whose heartbeat to a follower is skipped (it sent that
 *       follower something less than a heartbeat ago) and that then hears
 *       nothing from it for one heartbeat interval marks it unreachable and
 *       drops it to probe mode, where the next write waits for a heartbeat
 *       tick: after every isolated write, so sparse writes (a kill switch's
 *       normal case) took up to a heartbeat longer. A follower that
 *       answered an AppendEntries carrying entries repeats that answer on
 *       its next ticks (at most IOSHIM_REPEATS, until a heartbeat arrives),
 *       so the leader hears from it in every interval. A repeated success
 *       result is an ordinary duplicate message to raft: it moves nothing.
 *       The same gap opens while the entries are being written: libraft
 *       answers them once on disk, and a write slower than the leader's
 *       tick (a loaded disk, 10-20 ms here) left a tick without contact,
 *       so the follower repeats its previous success answer on its ticks
 *       from the moment entries arrive until the real answer goes out.
 *   #19 a leader that sends a follower InstallSnapshot starts it again at
 *       each rejection of a heartbeat anchored at the snapshot's index
 *       (progressMaybeDecrement aborts snapshot mode), and the follower
 *       rejects every such heartbeat it reads before the snapshot itself:
 *       those sent while the leader loads the file and those queued while
 *       it was away. Each restart loads the whole file again (109 copies
 *       of a 29 MB snapshot for one catch-up). From the moment libraft
 *       loads a snapshot for a follower (io->snapshot_get while the shim
 *       delivers that follower's rejection, or io->send of the
 *       InstallSnapshot) until the follower first answers without
 *       rejecting, the send fails, the term changes, or a deadline (a few
 *       election timeouts plus time in proportion to the snapshot's size)
 *       passes, the leader's shim turns that follower's rejections at or
 *       below the snapshot's index into contact alone (a success for index
 *       0, which moves no index), so libraft keeps waiting for the one
 *       snapshot in flight. libraft also aborts the snapshot at any tick
 *       where that follower sent nothing since the last one (#4's rule),
 *       which a follower reading a large message cannot: while the window
 *       is open and the follower was heard within an election timeout
 *       (libraft's own "online"), each leader tick first gives libraft
 *       that same contact-only result from it.
 *
 * The shim is not a raft_io itself: the embedding program (raft/node.c over
 * raft_uv; tests/stress over raft_fixture) replaces io->send, io->start,
 * io->snapshot_put (and, for #13, io->load, io->truncate and io->append)
 * with its own three-line functions that find their shim and call
 * ioshim_send / ioshim_start / ... (and, for #19, io->snapshot_get:
 * ioshim_snapshot_get) (and gives ioshim_start its tick and
 * receive entry points). The #1 and #9 checks
 * read libraft's own struct raft fields (snapshot.installing, current_term);
 * they are specific to 0.22.1, which node.c requires. */
#ifndef FLIPD_RAFT_IOSHIM_H
#define FLIPD_RAFT_IOSHIM_H

#include <stdint.h>

#include <raft.h>

#define IOSHIM_STORED            16 /* snapshots remembered for the term check */
#define IOSHIM_REPEATS           3 /* ticks an AppendEntries answer is repeated */
#define IOSHIM_ADDR              128 /* longest raft address the repeat keeps */
#define IOSHIM_PEERS             16 /* #19: followers with a snapshot in flight */
/* #19: how long a snapshot in flight keeps a follower's rejections from
 * restarting it: IOSHIM_SEND_ELECTIONS election timeouts, plus one ms per
 * IOSHIM_SEND_BYTES_PER_MS bytes of snapshot (10 MB/s), not counting the
 * ticks the follower was quiet for, and at most libraft's
 * install_snapshot_timeout after the first send */
#define IOSHIM_SEND_ELECTIONS    4
#define IOSHIM_SEND_BYTES_PER_MS 10000

/* #19: a snapshot the leader is loading or sending to follower `id` */
struct ioshim_sending
{
    raft_id id; /* 0: free slot */
    raft_term term;
    raft_index index; /* rejections at or below it wait for this one */
    raft_time until;
    raft_time heard;                   /* the follower's last real message */
    raft_time opened;                  /* the first send of this window */
    unsigned short features, capacity; /* from its last result */
    int got_result;                    /* features and capacity are known */
    unsigned gen; /* tells a send's callback whether the slot is still its */
};

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
    int (*next_load)(struct raft_io *io,
                     raft_term *term,
                     raft_id *voted_for,
                     struct raft_snapshot **snapshot,
                     raft_index *start_index,
                     struct raft_entry *entries[],
                     size_t *n_entries);
    int (*next_truncate)(struct raft_io *io, raft_index index);
    int (*next_append)(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb);
    int (*next_snapshot_put)(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb);
    int (*next_snapshot_get)(struct raft_io *io,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb);
    raft_io_recv_cb raft_recv; /* libraft's receive callback */
    raft_io_tick_cb raft_tick; /* libraft's tick callback */
    struct
    {
        raft_index index;
        raft_term term;
    } stored[IOSHIM_STORED];
    unsigned n_stored;
    unsigned local_puts;   /* local snapshot writes in progress */
    unsigned install_puts; /* installed snapshots being written */
    int has_deferred;
    struct raft_message deferred; /* owns its payload while held */
    char deferred_addr[IOSHIM_ADDR];
    const char *room_dir; /* #13: not owned; NULL = no check */
    uint64_t room_bytes;
    /* #13: the index raft_uv appends at next, as far as the shim saw it;
     * until load has run it is unknown and every truncation is checked */
    raft_index append_next;
    int append_next_known;
    /* #4: the last success answer to an AppendEntries with entries */
    int got_entries; /* the last AppendEntries received carried entries */
    int have_answer; /* `repeat` holds the last success answer sent */
    unsigned repeats_left;
    int repeat_inflight;
    struct raft_message repeat;
    char repeat_addr[IOSHIM_ADDR];
    struct raft_io_send repeat_req;
    /* #19 */
    struct ioshim_sending sending[IOSHIM_PEERS];
    unsigned sending_gen;
    /* #19: each follower's last real AppendEntries result (not the shim's) */
    struct
    {
        raft_id id; /* 0: free slot */
        raft_time at;
        unsigned short features, capacity;
        raft_time kept; /* the last tick it was kept in contact */
        int loading;    /* a load started at a tick may be for it */
    } heard[IOSHIM_PEERS];
    int in_tick;                /* libraft's tick is running */
    raft_time tick_timer_start; /* libraft's election_timer_start before it */
    raft_time last_tick;        /* when the previous tick ran */
    unsigned tick_loads;        /* loads started at a tick, not done */
    raft_index last_snapshot;   /* newest snapshot this node stored or loaded */
    /* the rejection being delivered, if any */
    const struct raft_message *rejecting;
    int closed;
    /* counters, for logs and tests */
    uint64_t n_terms_fixed;
    uint64_t n_deferred;
    uint64_t n_dropped;      /* held installs replaced by a newer one */
    uint64_t n_freed;        /* ignored installs kept (no longer leaked) */
    uint64_t n_repeats;      /* AppendEntries answers repeated */
    uint64_t n_room_checks;  /* #13: truncations whose room was checked */
    uint64_t n_installs_in;  /* InstallSnapshot messages received */
    uint64_t n_loads;        /* #19: snapshots loaded to be sent */
    uint64_t n_installs_out; /* #19: InstallSnapshot messages sent */
    uint64_t n_absorbed;     /* #19: rejections turned into contact */
    uint64_t n_kept;         /* #19: ticks a quiet follower was kept */
};

/* Remembers io's current entry points as the next layer; the caller then
 * points the ones it wraps at its own wrappers. */
void ioshim_init(struct ioshim *sh, struct raft *raft, struct raft_io *io);

int ioshim_send(struct ioshim *sh,
                struct raft_io_send *req,
                const struct raft_message *m,
                raft_io_send_cb cb);

/* `tick` and `recv` are the caller's wrappers that find the shim and call
 * ioshim_tick / ioshim_recv; libraft's own callbacks are kept. */
int ioshim_start(struct ioshim *sh,
                 unsigned msecs,
                 raft_io_tick_cb raft_tick,
                 raft_io_recv_cb raft_recv,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);

void ioshim_tick(struct ioshim *sh);

void ioshim_recv(struct ioshim *sh, struct raft_message *m);

/* #13: before each real truncation (one that removes entries), at least
 * `bytes` must be free in `dir` (which must outlive the shim), or the
 * process stops. */
void ioshim_set_room(struct ioshim *sh, const char *dir, uint64_t bytes);

int ioshim_load(struct ioshim *sh,
                raft_term *term,
                raft_id *voted_for,
                struct raft_snapshot **snapshot,
                raft_index *start_index,
                struct raft_entry *entries[],
                size_t *n_entries);

int ioshim_truncate(struct ioshim *sh, raft_index index);

int ioshim_append(struct ioshim *sh,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);

/* #13: whether io->truncate(index) removes entries, i.e. is one whose room
 * is checked. */
int ioshim_truncation_is_real(const struct ioshim *sh, raft_index index);

int ioshim_snapshot_put(struct ioshim *sh,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);

/* #19: libraft loads a snapshot to send it to a follower. */
int ioshim_snapshot_get(struct ioshim *sh,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb);

/* After raft_close has completed: frees a held message. */
void ioshim_close(struct ioshim *sh);

#endif
