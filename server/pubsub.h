/* Subscriptions: the registry, the per-subscriber state machine, and the
 * fan-out of applied changes to this node's subscribers.
 *
 * Happy path: Subscribe -> SNAPSHOT (a pinned read view streams the
 * matching flags at revision S in chunks, as the socket drains) -> CATCHUP
 * (changes after S read back from the change log, in revision order) ->
 * LIVE (each applied entry is encoded once and the same bytes are queued to
 * every matching LIVE subscriber, from the FSM observer; the server's flush
 * hook writes once per loop turn). Resume from revision F skips the
 * snapshot and starts in CATCHUP; if F is ahead of this node the
 * subscriber WAITs (bounded) for apply to reach it.
 *
 * Failure modes:
 *   - the change log no longer reaches back to the subscriber's revision
 *     (resume from an old F, or a long stall, or a snapshot install on this
 *     node): a resync snapshot, marked as such; never a silent gap;
 *   - a subscriber whose queued output passes the bound: SLOW_CONSUMER
 *     error, connection closed; it resumes from its last revision;
 *   - the node-wide --sub-budget (queued events plus estimated prefix
 *     memory) is spent: new subscriptions get UNAVAILABLE, and LIVE
 *     subscribers far behind (twice an even share) are cut as slow;
 *   - a snapshot keeps its LMDB view past --sub-snapshot-ms, or while the
 *     node wrote --sub-snapshot-pin bytes (pages LMDB cannot reuse): cut
 *     as slow, so the view and its pages are released;
 *   - F ahead of this node for longer than the wait bound: AHEAD_OF_NODE;
 *   - this node installs a raft snapshot: LIVE subscribers drop back to
 *     CATCHUP, which yields exactly the missing changes or a resync.
 *
 * What it is built from (pubsub_init): the store it reads snapshots and the
 * change log from, a view of the node (leader, leaderless time, liveness:
 * struct pubsub_node) and an output sink (struct pubsub_sink) through which
 * it talks to each subscriber's peer, an opaque pointer. It knows nothing
 * of connections or of the server: session.c's sink queues frames on a
 * connection, tests/unit/test_pubsub.c's on a plain buffer. */
#ifndef FLIP_SERVER_PUBSUB_H
#define FLIP_SERVER_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "command.pb-c.h"
#include "flip.pb-c.h"
#include "lib/buf.h"
#include "lib/queue.h"
#include "lib/trie.h"
#include "raft/fsm.h"
#include "storage/store.h"

#define PUBSUB_MAX_PREFIXES 256

/* Total prefix bytes of one subscription (F8: each prefix byte costs a
 * trie node of ~100 bytes). */
#define PUBSUB_MAX_PREFIX_BYTES 8192

struct pubsub;
struct sub;

/* The node as pubsub sees it, read each time it is needed. */
struct pubsub_node_state
{
    uint64_t leader_id;         /* 0: no leader known */
    const char *leader_address; /* its client address; NULL if none */
    uint64_t leaderless_ms;     /* how long no leader has been known */
    int live;                   /* caught up with what is committed */
    uint64_t term;
    char *cluster_id;
    uint64_t leader_commit;
    uint64_t lag;
};

struct pubsub_node
{
    void *data;
    void (*read)(void *data, struct pubsub_node_state *out);
};

/* Where subscribers' output goes. `to` is the peer handed to
 * pubsub_subscribe; every call but total() is about one peer. */
struct pubsub_sink
{
    void *data; /* for total() */
    /* Queues one response (encoding failures are the sink's to answer). */
    void (*send)(void *to, const Flip__Response *resp);
    /* Queues an error response for request `id` (0: the whole stream). */
    void (*send_error)(void *to,
                       uint64_t id,
                       Flip__Status status,
                       const char *message);
    /* Queues an encoded frame, header included. */
    void (*send_frame)(void *to, const uint8_t *frame, size_t len);
    /* False once the peer is closing: nothing queued now is sent. */
    int (*is_open)(const void *to);
    /* Bytes queued to the peer and not taken yet. */
    size_t (*backlog)(const void *to);
    /* Drops what is queued and not yet taken. */
    void (*discard)(void *to);
    /* Closes the peer (after what is queued); it later calls
     * pubsub_unsubscribe if it was attached. */
    void (*close)(void *to, const char *why);
    /* `sub` now serves the peer: it must call pubsub_drained when output
     * drains and pubsub_unsubscribe when it closes. */
    void (*attach)(void *to, struct sub *sub);
    /* The peer's id, for logs. */
    uint64_t (*id)(const void *to);
    /* Bytes queued to every subscriber of the node (the --sub-budget). */
    size_t (*total)(void *data);
};

/* The node's settings pubsub follows. */
struct pubsub_config
{
    uint64_t node_id;
    unsigned max_frame;       /* --max-frame */
    size_t sub_buffer;        /* --sub-buffer: per-subscriber bound */
    unsigned heartbeat_ms;    /* --sub-heartbeat-ms */
    size_t sub_budget;        /* --sub-budget */
    unsigned snapshot_ms;     /* --sub-snapshot-ms */
    size_t snapshot_pin;      /* --sub-snapshot-pin */
    unsigned election_ms;     /* bounds the wait for a future revision */
    uint64_t max_store_bytes; /* reported in heartbeats */
};

enum sub_state
{
    SUB_WAITING,       /* for this node to reach the client's revision */
    SUB_SNAPSHOT_WAIT, /* for a free snapshot slot */
    SUB_SNAPSHOT,      /* streaming a pinned view */
    SUB_CATCHUP,       /* reading the change log */
    SUB_LIVE           /* fed by fan-out from apply */
};

/* Snapshots streaming at once per node; more wait their turn. */
#define PUBSUB_MAX_SNAPSHOTS 512

/* Snapshot and catch-up bytes one call of pubsub_pump queues, over all
 * subscribers (it stops at the first frame boundary past it). The server
 * writes what the pump queued in the same loop turn, so this bounds the
 * turn: without it a flood of new subscribers (every client of a failed
 * node reconnecting) had one turn serve thousands of snapshots, and a
 * writer on the node waited behind them (issue 9). Measured on loopback,
 * writing costs the loop about 30 ms per MiB. */
#define PUBSUB_PUMP_TURN_BYTES (64u * 1024u)

struct sub
{
    struct pubsub *sub_ps;
    void *sub_to; /* the sink's peer; NULL once unsubscribed */
    enum sub_state sub_state;
    char **sub_prefixes; /* normalised: sorted, none covers another; owned */
    size_t sub_n_prefixes;
    uint64_t sub_rev; /* the client holds every change <= sub_rev */
    /* SNAPSHOT */
    struct store_reader *sub_reader; /* pinned view, owned */
    uint64_t sub_snap_rev;
    size_t sub_snap_prefix;    /* index of the prefix being streamed */
    struct buf sub_snap_after; /* last key sent */
    int sub_resync;
    const char *sub_wait_why; /* SNAPSHOT_WAIT: the resync reason (static) */
    uint64_t sub_deadline;    /* WAITING / SNAPSHOT deadline, uv_now ms */
    uint64_t sub_pin_mark;    /* ps->written when the view was pinned */
    size_t sub_mem;           /* estimated bytes, counted in ps->sub_mem */
    /* fan-out */
    uint64_t sub_gen;      /* dedup stamp: matched in this entry already */
    struct queue sub_link; /* in ps->subs */
    struct queue sub_pump; /* in ps->pump while it has catch-up work */
    int sub_in_pump;
    int sub_dead; /* unsubscribed; freed at the end of the loop turn */
};

struct pubsub
{
    uv_loop_t *loop;
    struct store *store;
    struct pubsub_config cfg;
    struct pubsub_node node;
    struct pubsub_sink sink;
    struct trie trie;  /* prefix -> struct sub */
    struct queue subs; /* every subscriber */
    struct queue pump; /* subscribers in SNAPSHOT/CATCHUP with work, and
                        * SNAPSHOT_WAIT: served first come, first served */
    struct queue dead; /* unsubscribed, freed once nothing uses them */
    size_t n_subs;
    size_t n_waiting; /* subscribers in SUB_WAITING */
    size_t n_readers; /* pinned read views (snapshots streaming) */
    uint64_t gen;
    struct sub **hits; /* scratch: matched subscribers of one entry */
    size_t n_hits;
    size_t cap_hits;
    struct buf scratch; /* scratch: one encoded frame */
    uv_timer_t tick;    /* heartbeats, staleness, deadlines */
    /* Active while the pump stopped at PUBSUB_PUMP_TURN_BYTES with work
     * left: the loop polls without blocking, and the next turn's pump
     * goes on. */
    uv_idle_t more;
    size_t pumped;        /* bytes queued by the pump call running */
    uint64_t n_pump_full; /* pump calls that stopped at the turn budget */
    uint64_t last_heartbeat;
    int last_stale;
    uint64_t last_leader;  /* leader id the last heartbeat named, 0 none */
    size_t bound;          /* per-subscriber output bound, bytes */
    unsigned heartbeat_ms; /* heartbeat interval */
    uint64_t n_events;     /* CHANGE frames queued, all subscribers */
    uint64_t n_encoded;    /* CHANGE frames encoded */
    uint64_t n_slow;       /* subscribers cut off as slow */
    uint64_t n_resyncs;
    size_t sub_mem;        /* estimated subscription memory (F8) */
    uint64_t written;      /* bytes applied to the store, ever (F3) */
    uint64_t n_cut_budget; /* cut off by the node-wide budget (F9) */
    uint64_t n_cut_pinned; /* snapshots cut for pinning too long (F3) */
};

/* Starts the heartbeat timer on `loop`; copies cfg, node and sink. */
void pubsub_init(struct pubsub *ps,
                 uv_loop_t *loop,
                 struct store *store,
                 const struct pubsub_config *cfg,
                 const struct pubsub_node *node,
                 const struct pubsub_sink *sink);
void pubsub_close(struct pubsub *ps);

/* Handles a Subscribe request from peer `to` (the caller owns `req`: this
 * only reads it). Replies with SubscribeResult or an error; on success the
 * sink's attach() hands the peer its struct sub. */
void pubsub_subscribe(struct pubsub *ps,
                      void *to,
                      uint64_t req_id,
                      const Flip__SubscribeRequest *req);
/* Forgets the subscriber of a closing connection. */
void pubsub_unsubscribe(struct sub *sub);

/* FSM observer hooks. */
void pubsub_on_applied(struct pubsub *ps,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes);
void pubsub_on_restored(struct pubsub *ps, uint64_t index);

/* Does snapshot / catch-up work while sockets have room, at most about
 * PUBSUB_PUMP_TURN_BYTES a call; called from the server's per-turn hook
 * before output is flushed. Work left over keeps the loop from sleeping
 * (ps->more), so the next turn's call goes on with it. */
void pubsub_pump(struct pubsub *ps);
/* The subscriber's socket drained: it may take more catch-up work. */
void pubsub_drained(struct sub *sub);
/* Heartbeats, staleness and deadlines at time `now` (uv_now ms); the timer
 * calls it every 50 ms (tests call it themselves). */
void pubsub_tick(struct pubsub *ps, uint64_t now);
/* The node names another leader, or none, at `now` (uv_now ms, the clock
 * of pubsub_tick): subscribers hear it now, not with the next regular
 * heartbeat (a change to none of a node still live: from pubsub_tick,
 * once it has lasted the grace pubsub.c gives a quick election). */
void pubsub_on_leader(struct pubsub *ps, uint64_t now);

#endif
