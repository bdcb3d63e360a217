/* Subscriptions; see pubsub.h for the state machine and failure modes. */
#include "pubsub.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/status.h"
#include "storage/flags.h"

#define PUMP_CHUNK      (256u * 1024u) /* queue this much, then wait to drain */
#define SCAN_ROWS       256            /* rows per store scan in the pump */
#define WAIT_MIN_MS     2000           /* bound on waiting for a future F */
#define TICK_MS         50
#define REVISION_ABSURD (UINT64_C(1) << 62)

/* Snapshot and catch-up queue at most this much before waiting for the
 * socket to drain, so they stay well inside the slow-consumer bound. */
static size_t pump_limit(const struct pubsub *ps)
{
    return ps->bound / 2 < PUMP_CHUNK ? ps->bound / 2 : PUMP_CHUNK;
}

/* ---- the sink ------------------------------------------------------------ */

static void sink_close(struct sub *sub, const char *why)
{
    struct pubsub *ps = sub->sub_ps;
    ps->sink.close(sub->sub_to, why);
}

static size_t sink_backlog(const struct sub *sub)
{
    const struct pubsub *ps = sub->sub_ps;
    return ps->sink.backlog(sub->sub_to);
}

static void sink_error(struct sub *sub,
                       uint64_t id,
                       Flip__Status status,
                       const char *message)
{
    struct pubsub *ps = sub->sub_ps;
    ps->sink.send_error(sub->sub_to, id, status, message);
}

/* This pump call queued its share of the loop turn (pubsub.h). */
static int pump_spent(const struct pubsub *ps)
{
    return ps->pumped >= PUBSUB_PUMP_TURN_BYTES;
}

/* A scan stops once the socket has enough or the turn has its share. */
static int pump_full(const struct sub *sub)
{
    return sink_backlog(sub) >= pump_limit(sub->sub_ps) ||
           pump_spent(sub->sub_ps);
}

/* ---- encoding ------------------------------------------------------------ */

/* Encodes one event frame into ps->scratch; FLIP_OK, FLIP_TOOBIG when the
 * frame would pass --max-frame (events obey the limit like every response:
 * a client enforces it on what it reads), or FLIP_NOMEM. */
static int encode_event(struct pubsub *ps, const Flip__Event *ev)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;

    resp.result_case = FLIP__RESPONSE__RESULT_EVENT;
    resp.event = (Flip__Event *)(uintptr_t)ev;
    buf_reset(&ps->scratch);
    return codec_response_encode(&resp, ps->cfg.max_frame, &ps->scratch);
}

/* Why a subscriber is resynced instead of sent one CHANGE: the changes of
 * one raft entry (up to PROPOSE_BATCH_MAX of them, each up to 64 KiB) can
 * together pass the frame limit, while one flag always fits (--max-frame
 * is at least CODEC_FRAME_MIN). A snapshot taken now holds the state at or
 * after that revision, one flag per frame, so nothing is skipped. */
static const char resync_too_large[] =
    "the changes of one revision do not fit in a frame (--max-frame)";

/* Cuts a subscriber off with SLOW_CONSUMER; `why` says which bound (NULL:
 * its own output bound). */
static void slow_consumer(struct sub *sub, const char *why)
{
    struct pubsub *ps = sub->sub_ps;
    void *to = sub->sub_to;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__Error err = FLIP__ERROR__INIT;
    char msg[200];

    sub->sub_ps->n_slow++;
    if (why != NULL) {
        snprintf(msg, sizeof msg, "%s; resume from your last revision", why);
    } else {
        snprintf(msg, sizeof msg,
                 "subscriber fell more than %zu bytes behind; resume from "
                 "your last revision",
                 sub->sub_ps->bound);
    }
    /* Drop what it has not taken: the error is all it needs now. */
    ps->sink.discard(to);
    resp.has_id = 1; /* 0: connection level, like every such error */
    err.has_status = 1;
    err.status = FLIP__STATUS__SLOW_CONSUMER;
    err.message = msg;
    err.has_resume_revision = 1;
    err.resume_revision = sub->sub_rev;
    resp.error = &err;
    ps->sink.send(to, &resp);
    ps->sink.close(to, why != NULL ? why : "slow subscriber cut off");
}

/* Queues the frame in ps->scratch to `sub`; enforces the output bound.
 * Returns 0 if the subscriber was cut off. */
static int deliver(struct sub *sub)
{
    struct pubsub *ps = sub->sub_ps;
    void *to = sub->sub_to;

    ps->sink.send_frame(to, buf_head(&ps->scratch), buf_len(&ps->scratch));
    ps->pumped += buf_len(&ps->scratch); /* pubsub_pump resets it */
    if (!ps->sink.is_open(to)) {
        return 0;
    }
    /* Only LIVE output is pushed regardless of the reader's pace; the pump
     * limits itself (pump_limit). */
    if (sub->sub_state == SUB_LIVE && ps->sink.backlog(to) > ps->bound) {
        slow_consumer(sub, NULL);
        return 0;
    }
    /* F9: the node-wide budget. When it is spent, whoever holds more
     * than twice an even share of it goes (the largest backlogs are the
     * stalled readers); a subscriber that keeps up holds a frame or two and
     * stays. The total stays under about twice the budget. */
    if (sub->sub_state == SUB_LIVE &&
        ps->sink.total(ps->sink.data) + ps->sub_mem > ps->cfg.sub_budget &&
        ps->sink.backlog(to) >= pump_limit(ps) &&
        ps->sink.backlog(to) > 2 * (ps->cfg.sub_budget / ps->n_subs)) {
        ps->n_cut_budget++;
        slow_consumer(sub, "the node's subscriber output budget is spent");
        return 0;
    }
    return 1;
}

static int send_simple(struct sub *sub,
                       Flip__EventType type,
                       uint64_t revision,
                       int resync,
                       const char *reason)
{
    Flip__Event ev = FLIP__EVENT__INIT;

    ev.has_type = 1;
    ev.type = type;
    ev.has_revision = 1;
    ev.revision = revision;
    if (resync) {
        ev.has_resync = 1;
        ev.resync = 1;
        ev.reason = (char *)(uintptr_t)reason;
    }
    if (encode_event(sub->sub_ps, &ev) != FLIP_OK) {
        sink_close(sub, "cannot encode event");
        return 0;
    }
    return deliver(sub);
}

/* ---- matching ------------------------------------------------------------ */

static int sub_matches(const struct sub *sub, const char *key)
{
    for (size_t i = 0; i < sub->sub_n_prefixes; i++) {
        size_t n = strlen(sub->sub_prefixes[i]);
        if (strncmp(key, sub->sub_prefixes[i], n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, removes duplicates and prefixes covered by a shorter one, so the
 * snapshot scans disjoint key ranges and each key matches once. */
static void normalise(char **p, size_t *n)
{
    size_t out = 0;

    qsort(p, *n, sizeof *p, cmp_str);
    for (size_t i = 0; i < *n; i++) {
        if (out > 0 && strncmp(p[i], p[out - 1], strlen(p[out - 1])) == 0) {
            flip_free(p[i]); /* covered by p[out - 1] */
            continue;
        }
        p[out++] = p[i];
    }
    *n = out;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void pump_add(struct sub *sub)
{
    if (!sub->sub_in_pump) {
        queue_insert_tail(&sub->sub_ps->pump, &sub->sub_pump);
        sub->sub_in_pump = 1;
    }
}

static void pump_del(struct sub *sub)
{
    if (sub->sub_in_pump) {
        queue_remove(&sub->sub_pump);
        sub->sub_in_pump = 0;
    }
}

static void sub_free(struct sub *sub)
{
    sub->sub_ps->sub_mem -= sub->sub_mem;
    if (sub->sub_reader != NULL) {
        sub->sub_ps->n_readers--;
    }
    for (size_t i = 0; i < sub->sub_n_prefixes; i++) {
        flip_free(sub->sub_prefixes[i]);
    }
    flip_free(sub->sub_prefixes);
    store_reader_close(sub->sub_reader);
    buf_close(&sub->sub_snap_after);
    flip_free(sub);
}

/* The subscriber may be in the middle of a scan or a fan-out loop when its
 * connection closes, so it is only unlinked here and freed later. */
void pubsub_unsubscribe(struct sub *sub)
{
    struct pubsub *ps = sub->sub_ps;

    for (size_t i = 0; i < sub->sub_n_prefixes; i++) {
        trie_remove(&ps->trie, sub->sub_prefixes[i],
                    strlen(sub->sub_prefixes[i]), sub);
    }
    pump_del(sub);
    queue_remove(&sub->sub_link);
    ps->n_subs--;
    if (sub->sub_state == SUB_WAITING) {
        ps->n_waiting--;
    }
    sub->sub_dead = 1;
    sub->sub_to = NULL;
    queue_insert_tail(&ps->dead, &sub->sub_link);
}

static void reap_dead(struct pubsub *ps)
{
    while (!queue_empty(&ps->dead)) {
        struct queue *e = queue_head(&ps->dead);
        queue_remove(e);
        sub_free(CONTAINER_OF(e, struct sub, sub_link));
    }
}

static struct store *store_of(struct pubsub *ps)
{
    return ps->store;
}

/* Starts a (re)snapshot at the store's current state. */
static int start_snapshot(struct sub *sub, int resync, const char *why)
{
    struct pubsub *ps = sub->sub_ps;
    int rv;

    if (sub->sub_reader != NULL) {
        ps->n_readers--;
    }
    store_reader_close(sub->sub_reader);
    sub->sub_reader = NULL;
    if (ps->n_readers >= PUBSUB_MAX_SNAPSHOTS) {
        /* Too many snapshots streaming (a failed node's clients all
         * arrived at once): queue this one; the pump opens it later. */
        sub->sub_state = SUB_SNAPSHOT_WAIT;
        sub->sub_resync = resync;
        sub->sub_wait_why = why;
        pump_add(sub);
        return 1;
    }
    rv = store_reader_open(store_of(ps), &sub->sub_reader);
    if (rv == FLIP_BUSY) {
        sub->sub_state = SUB_SNAPSHOT_WAIT;
        sub->sub_resync = resync;
        sub->sub_wait_why = why;
        pump_add(sub);
        return 1;
    }
    if (rv != FLIP_OK) {
        sink_error(sub, 0, FLIP__STATUS__UNAVAILABLE,
                   "cannot open a read view for a snapshot; retry");
        sink_close(sub, "cannot open a read view for a snapshot");
        return 0;
    }
    ps->n_readers++;
    sub->sub_state = SUB_SNAPSHOT;
    sub->sub_snap_rev = store_reader_applied(sub->sub_reader);
    sub->sub_snap_prefix = 0;
    buf_reset(&sub->sub_snap_after);
    sub->sub_resync = resync;
    sub->sub_deadline = uv_now(ps->loop) + ps->cfg.snapshot_ms;
    sub->sub_pin_mark = ps->written;
    if (resync) {
        ps->n_resyncs++;
        flip_infof("pubsub: resync for conn %llu at revision %llu: %s",
                   (unsigned long long)ps->sink.id(sub->sub_to),
                   (unsigned long long)sub->sub_snap_rev, why);
    }
    pump_add(sub);
    return send_simple(sub, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, sub->sub_snap_rev,
                       resync, why);
}

static int encode_heartbeat(struct pubsub *ps);

static void start_catchup(struct sub *sub)
{
    sub->sub_state = SUB_CATCHUP;
    pump_add(sub);
}

/* ---- snapshot streaming -------------------------------------------------- */

struct snap_ctx
{
    struct sub *sub;
    int alive;
};

static int snap_visit(void *arg, const struct flags_row *row)
{
    struct snap_ctx *sc = arg;
    struct sub *sub = sc->sub;
    Flip__Flag *flag = NULL;
    Flip__Flag *flags[1];
    Flip__Event ev = FLIP__EVENT__INIT;
    int rv;

    rv = flags_row_decode(row, &flag);
    if (rv == FLIP_CORRUPT) {
        flip_errorf("pubsub: a stored record does not decode; skipped");
        return 0;
    }
    if (rv != FLIP_OK) {
        sc->alive = 0;
        sink_close(sub, "out of memory");
        return 1;
    }
    flags[0] = flag;
    ev.has_type = 1;
    ev.type = FLIP__EVENT_TYPE__SNAPSHOT_ITEM;
    ev.has_revision = 1;
    ev.revision = sub->sub_snap_rev;
    ev.n_flags = 1;
    ev.flags = flags;
    rv = encode_event(sub->sub_ps, &ev);
    flags_free(flag);
    if (rv != FLIP_OK) {
        /* one flag always fits a frame (CODEC_FRAME_MIN): out of memory */
        sc->alive = 0;
        sink_close(sub, "cannot encode a snapshot item");
        return 1;
    }
    if (!deliver(sub)) {
        sc->alive = 0;
        return 1;
    }
    buf_reset(&sub->sub_snap_after);
    if (buf_append(&sub->sub_snap_after, row->key, row->klen) != FLIP_OK) {
        sc->alive = 0;
        sink_close(sub, "out of memory");
        return 1;
    }
    return pump_full(sub);
}

/* Streams snapshot items until the socket or the turn is full; 1 while
 * alive. */
static int pump_snapshot(struct sub *sub)
{
    struct snap_ctx sc = { sub, 1 };

    while (sub->sub_snap_prefix < sub->sub_n_prefixes) {
        const char *prefix = sub->sub_prefixes[sub->sub_snap_prefix];
        int more = 0;
        int rv = flags_reader_scan(
            sub->sub_reader, prefix,
            buf_len(&sub->sub_snap_after) > 0
                ? (const char *)buf_head(&sub->sub_snap_after)
                : NULL,
            buf_len(&sub->sub_snap_after), SCAN_ROWS, snap_visit, &sc, &more);
        if (!sc.alive) {
            return 0;
        }
        if (rv != FLIP_OK) {
            sink_close(sub, "snapshot read failed");
            return 0;
        }
        if (more) {
            if (pump_full(sub)) {
                return 1; /* wait for the socket to drain, or a turn */
            }
            continue;
        }
        sub->sub_snap_prefix++;
        buf_reset(&sub->sub_snap_after);
    }
    store_reader_close(sub->sub_reader);
    sub->sub_reader = NULL;
    sub->sub_ps->n_readers--;
    if (!send_simple(sub, FLIP__EVENT_TYPE__SNAPSHOT_END, sub->sub_snap_rev, 0,
                     NULL)) {
        return 0;
    }
    sub->sub_rev = sub->sub_snap_rev;
    start_catchup(sub);
    return 1;
}

/* ---- catch-up from the change log ---------------------------------------- */

struct catchup_ctx
{
    struct sub *sub;
    uint64_t group_rev; /* revision of the rows collected */
    Flip__Flag **group; /* matching rows of group_rev; owned */
    size_t n_group;
    size_t cap_group;
    size_t rows;
    int alive;
    int stopped_early;
    int too_large; /* group_rev's CHANGE passes the frame limit */
};

static void group_clear(struct catchup_ctx *cc)
{
    for (size_t i = 0; i < cc->n_group; i++) {
        flags_free(cc->group[i]);
    }
    cc->n_group = 0;
}

/* Sends the collected rows of group_rev as one CHANGE event. */
static int group_flush(struct catchup_ctx *cc)
{
    struct sub *sub = cc->sub;
    Flip__Event ev = FLIP__EVENT__INIT;
    int rv;

    if (cc->group_rev == 0) {
        return 1;
    }
    if (cc->n_group > 0) {
        ev.has_type = 1;
        ev.type = FLIP__EVENT_TYPE__CHANGE;
        ev.has_revision = 1;
        ev.revision = cc->group_rev;
        ev.n_flags = cc->n_group;
        ev.flags = cc->group;
        rv = encode_event(sub->sub_ps, &ev);
        group_clear(cc);
        if (rv == FLIP_TOOBIG) {
            cc->too_large = 1; /* pump_catchup resyncs once the scan ends */
            return 0;
        }
        if (rv != FLIP_OK) {
            cc->alive = 0;
            sink_close(sub, "cannot encode a change event");
            return 0;
        }
        if (!deliver(sub)) {
            cc->alive = 0;
            return 0;
        }
    }
    sub->sub_rev = cc->group_rev;
    return 1;
}

static int catchup_visit(void *arg, const struct flags_row *row)
{
    struct catchup_ctx *cc = arg;
    Flip__Flag *flag = NULL;

    if (row->revision != cc->group_rev) {
        if (!group_flush(cc)) {
            return 1;
        }
        /* stop at a revision boundary once the socket has enough */
        if (cc->rows >= SCAN_ROWS || pump_full(cc->sub)) {
            cc->stopped_early = 1;
            return 1;
        }
        cc->group_rev = row->revision;
    }
    cc->rows++;
    if (flags_row_decode(row, &flag) != FLIP_OK) {
        flip_errorf("pubsub: a change-log row does not decode; skipped");
        return 0;
    }
    if (flag->key == NULL || !sub_matches(cc->sub, flag->key)) {
        flags_free(flag);
        return 0;
    }
    if (cc->n_group == cc->cap_group) {
        size_t cap = cc->cap_group == 0 ? 8 : cc->cap_group * 2;
        Flip__Flag **grown = flip_realloc(cc->group, cap * sizeof *grown);
        if (grown == NULL) {
            /* dropping a row would be a silent gap: cut the subscriber */
            flags_free(flag);
            cc->alive = 0;
            sink_close(cc->sub, "out of memory during catch-up");
            return 1;
        }
        cc->group = grown;
        cc->cap_group = cap;
    }
    cc->group[cc->n_group++] = flag; /* a deletion reads as deleted */
    return 0;
}

/* Sends logged changes after sub_rev until caught up or the socket is
 * full; 1 while alive. */
static int pump_catchup(struct sub *sub)
{
    struct store *st = store_of(sub->sub_ps);

    for (;;) {
        struct catchup_ctx cc;
        int rv;

        if (store_compacted(st) > sub->sub_rev) {
            return start_snapshot(sub, 1,
                                  "the change log no longer reaches back to "
                                  "your revision");
        }
        memset(&cc, 0, sizeof cc);
        cc.sub = sub;
        cc.alive = 1;
        rv = changes_after(st, sub->sub_rev, catchup_visit, &cc);
        if (cc.alive && !cc.stopped_early && !cc.too_large && rv == FLIP_OK) {
            group_flush(&cc); /* the last revision of the log */
        }
        group_clear(&cc);
        flip_free(cc.group);
        if (!cc.alive) {
            return 0;
        }
        if (cc.too_large) {
            return start_snapshot(sub, 1, resync_too_large);
        }
        if (rv == FLIP_BUSY) {
            return 1; /* no reader slot free now; the pump retries */
        }
        if (rv != FLIP_OK) {
            sink_error(sub, 0, FLIP__STATUS__UNAVAILABLE,
                       "change log read failed; retry");
            sink_close(sub, "change log read failed");
            return 0;
        }
        if (cc.stopped_early) {
            if (pump_full(sub)) {
                return 1;
            }
            continue;
        }
        /* Caught up: nothing after sub_rev is unsent. Entries that changed
         * nothing this subscriber watches move it forward too. */
        if (store_applied_index(st) > sub->sub_rev) {
            sub->sub_rev = store_applied_index(st);
        }
        sub->sub_state = SUB_LIVE;
        pump_del(sub);
        if (encode_heartbeat(sub->sub_ps) == FLIP_OK) {
            return deliver(sub);
        }
        return 1;
    }
}

static void more_work(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from sleeping: the pump runs next */
}

void pubsub_pump(struct pubsub *ps)
{
    struct queue *e;
    struct queue *next;
    int spent = 0;

    ps->pumped = 0;
    /* First come, first served, each to the end of its snapshot or its
     * socket's room: a started snapshot finishes before the next opens,
     * so few read views are open and the earliest subscribers go live
     * first. */
    for (e = ps->pump.next; e != &ps->pump; e = next) {
        struct sub *sub = CONTAINER_OF(e, struct sub, sub_pump);
        next = e->next;
        if (pump_spent(ps)) {
            spent = 1;
            break;
        }
        if (sink_backlog(sub) >= pump_limit(sub->sub_ps)) {
            continue; /* pubsub_drained brings it back */
        }
        /* a callback below may free `sub`, and with it the next entry's
         * owner cannot change: only `sub` itself is touched */
        if (sub->sub_state == SUB_SNAPSHOT_WAIT) {
            if (ps->n_readers < PUBSUB_MAX_SNAPSHOTS &&
                start_snapshot(sub, sub->sub_resync, sub->sub_wait_why) &&
                sub->sub_state == SUB_SNAPSHOT) {
                pump_snapshot(sub); /* BEGIN and the items in one write */
            }
        } else if (sub->sub_state == SUB_SNAPSHOT) {
            pump_snapshot(sub);
        } else if (sub->sub_state == SUB_CATCHUP) {
            pump_catchup(sub);
        } else {
            pump_del(sub);
        }
    }
    /* the share ran out on the last one in line: it has more to send */
    if (pump_spent(ps) && !queue_empty(&ps->pump)) {
        spent = 1;
    }
    if (spent && !uv_is_closing((uv_handle_t *)&ps->more)) {
        ps->n_pump_full++;
        uv_idle_start(&ps->more, more_work);
    } else {
        uv_idle_stop(&ps->more);
    }
    reap_dead(ps);
}

void pubsub_drained(struct sub *sub)
{
    if (sub->sub_state == SUB_SNAPSHOT || sub->sub_state == SUB_CATCHUP) {
        pump_add(sub);
    }
}

/* ---- subscribe ----------------------------------------------------------- */

static int reply_subscribed(struct pubsub *ps, void *to, uint64_t id)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__SubscribeResult res = FLIP__SUBSCRIBE_RESULT__INIT;
    struct pubsub_node_state ns;

    ps->node.read(ps->node.data, &ns);
    resp.has_id = 1;
    resp.id = id;
    res.has_node_id = 1;
    res.node_id = ps->cfg.node_id;
    res.has_applied_revision = 1;
    res.applied_revision = store_applied_index(store_of(ps));
    res.has_heartbeat_ms = 1;
    res.heartbeat_ms = ps->heartbeat_ms;
    res.cluster_id = ns.cluster_id;
    resp.result_case = FLIP__RESPONSE__RESULT_SUBSCRIBE;
    resp.subscribe = &res;
    ps->sink.send(to, &resp);
    return ps->sink.is_open(to);
}

/* Validates and copies the prefixes; FLIP_OK or an error with *why. */
static int copy_prefixes(const Flip__SubscribeRequest *req,
                         struct sub *sub,
                         const char **why)
{
    size_t n = req->n_prefixes;
    size_t bytes = 0;
    const char *err = NULL;

    if (n > PUBSUB_MAX_PREFIXES) {
        *why = "at most 256 prefixes per subscription";
        return FLIP_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (codec_check_prefix(req->prefixes[i], &err) != FLIP_OK) {
            *why =
                "prefixes are literal key prefixes of at most 256 bytes of "
                "A-Z a-z 0-9 . _ - / : (no wildcards)";
            return FLIP_INVALID;
        }
        bytes += strlen(req->prefixes[i]);
    }
    if (bytes > PUBSUB_MAX_PREFIX_BYTES) {
        *why = "the prefixes of one subscription total at most 8192 bytes";
        return FLIP_TOOBIG;
    }
    sub->sub_prefixes = flip_calloc(n == 0 ? 1 : n, sizeof(char *));
    if (sub->sub_prefixes == NULL) {
        return FLIP_NOMEM;
    }
    if (n == 0) {
        sub->sub_prefixes[0] = flip_strdup("");
        if (sub->sub_prefixes[0] == NULL) {
            return FLIP_NOMEM;
        }
        sub->sub_n_prefixes = 1;
        return FLIP_OK;
    }
    for (size_t i = 0; i < n; i++) {
        sub->sub_prefixes[i] = flip_strdup(req->prefixes[i]);
        if (sub->sub_prefixes[i] == NULL) {
            return FLIP_NOMEM;
        }
        sub->sub_n_prefixes++;
    }
    normalise(sub->sub_prefixes, &sub->sub_n_prefixes);
    return FLIP_OK;
}

/* What a subscription costs the node beyond its output: the struct, the
 * prefix copies and about one trie node (~100 bytes) per prefix byte. */
static size_t sub_cost(const struct sub *sub)
{
    size_t cost = sizeof *sub;

    for (size_t i = 0; i < sub->sub_n_prefixes; i++) {
        cost += 64 + strlen(sub->sub_prefixes[i]) * 112;
    }
    return cost;
}

static int register_sub(struct pubsub *ps, struct sub *sub)
{
    for (size_t i = 0; i < sub->sub_n_prefixes; i++) {
        const char *p = sub->sub_prefixes[i];
        if (trie_add(&ps->trie, p, strlen(p), sub) != FLIP_OK) {
            for (size_t j = 0; j < i; j++) {
                trie_remove(&ps->trie, sub->sub_prefixes[j],
                            strlen(sub->sub_prefixes[j]), sub);
            }
            return FLIP_NOMEM;
        }
    }
    queue_insert_tail(&ps->subs, &sub->sub_link);
    ps->n_subs++;
    return FLIP_OK;
}

void pubsub_subscribe(struct pubsub *ps,
                      void *to,
                      uint64_t req_id,
                      const Flip__SubscribeRequest *req)
{
    struct store *st = store_of(ps);
    struct sub *sub = NULL;
    const char *why = NULL;
    uint64_t from = req->from_revision;
    int rv;

    if (req->has_from_revision && from >= REVISION_ABSURD) {
        ps->sink.send_error(
            to, req_id, FLIP__STATUS__INVALID_ARGUMENT,
            "from_revision is beyond any revision a cluster can "
            "reach");
        return;
    }
    sub = flip_calloc(1, sizeof *sub);
    if (sub == NULL) {
        ps->sink.send_error(to, req_id, FLIP__STATUS__INTERNAL,
                            "out of memory");
        return;
    }
    sub->sub_ps = ps;
    sub->sub_to = to;
    buf_init(&sub->sub_snap_after);
    rv = copy_prefixes(req, sub, &why);
    if (rv == FLIP_OK &&
        ps->sub_mem + sub_cost(sub) + ps->sink.total(ps->sink.data) >
            ps->cfg.sub_budget) {
        rv = FLIP_BUSY;
        why =
            "the node's subscription memory budget is spent; try another "
            "node or retry";
    }
    if (rv == FLIP_OK) {
        rv = register_sub(ps, sub);
    }
    if (rv != FLIP_OK) {
        ps->sink.send_error(to, req_id, status_from_flip(rv),
                            why != NULL ? why : "out of memory");
        sub_free(sub);
        return;
    }
    sub->sub_mem = sub_cost(sub);
    ps->sub_mem += sub->sub_mem;
    ps->sink.attach(to, sub);
    if (!reply_subscribed(ps, to, req_id)) {
        return;
    }
    if (!req->has_from_revision) {
        start_snapshot(sub, 0, NULL);
        return;
    }
    sub->sub_rev = from;
    if (from > store_applied_index(st)) {
        /* This node is behind the client: wait (bounded) for it to catch
         * up rather than send anything older than the client has. */
        unsigned wait = 2 * ps->cfg.election_ms;
        sub->sub_state = SUB_WAITING;
        ps->n_waiting++;
        sub->sub_deadline =
            uv_now(ps->loop) + (wait > WAIT_MIN_MS ? wait : WAIT_MIN_MS);
        return;
    }
    start_catchup(sub);
}

/* ---- fan-out of applied entries ------------------------------------------ */

static void collect_hit(void *arg, void *item)
{
    struct pubsub *ps = arg;
    struct sub *sub = item;

    if (sub->sub_gen == ps->gen) {
        return; /* already matched through another prefix */
    }
    sub->sub_gen = ps->gen;
    if (ps->n_hits == ps->cap_hits) {
        size_t cap = ps->cap_hits == 0 ? 64 : ps->cap_hits * 2;
        struct sub **grown = flip_realloc(ps->hits, cap * sizeof *grown);
        if (grown == NULL) {
            /* Cannot queue the event to this subscriber: cut it off so it
             * resumes and misses nothing. */
            flip_errorf("pubsub: out of memory during fan-out");
            if (sub->sub_to != NULL) {
                sink_close(sub, "out of memory during fan-out");
            }
            return;
        }
        ps->hits = grown;
        ps->cap_hits = cap;
    }
    ps->hits[ps->n_hits++] = sub;
}

/* The Flag of change i as an event carries it: value or deletion. It has
 * the same fields as the change-log row a catch-up replays (both come
 * from storage/flags.c), so a live CHANGE and a replayed one are the same
 * bytes. */
static void change_flag(const Flipcmd__Command *cmd,
                        size_t i,
                        uint64_t index,
                        const struct fsm_outcome *out,
                        Flip__Flag *f)
{
    flags_record_of_change(cmd, i, index, out->create_revision, f, NULL);
    flags_as_read(f, cmd->changes[i]->key);
}

/* What ps->scratch holds of the encoding every whole-entry taker shares. */
enum shared_state
{
    SHARED_NONE,     /* not encoded, or overwritten since */
    SHARED_READY,    /* in ps->scratch */
    SHARED_TOO_LARGE /* over the frame limit: takers are resynced */
};

static void deliver_changes(struct pubsub *ps,
                            struct sub *sub,
                            Flip__Flag **all,
                            size_t n_all,
                            uint64_t index,
                            int *shared_ready)
{
    Flip__Flag *mine[FSM_MAX_CHANGES];
    Flip__Event ev = FLIP__EVENT__INIT;
    size_t n = 0;
    int rv = FLIP_OK;

    for (size_t i = 0; i < n_all; i++) {
        if (n_all == 1 || sub_matches(sub, all[i]->key)) {
            mine[n++] = all[i];
        }
    }
    ev.has_type = 1;
    ev.type = FLIP__EVENT_TYPE__CHANGE;
    ev.has_revision = 1;
    ev.revision = index;
    if (n == n_all) {
        /* The common case: this subscriber takes the whole entry, and
         * so the same bytes as everyone else who does. */
        if (*shared_ready == SHARED_NONE) {
            ev.n_flags = n_all;
            ev.flags = all;
            rv = encode_event(ps, &ev);
            ps->n_encoded++;
            *shared_ready = rv == FLIP_TOOBIG ? SHARED_TOO_LARGE : SHARED_READY;
        }
        if (*shared_ready == SHARED_TOO_LARGE) {
            rv = FLIP_TOOBIG;
        }
    } else {
        ev.n_flags = n;
        ev.flags = mine;
        if (*shared_ready == SHARED_READY) {
            *shared_ready = SHARED_NONE;
        }
        rv = encode_event(ps, &ev);
        ps->n_encoded++;
    }
    if (rv == FLIP_TOOBIG) {
        /* the snapshot's frames overwrite ps->scratch */
        if (*shared_ready == SHARED_READY) {
            *shared_ready = SHARED_NONE;
        }
        start_snapshot(sub, 1, resync_too_large);
        return;
    }
    if (rv != FLIP_OK) {
        /* dropping the event would be a silent gap: it resumes instead */
        sink_close(sub, "cannot encode a change event");
        return;
    }
    ps->n_events++;
    if (deliver(sub)) {
        sub->sub_rev = index;
    }
}

/* About what applying `cmd` wrote to LMDB: each change is a flag record
 * and a change-log row. */
static uint64_t written_bytes(const Flipcmd__Command *cmd)
{
    uint64_t n = 0;

    for (size_t i = 0; i < cmd->n_changes; i++) {
        const Flipcmd__Change *ch = cmd->changes[i];
        size_t one = 128;
        if (ch->key != NULL) {
            one += strlen(ch->key);
        }
        if (ch->value != NULL) {
            one += flip__value__get_packed_size(ch->value);
        }
        n += 2 * one;
    }
    return n;
}

void pubsub_on_applied(struct pubsub *ps,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes)
{
    Flip__Flag flags[FSM_MAX_CHANGES];
    Flip__Flag *all[FSM_MAX_CHANGES];
    size_t n_all = 0;
    int shared_ready = SHARED_NONE;
    struct queue *e;

    /* Subscribers waiting for this node to reach their revision (rare:
     * only after a client moved here from a node that was ahead). */
    if (ps->n_waiting > 0) {
        QUEUE_FOREACH (e, &ps->subs) {
            struct sub *sub = CONTAINER_OF(e, struct sub, sub_link);
            if (sub->sub_state == SUB_WAITING && index >= sub->sub_rev) {
                ps->n_waiting--;
                start_catchup(sub);
            }
        }
    }
    if (cmd != NULL && ps->n_readers > 0) {
        ps->written += written_bytes(cmd); /* F3: what pinned views cost */
    }
    if (cmd == NULL || ps->n_subs == 0) {
        return;
    }
    for (size_t i = 0; i < cmd->n_changes && i < FSM_MAX_CHANGES; i++) {
        /* a repeated request id applied nothing now: no event */
        if (outcomes[i].status != FSM_OK || outcomes[i].duplicate) {
            continue;
        }
        change_flag(cmd, i, index, &outcomes[i], &flags[n_all]);
        all[n_all] = &flags[n_all];
        n_all++;
    }
    if (n_all == 0) {
        return;
    }
    ps->gen++;
    ps->n_hits = 0;
    for (size_t i = 0; i < n_all; i++) {
        trie_match(&ps->trie, all[i]->key, strlen(all[i]->key), collect_hit,
                   ps);
    }
    /* The shared encoding is the last one in scratch only until a custom
     * one replaces it; deliver_changes tracks that with shared_ready. */
    for (size_t h = 0; h < ps->n_hits; h++) {
        struct sub *sub = ps->hits[h];
        if (sub->sub_dead || sub->sub_state != SUB_LIVE ||
            index <= sub->sub_rev) {
            continue;
        }
        deliver_changes(ps, sub, all, n_all, index, &shared_ready);
    }
}

void pubsub_on_restored(struct pubsub *ps, uint64_t index)
{
    struct queue *e;

    /* The store jumped forward: whatever the subscribers miss is in the
     * restored change log, or they get a resync. */
    QUEUE_FOREACH (e, &ps->subs) {
        struct sub *sub = CONTAINER_OF(e, struct sub, sub_link);
        if (sub->sub_state == SUB_LIVE) {
            start_catchup(sub);
        } else if (sub->sub_state == SUB_WAITING && index >= sub->sub_rev) {
            ps->n_waiting--;
            start_catchup(sub);
        }
    }
}

/* ---- heartbeats and deadlines -------------------------------------------- */

/* Stale: the node knows no leader and has not for STALE_GRACE_MS. Its
 * raft layer drops the leader only after hearing nothing from it for a
 * randomized election timeout (one to two --election-ms, counted from the
 * leader's last message), so that wait is already the "no leader for
 * longer than an election timeout" the flag stands for; waiting another
 * election timeout on top (as this once did) made the signal take up to
 * three. The grace keeps a quick election (a few ms without a leader)
 * from flapping the flag. The catching-up notice (the leader it names has
 * been silent for an election timeout, raft/node.c's node_live) comes
 * first, within one election timeout + MONITOR_MS + TICK_MS; the notice
 * naming no leader when raft gives the leader up (pubsub_on_leader: at
 * once if the node was already stale, so within 2 x election-ms + raft's
 * tick + MONITOR_MS of the leader's last message; after the grace if it
 * was still live, which only happens before one election timeout),
 * documented in protocol.md section 15. */
#define STALE_GRACE_MS 50

static int node_is_stale(const struct pubsub_node_state *ns)
{
    return ns->leaderless_ms >= STALE_GRACE_MS;
}

/* Encodes the node's heartbeat into ps->scratch. */
static int encode_heartbeat(struct pubsub *ps)
{
    struct pubsub_node_state ns;
    Flip__Event ev = FLIP__EVENT__INIT;
    Flip__Heartbeat hb = FLIP__HEARTBEAT__INIT;

    ps->node.read(ps->node.data, &ns);
    hb.has_node_id = 1;
    hb.node_id = ps->cfg.node_id;
    hb.has_applied_revision = 1;
    /* the store's index, not raft's: entries without changes (barriers,
     * the commit nudge) never reach the store, and a heartbeat's revision
     * must be a from_revision every node will accept */
    hb.applied_revision = store_applied_index(store_of(ps));
    hb.has_leader_id = 1;
    hb.leader_id = ns.leader_id;
    hb.leader_address = (char *)(uintptr_t)ns.leader_address;
    hb.has_leaderless_ms = 1;
    hb.leaderless_ms = ns.leaderless_ms;
    hb.has_stale = 1;
    /* computed now, not from the last tick. Stale when leaderless (past
     * a short grace), and, since live means caught up, also when the node
     * knows a leader but has not applied what it committed (stuck,
     * restoring, far behind): then it says it is catching up */
    hb.stale = node_is_stale(&ns) || !ns.live;
    hb.has_store_bytes = 1;
    hb.store_bytes = store_bytes(ps->store);
    hb.has_max_store_bytes = 1;
    hb.max_store_bytes = ps->cfg.max_store_bytes;
    hb.has_catching_up = 1;
    hb.catching_up = hb.stale && ns.leader_id != 0;
    hb.has_term = 1;
    hb.term = ns.term;
    hb.cluster_id = ns.cluster_id;
    hb.has_leader_commit = 1;
    hb.leader_commit = ns.leader_commit;
    hb.has_lag = 1;
    hb.lag = ns.lag;
    ev.has_type = 1;
    ev.type = FLIP__EVENT_TYPE__HEARTBEAT;
    ev.heartbeat = &hb;
    return encode_event(ps, &ev);
}

/* Heartbeats go to LIVE subscribers only: every matching change up to a
 * heartbeat's applied_revision was queued before it (fan-out happens inside
 * apply), so a client may resume from that revision. Subscribers still in a
 * snapshot or catch-up see data frames instead, and get a heartbeat the
 * moment they turn LIVE. */
static void send_heartbeats(struct pubsub *ps)
{
    struct queue *e;
    struct queue *next;

    if (encode_heartbeat(ps) != FLIP_OK) {
        return;
    }
    for (e = ps->subs.next; e != &ps->subs; e = next) {
        struct sub *sub = CONTAINER_OF(e, struct sub, sub_link);
        next = e->next;
        if (sub->sub_state == SUB_LIVE) {
            deliver(sub); /* may unlink sub, never next */
        }
    }
}

static void expire(struct pubsub *ps, uint64_t now)
{
    struct queue *e;
    struct queue *next;

    if (ps->n_waiting == 0 && ps->n_readers == 0) {
        return; /* only waiting and snapshotting subscribers have deadlines */
    }

    for (e = ps->subs.next; e != &ps->subs; e = next) {
        struct sub *sub = CONTAINER_OF(e, struct sub, sub_link);
        next = e->next;
        if (sub->sub_state == SUB_WAITING && now > sub->sub_deadline) {
            sink_error(sub, 0, FLIP__STATUS__AHEAD_OF_NODE,
                       "from_revision is ahead of what this node has "
                       "applied; try another node");
            sink_close(sub, "subscriber ahead of this node");
        } else if (sub->sub_state == SUB_SNAPSHOT &&
                   (now > sub->sub_deadline ||
                    ps->written - sub->sub_pin_mark > ps->cfg.snapshot_pin)) {
            /* F3: while the view is pinned LMDB cannot reuse a page freed
             * after it, so every write grows the map: bound both. */
            ps->n_cut_pinned++;
            slow_consumer(sub, now > sub->sub_deadline
                                   ? "snapshot took longer than the node "
                                     "lets a read view stay open"
                                   : "snapshot held its read view while the "
                                     "node wrote more than it allows");
        }
    }
}

/* Heartbeats now if `due`, or if what they say about the leader changed:
 * `stale`, or the leader the node names (a node that learns a new leader
 * says so at once, with its address; one that gives its leader up says so
 * at once if it was already stale, else once that has lasted
 * STALE_GRACE_MS, checked every TICK_MS: never with the next regular
 * heartbeat). */
static void announce(struct pubsub *ps, uint64_t now, int due)
{
    struct pubsub_node_state ns;
    int stale;

    ps->node.read(ps->node.data, &ns);
    stale = node_is_stale(&ns) || !ns.live;
    if (!due && stale == ps->last_stale &&
        (ns.leader_id == ps->last_leader ||
         (ns.leader_id == 0 && !ps->last_stale &&
          ns.leaderless_ms < STALE_GRACE_MS))) { /* a quick election */
        return;
    }
    if (stale != ps->last_stale) {
        flip_infof("pubsub: telling %zu subscribers this node is %s",
                   ps->n_subs,
                   !stale              ? "live again"
                   : ns.leader_id != 0 ? "catching up with its leader"
                                       : "stale (no leader)");
    }
    ps->last_heartbeat = now;
    ps->last_stale = stale;
    ps->last_leader = ns.leader_id;
    send_heartbeats(ps);
}

void pubsub_on_leader(struct pubsub *ps, uint64_t now)
{
    announce(ps, now, 0);
}

void pubsub_tick(struct pubsub *ps, uint64_t now)
{
    expire(ps, now);
    announce(ps, now, now - ps->last_heartbeat >= ps->heartbeat_ms);
    reap_dead(ps);
}

static void tick(uv_timer_t *t)
{
    struct pubsub *ps = t->data;
    pubsub_tick(ps, uv_now(ps->loop));
}

void pubsub_init(struct pubsub *ps,
                 uv_loop_t *loop,
                 struct store *store,
                 const struct pubsub_config *cfg,
                 const struct pubsub_node *node,
                 const struct pubsub_sink *sink)
{
    memset(ps, 0, sizeof *ps);
    ps->loop = loop;
    ps->store = store;
    ps->cfg = *cfg;
    ps->node = *node;
    ps->sink = *sink;
    trie_init(&ps->trie);
    queue_init(&ps->subs);
    queue_init(&ps->pump);
    queue_init(&ps->dead);
    buf_init(&ps->scratch);
    ps->bound = cfg->sub_buffer;
    ps->heartbeat_ms = cfg->heartbeat_ms;
    uv_timer_init(loop, &ps->tick);
    ps->tick.data = ps;
    uv_timer_start(&ps->tick, tick, TICK_MS, TICK_MS);
    uv_idle_init(loop, &ps->more);
}

void pubsub_close(struct pubsub *ps)
{
    /* Connections were closed first, so every subscriber is dead. */
    reap_dead(ps);
    uv_close((uv_handle_t *)&ps->tick, NULL);
    uv_close((uv_handle_t *)&ps->more, NULL);
    trie_close(&ps->trie);
    flip_free(ps->hits);
    buf_close(&ps->scratch);
}
