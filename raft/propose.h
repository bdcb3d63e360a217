/* Leader side of writes and linearizable reads.
 *
 * A proposal is one client change. Changes submitted during one loop turn
 * are grouped into one log entry (group commit: one append and one fsync
 * for many writes), at most PROPOSE_BATCH_MAX per entry and never two
 * changes to the same key in one entry (every change in an entry gets the
 * entry's index as its revision). The entry is stamped with the leader's
 * clock and the node's identity, so apply stays deterministic. Outcomes
 * come from the FSM observer (propose_on_applied) and are reported when
 * libraft's apply callback fires, one loop turn later.
 *
 * Matching an applied entry to its proposal: every entry carries
 * (origin_node, origin_incarnation, origin_seq), where the incarnation is
 * random per process, and a batch matches only the entry at the raft
 * index libraft gave it. A restarted process can therefore never take an
 * entry of its previous life, or another entry at the same index, for its
 * own.
 *
 * Every entry is built from validated fields only (the value is copied
 * member by member, the request id into fixed storage): nothing a client
 * sent passes through into the log as raw bytes.
 *
 * Read barriers are coalesced: one raft_barrier in flight serves every read
 * that was waiting when it was issued; reads arriving meanwhile wait for
 * the next one. A barrier commits an entry of the current term, so after it
 * the leader's applied state includes every acknowledged write.
 *
 * Ownership: proposals and barrier waiters are owned by the caller and must
 * stay alive until their callback fires; callbacks always fire exactly once
 * (with FLIP_LEADERSHIPLOST when raft closes), never from inside the call
 * that submitted them. */
#ifndef FLIP_RAFT_PROPOSE_H
#define FLIP_RAFT_PROPOSE_H

#include <stdint.h>

#include <raft.h>

#include "command.pb-c.h"
#include "fsm.h"
#include "lib/queue.h"
#include "proto/codec.h"

struct proposal;
typedef void (*proposal_cb)(struct proposal *p, int status);

#define PROPOSE_BATCH_MAX 128

struct propose_batch;

struct proposal
{
    void *data;             /* caller's */
    Flipcmd__Change change; /* copy; strings point into the caller's request */
    Flip__Value value;      /* validated members of the request's value */
    Flip__RequestId rid;    /* the request id, when the client sent one */
    uint8_t rid_client[16];
    char actor[CODEC_ACTOR_MAX + 1]; /* copied: may live in the connection */
    struct fsm_outcome outcome;      /* valid when status == FLIP_OK */
    int have_outcome;
    proposal_cb cb;
};

struct read_wait;
typedef void (*read_wait_cb)(struct read_wait *w, int status);

struct read_wait
{
    void *data; /* caller's */
    struct queue link;
    read_wait_cb cb;
};

/* The deferred work propose.c asks its host to schedule. */
enum propose_timer
{
    PROPOSE_FLUSH, /* at the end of this loop turn, after I/O: the open
                      batch goes out (libuv: check phase) */
    PROPOSE_DEFER, /* early in the next loop turn (libuv: idle) */
    PROPOSE_NUDGE, /* after delay_ms */
    PROPOSE_LIMBO, /* after delay_ms */
    PROPOSE_N_TIMERS
};

/* What propose.c needs from its host (flipd's: raft/propose_uv.c; the
 * stress's: tests/stress). The host (the caller of
 * propose_init) owns this struct and whatever implements it, keeps both
 * alive until propose_close has returned, and runs everything on the
 * thread that calls propose_*. */
struct propose_env
{
    struct raft *raft;    /* entries and barriers go here */
    uint64_t id;          /* this server's raft id: the origin of its entries */
    uint64_t limbo_ms;    /* how long a batch waits in limbo (see propose.c) */
    uint64_t incarnation; /* 0: a random one (production); else this value,
                             for a deterministic test run */
    void *data;           /* the host's, passed to every callback */
    /* Monotonic milliseconds; wall-clock milliseconds stamped into entries
     * (the FSM's time: apply stays deterministic). */
    uint64_t (*now)(void *data);
    int64_t (*wall_ms)(void *data);
    /* Schedule one propose_fire(pr, t); arming an armed timer restarts it.
     * Never fires from inside arm. delay_ms only counts for NUDGE/LIMBO. */
    void (*arm)(void *data, enum propose_timer t, uint64_t delay_ms);
    void (*disarm)(void *data, enum propose_timer t);
    /* 1 while the node stops: no new entries, reads or nudges. */
    int (*closing)(void *data);
    /* 1 inside raft_close (callbacks fire synchronously there): nothing
     * may be started on raft and nothing parked in limbo. */
    int (*raft_closing)(void *data);
    /* Last call of propose_close: the host may release its timers. */
    void (*release)(void *data);
    /* raft_apply failed after libraft took the entry (see batch_propose):
     * NULL (production) aborts the process, the only clean state. A test
     * host may record it and return; the batch is then answered
     * FLIP_LEADERSHIPLOST (outcome unknown). */
    void (*fatal)(void *data, int raft_rv);
};

struct propose
{
    struct propose_env env;
    uint64_t seq;
    uint64_t incarnation;     /* random per process: see the top of this file */
    uint64_t restored;        /* highest index a snapshot install covered */
    uint64_t max_store_bytes; /* stamped into every entry (0: none) */
    uint64_t changelog_keep;
    struct queue pending;       /* batches raft owns, submit order */
    struct propose_batch *open; /* collecting this loop turn, or NULL */
    uint64_t n_entries;         /* entries proposed */
    struct queue limbo; /* batches whose leader was lost before commit */
    size_t n_limbo;
    int limbo_armed;
    int closed;
    uint64_t n_changes; /* changes proposed */
    struct raft_barrier barrier;
    int barrier_inflight;
    struct queue served; /* waiters the in-flight barrier answers */
    struct queue next;   /* waiters for the next barrier */
    /* Commit nudge: followers learn a new commit index only from the next
     * AppendEntries, i.e. up to a heartbeat later when writes are sparse.
     * After the leader applies an entry with nothing behind it, a barrier
     * entry goes out at once carrying the new commit index, so followers
     * apply (and notify their subscribers) within a round trip. */
    struct raft_barrier nudge;
    int nudge_inflight;
    int nudge_armed;
    uint64_t n_nudges;
    struct queue failed; /* read waiters to fail on the next turn */
    int failed_status;
};

/* `env` is copied. */
void propose_init(struct propose *pr,
                  const struct propose_env *env,
                  uint64_t keep);
/* After raft has closed (every apply callback has fired): answers what
 * is still open or in limbo, disarms every timer, then env->release. */
void propose_close(struct propose *pr);

/* The host's side of env->arm: runs timer `t`. */
void propose_fire(struct propose *pr, enum propose_timer t);

/* Proposes one change. On FLIP_OK the proposal is propose.c's until p->cb fires
 * with FLIP_OK (see p->outcome), FLIP_LEADERSHIPLOST (outcome unknown),
 * FLIP_NOSPACE or FLIP_IOERR. On any other return (FLIP_NOTLEADER,
 * FLIP_NOMEM, FLIP_NOSPACE, FLIP_BUSY) nothing was proposed and cb will not
 * fire. `change` is only read during the call. */
int propose_submit(struct propose *pr,
                   struct proposal *p,
                   const Flipcmd__Change *change,
                   proposal_cb cb);

/* Queues a linearizable read. FLIP_NOTLEADER when not leader (cb will not
 * fire); otherwise cb fires with FLIP_OK once the local state is current,
 * or an error if leadership is lost first. */
int propose_read(struct propose *pr, struct read_wait *w, read_wait_cb cb);

/* True while some proposal has no answer yet: proposed and not applied,
 * or waiting after a leadership loss to learn whether its entry committed
 * anyway (see propose.c, limbo). A planned stop waits for it. */
int propose_outstanding(const struct propose *pr);

/* Sends an armed commit nudge now instead of after its coalescing delay.
 * For a leader about to spend a while writing its own subscribers' events:
 * its followers learn the commit first and fan out in parallel. Only
 * outside libraft's callbacks (the loop's prepare phase). */
void propose_nudge_now(struct propose *pr);

/* Observer hook: a snapshot replaced the store at `index`. A batch in limbo
 * whose entry it covers cannot learn its outcome from apply: it is
 * answered "outcome unknown" (the client's retry with the same request id
 * then gets the real one), never "not applied". */
void propose_on_restored(struct propose *pr, uint64_t index);

/* Observer hook: call from the FSM observer for every applied entry. */
void propose_on_applied(struct propose *pr,
                        uint64_t index,
                        const Flipcmd__Command *cmd,
                        const struct fsm_outcome *outcomes);

#endif
