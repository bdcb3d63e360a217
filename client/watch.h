/* Private to the client library: the flip_watch struct, shared by
 * watch.c (start, stop, reads: any thread) and wloop.c (the watch's own
 * thread: connections, the subscription stream, failover, the
 * last-known-good file).
 *
 * Who touches what:
 *   - fixed at start, read-only after: options, endpoints' addresses,
 *     prefixes, descriptors.
 *   - `live`, `state`, `revision`: written only by the watch thread, and
 *     only while it holds `lock` for writing; read by any thread under the
 *     read lock (state and revision are also atomics, for lock-free
 *     flip_watch_state/flip_watch_revision). The watch thread reads
 *     `live` without the lock, since it is the only writer.
 *   - everything under "thread only": the watch thread alone.
 *   - `stopping`: set once by flip_watch_stop. */
#ifndef FLIP_CLIENT_WATCH_H
#define FLIP_CLIENT_WATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "client/flip.h"
#include "client/wcache.h"
#include "client/wire.h"
#include "lib/buf.h"

#define WATCH_MAX_EPS          16
#define WATCH_MSG_MAX          400
/* Bound on connect + Hello, and on sending the subscription. */
#define WATCH_CONNECT_MS       1000
/* Bound on the answer to Subscribe: a node behind us waits ~2 s before
 * answering AHEAD_OF_NODE. */
#define WATCH_SUBSCRIBE_MS     4000
#define WATCH_HEARTBEAT_MS     1000 /* assumed when a node does not say */
#define WATCH_BACKOFF_MIN_MS   50
#define WATCH_BACKOFF_MAX_MS   1000
#define WATCH_LKG_EVERY_MS     200 /* debounce of last-known-good writes */
/* ... when only the revision moved (heartbeats of a quiet prefix) */
#define WATCH_LKG_REV_EVERY_MS 5000
/* A node that reported itself stale is avoided this long. */
#define WATCH_STALE_MARK_MS    10000
/* While attached to a stale node: ask another node's status, first after
 * PROBE_MIN, then doubling up to PROBE_MAX between asks. */
#define WATCH_PROBE_MIN_MS     250
#define WATCH_PROBE_MAX_MS     4000
#define WATCH_PROBE_CALL_MS    1000
/* A probed follower counts as "has a leader" if it heard from it within
 * this long. */
#define WATCH_PROBE_CONTACT_MS 1000
/* Rounds in which every endpoint answered AHEAD_OF_NODE before the watch
 * gives up its revision and takes a fresh snapshot. */
#define WATCH_AHEAD_ROUNDS     2
/* Voluntary switches (leaving a stale node for one that knows a leader)
 * are spaced: the first at once, each next one at least SWITCH_MIN ms
 * after the previous, doubling up to SWITCH_MAX; a switch more than
 * SWITCH_CALM ms after the previous one starts over. */
#define WATCH_SWITCH_MIN_MS    50
#define WATCH_SWITCH_MAX_MS    1000
#define WATCH_SWITCH_CALM_MS   10000

/* What the last-known-good file lacks (flip_watch.lkg_dirty). */
enum
{
    WATCH_LKG_CLEAN = 0,
    WATCH_LKG_REVISION, /* only a later revision (from a heartbeat) */
    WATCH_LKG_DATA      /* flags changed */
};

struct flip_watch
{
    /* ---- fixed at start ---- */
    struct wire eps[WATCH_MAX_EPS]; /* subscription connections; only the
                                     * watch thread uses them */
    size_t n_eps;
    char *name;
    struct wprefixes prefixes;
    char *cache_path; /* NULL: no last-known-good file */
    int cache_readonly;
    unsigned stale_after_opt; /* 0: 3 heartbeats */
    void (*on_event)(void *data, const struct flip_watch_event *ev);
    void *data;
    int stop_fd;   /* eventfd, readable once flip_watch_stop began */
    int notify_fd; /* eventfd, readable when the copy or state changed */
    pthread_t thread;
    atomic_int stopping;

    /* ---- shared with readers ---- */
    pthread_rwlock_t lock;
    struct wcache live;
    atomic_int state;          /* enum flip_watch_state */
    _Atomic uint64_t revision; /* == live.revision */

    /* ---- thread only ---- */
    int has_state; /* live.revision is a valid resume point */
    /* The copy is the state at every revision from exact_from to
     * live.revision: the revision of its last change or snapshot (or what
     * it was loaded at); heartbeats move live.revision alone. */
    uint64_t exact_from;
    int complete; /* live is every matching flag at live.revision (not
                   * just the changes after options.from_revision) */
    /* The snapshot being received, swapped into `live` at its end. */
    struct wcache staging;
    int in_snapshot;
    int snap_resync;
    uint64_t snap_rev;
    /* The current session. */
    size_t cur;       /* endpoint in use or last tried */
    size_t next_pick; /* endpoint to try next, or WATCH_MAX_EPS: rotate */
    /* The session's copy follows the node: set by the node's first
     * heartbeat, which it sends once the snapshot and catch-up are done. */
    int synced;
    uint64_t sess_from; /* from_revision of the session; 0: none */
    int sess_ahead;     /* the node answered AHEAD_OF_NODE */
    /* The node's cluster id from its SubscribeResult or heartbeats ("":
     * not said), and whether the next snapshot replaces a state of
     * another cluster (a resync whatever the node says). */
    char sess_cid[WCACHE_CLUSTER_ID_MAX + 1];
    int cluster_reset;
    int node_stale; /* the node's last heartbeat said stale */
    unsigned heartbeat_ms;
    unsigned stale_after_ms;
    int64_t last_frame;
    int64_t probe_at; /* 0: not probing */
    unsigned probe_ms;
    size_t probe_next;
    /* Rounds over every endpoint. */
    uint32_t tried; /* bit i: endpoint i tried in this round */
    size_t round_failures;
    size_t round_ahead;
    unsigned ahead_rounds;
    unsigned backoff_ms;
    uint64_t rng;
    int64_t stale_mark[WATCH_MAX_EPS]; /* when it said stale */
    /* Voluntary switches: when the last one happened (0: never), and the
     * least time before the next one. */
    int64_t last_switch;
    unsigned switch_gap_ms;
    char last_err[WATCH_MAX_EPS][WATCH_MSG_MAX]; /* last notice per node */
    /* Last-known-good file. */
    int lkg_dirty; /* WATCH_LKG_* */
    int64_t lkg_saved_at;
    char lkg_err[WATCH_MSG_MAX]; /* last write failure reported */
    struct buf lkg_buf;
    char start_notice[WATCH_MSG_MAX]; /* from loading, sent first */
};

/* ---- watch.c, for the thread ---- */

/* Calls on_event (if any) with the current state filled in. */
void watch_emit(struct flip_watch *w, struct flip_watch_event *ev);
/* Emits a FLIP_EV_NOTICE. */
void watch_notice(struct flip_watch *w, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Changes the state (under the write lock), wakes flip_watch_fd and emits
 * FLIP_EV_STATE; nothing when the state is unchanged. */
void watch_set_state(struct flip_watch *w,
                     enum flip_watch_state st,
                     const char *node,
                     const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
/* Makes flip_watch_fd readable. */
void watch_notify(struct flip_watch *w);
/* Takes and releases the write lock around changes to `live`. */
void watch_lock(struct flip_watch *w);
void watch_unlock(struct flip_watch *w);

/* ---- wloop.c ---- */

/* The watch thread's body; arg is the watch. */
void *wloop_main(void *arg);

#endif
