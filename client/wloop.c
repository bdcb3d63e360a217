/* The watch thread: endpoint rotation, one subscription session at a
 * time, the event stream, failover, and last-known-good writes.
 *
 * Happy path: pick an endpoint, connect, Hello, Subscribe (with
 * from_revision when the copy is a valid resume point); receive a
 * snapshot (staged aside, swapped into the copy at SNAPSHOT_END) or only
 * changes; then apply each CHANGE (every flag of it at once) under the
 * write lock and call the application back. The node sends heartbeats
 * only once the subscription is live, and every matching change up to a
 * heartbeat's applied_revision before it (docs/protocol.md section 15):
 * the first heartbeat makes the session LIVE, and each one moves the
 * copy's revision (the resume point) up to the node's, so a quiet prefix
 * resumes from a recent revision rather than from its last change. The
 * copy is written to the last-known-good file after the snapshot, at
 * most every WATCH_LKG_EVERY_MS after changes, and at most every
 * WATCH_LKG_REV_EVERY_MS when only the revision moved.
 *
 * Failure modes, and what each does:
 *   - connect/Hello/Subscribe fails, or the node refuses (AHEAD_OF_NODE:
 *     it has not reached our revision; UNAVAILABLE; UNKNOWN_TYPE: too
 *     old): next endpoint. After a whole round of failures the state is
 *     DISCONNECTED and the thread waits a jittered backoff (50 ms
 *     doubling to 1 s). A round where every endpoint said AHEAD_OF_NODE,
 *     twice running, means our revision is from another history: it is
 *     dropped and a fresh snapshot taken (with a notice).
 *   - the connection drops, an error frame arrives (SLOW_CONSUMER: the
 *     node dropped us), or the stream breaks the protocol (a revision at
 *     or below the one applied, an item outside a snapshot, a key outside
 *     our prefixes): the session ends; a snapshot in progress is
 *     discarded (readers never saw it); the next endpoint resumes from
 *     the copy's revision, so nothing is lost or repeated.
 *   - no frame for stale_after_ms (a hung node, a silent partition): the
 *     session ends likewise.
 *   - a heartbeat says stale (the node has had no leader for longer than
 *     an election timeout) and names no leader: state STALE; the session
 *     stays (the node may be the best there is) while the thread asks the
 *     other nodes' status now and then; one that knows a leader is
 *     switched to. Such voluntary switches are spaced (50 ms doubling to
 *     1 s, see WATCH_SWITCH_*), so nodes that contradict each other
 *     cannot make the watch bounce between them.
 *   - a session that ends within WATCH_GOOD_SESSION_MS counts as a
 *     failure, so a node that accepts and then drops us at once cannot
 *     make the thread spin without backoff.
 * Every wait also polls stop_fd, so flip_watch_stop is prompt. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/endpoints.h"
#include "client/lkg.h"
#include "client/watch.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "proto/status.h"

/* A session shorter than this does not reset the backoff. */
#define WATCH_GOOD_SESSION_MS 1000

enum session_end
{
    END_FAILED, /* never synchronised, or too briefly: counts as a failure */
    END_LOST,   /* was synchronised for a while, then lost */
    END_SWITCH, /* left a stale node for a better one (next_pick) */
    END_STOPPED /* flip_watch_stop */
};

static int stopping(struct flip_watch *w)
{
    return atomic_load(&w->stopping) != 0;
}

/* Waits ms, or less if the watch is being stopped. */
static void pause_ms(struct flip_watch *w, int64_t ms)
{
    struct pollfd p;

    p.fd = w->stop_fd;
    p.events = POLLIN;
    p.revents = 0;
    while (ms > 0 && !stopping(w)) {
        int64_t until = clock_mono_ms() + ms;
        int n = poll(&p, 1, (int)ms);
        if (n > 0 || (n < 0 && errno != EINTR)) {
            return; /* stopping (or poll is broken: do not spin) */
        }
        ms = until - clock_mono_ms();
    }
}

static const char *status_name(Flip__Status status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &flip__status__descriptor, (int)status);

    return v != NULL ? v->name : "unknown status";
}

static const char *error_text(const Flip__Error *e)
{
    return e->message != NULL && e->message[0] != '\0' ? e->message : "-";
}

/* One notice per endpoint per distinct failure, so a node that stays
 * down does not flood the application. */
static void endpoint_failed(struct flip_watch *w, size_t i, const char *why)
{
    if (strcmp(w->last_err[i], why) == 0) {
        return;
    }
    snprintf(w->last_err[i], sizeof w->last_err[i], "%s", why);
    watch_notice(w, w->eps[i].addr, "%s", why);
}

static int marked_stale(const struct flip_watch *w, size_t i, int64_t now)
{
    return w->stale_mark[i] != 0 &&
           now - w->stale_mark[i] < WATCH_STALE_MARK_MS;
}

/* ---- last-known-good file --------------------------------------------- */

static void lkg_save(struct flip_watch *w)
{
    char msg[LKG_MSG_MAX];
    int rv;

    w->lkg_dirty = WATCH_LKG_CLEAN;
    w->lkg_saved_at = clock_mono_ms();
    /* Only a complete copy is a valid last-known-good state: not the
     * changes after an application-given from_revision. */
    if (w->cache_path == NULL || w->cache_readonly || !w->complete) {
        return;
    }
    msg[0] = '\0';
    rv = lkg_encode(&w->live, &w->prefixes, &w->lkg_buf);
    if (rv == FLIP_OK) {
        rv = lkg_store(w->cache_path, buf_head(&w->lkg_buf),
                       buf_len(&w->lkg_buf), msg, sizeof msg);
    } else {
        snprintf(msg, sizeof msg, "encoding last-known-good file %s: %s",
                 w->cache_path, flip_strerror(rv));
    }
    buf_reset(&w->lkg_buf);
    if (rv != FLIP_OK && strcmp(msg, w->lkg_err) != 0) {
        snprintf(w->lkg_err, sizeof w->lkg_err, "%s", msg);
        watch_notice(w, "", "%s", msg);
    } else if (rv == FLIP_OK && w->lkg_err[0] != '\0') {
        w->lkg_err[0] = '\0';
        watch_notice(w, "", "last-known-good file %s written again",
                     w->cache_path);
    }
}

/* When the pending write is due; INT64_MAX when nothing is pending. */
static int64_t lkg_due(const struct flip_watch *w)
{
    switch (w->lkg_dirty) {
    case WATCH_LKG_DATA:
        return w->lkg_saved_at + WATCH_LKG_EVERY_MS;
    case WATCH_LKG_REVISION:
        return w->lkg_saved_at + WATCH_LKG_REV_EVERY_MS;
    default:
        return INT64_MAX;
    }
}

/* Writes the file if something is pending and the debounce allows (or
 * `now_anyway`). */
static void lkg_maybe_save(struct flip_watch *w, int now_anyway)
{
    if (w->lkg_dirty != WATCH_LKG_CLEAN &&
        (now_anyway || clock_mono_ms() >= lkg_due(w))) {
        lkg_save(w);
    }
}

/* ---- applying events ---------------------------------------------------- */

static void emit(struct flip_watch *w,
                 enum flip_watch_event_type type,
                 const struct flip_flag *flag,
                 uint64_t revision,
                 int resync,
                 const char *detail)
{
    struct flip_watch_event ev;

    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.flag = flag;
    ev.revision = revision;
    ev.resync = resync;
    ev.node = w->eps[w->cur].addr;
    ev.detail = detail;
    watch_emit(w, &ev);
}

/* The session's copy now follows its node. */
static void became_synced(struct flip_watch *w, const char *how)
{
    struct wire *c = &w->eps[w->cur];
    int64_t now = clock_mono_ms();

    w->synced = 1;
    if (w->node_stale || marked_stale(w, w->cur, now)) {
        w->node_stale = 1;
        w->probe_at = now;
        w->probe_ms = WATCH_PROBE_MIN_MS;
        w->probe_next = w->cur;
        watch_set_state(w, FLIP_WATCH_STALE, c->addr,
                        "%s (node %" PRIu64 "), but it has no leader: %s",
                        c->addr, c->node_id, how);
        return;
    }
    watch_set_state(w, FLIP_WATCH_LIVE, c->addr, "%s (node %" PRIu64 "): %s",
                    c->addr, c->node_id, how);
}

static int snapshot_begin(struct flip_watch *w,
                          const Flip__Event *ev,
                          const char **why)
{
    if (w->in_snapshot) {
        *why = "snapshot begins inside another";
        return FLIP_PROTO;
    }
    if (w->has_state && ev->revision < w->live.revision) {
        *why = "snapshot older than the revision already applied";
        return FLIP_PROTO;
    }
    wcache_clear(&w->staging);
    w->in_snapshot = 1;
    w->snap_rev = ev->revision;
    /* A snapshot in answer to from_revision replaces a state: a resync,
     * whatever the flag says. */
    w->snap_resync =
        (ev->has_resync && ev->resync) || w->has_state || w->cluster_reset;
    emit(w, FLIP_EV_SNAPSHOT_BEGIN, NULL, w->snap_rev, w->snap_resync,
         ev->reason != NULL ? ev->reason : "");
    return FLIP_OK;
}

static int snapshot_item(struct flip_watch *w,
                         const Flip__Event *ev,
                         const char **why)
{
    const struct flip_flag *added = NULL;
    int rv;

    if (!w->in_snapshot) {
        *why = "snapshot item outside a snapshot";
        return FLIP_PROTO;
    }
    rv = wcache_stage_item(&w->staging, &w->prefixes, ev, &added, why);
    if (rv != FLIP_OK) {
        return rv;
    }
    emit(w, FLIP_EV_SNAPSHOT_ITEM, added, w->snap_rev, w->snap_resync, NULL);
    return FLIP_OK;
}

/* Swaps the staged snapshot in, then reports the keys it dropped. */
static int snapshot_end(struct flip_watch *w,
                        const Flip__Event *ev,
                        const char **why)
{
    const struct flip_flag *f;
    size_t pos = 0;

    if (!w->in_snapshot || ev->revision != w->snap_rev) {
        *why = w->in_snapshot ? "snapshot ends at another revision"
                              : "snapshot end outside a snapshot";
        return FLIP_PROTO;
    }
    watch_lock(w);
    wcache_swap(&w->live, &w->staging);
    w->live.revision = w->snap_rev;
    memcpy(w->live.cluster_id, w->sess_cid, sizeof w->live.cluster_id);
    atomic_store(&w->revision, w->snap_rev);
    watch_unlock(w);
    w->exact_from = w->snap_rev;
    watch_notify(w);
    w->in_snapshot = 0;
    w->has_state = 1;
    w->complete = 1;
    w->cluster_reset = 0;
    /* `staging` now holds the previous copy. */
    while ((f = wcache_next(&w->staging, &pos)) != NULL) {
        if (wcache_get(&w->live, f->key) == NULL) {
            emit(w, FLIP_EV_DELETE, f, w->snap_rev, w->snap_resync, NULL);
        }
    }
    wcache_clear(&w->staging);
    emit(w, FLIP_EV_SNAPSHOT_END, NULL, w->snap_rev, w->snap_resync, NULL);
    w->lkg_dirty = WATCH_LKG_DATA;
    lkg_maybe_save(w, 1);
    /* LIVE comes with the node's first heartbeat, after the changes made
     * since the snapshot began. */
    return FLIP_OK;
}

/* One CHANGE: every flag of it (one raft entry, several flags when
 * several writes were grouped) becomes visible to readers at once, then
 * each is reported as a CHANGE or DELETE event at the same revision. The
 * revision must be above the copy's: equal revisions exist only inside
 * one event. */
static int apply_change(struct flip_watch *w,
                        const Flip__Event *ev,
                        const char **why)
{
    struct wbatch b;
    int rv;

    if (w->in_snapshot || !w->has_state) {
        *why = w->in_snapshot ? "change inside a snapshot"
                              : "change before any snapshot";
        return FLIP_PROTO;
    }
    rv = wbatch_prepare(&b, &w->live, &w->prefixes, ev, why);
    if (rv != FLIP_OK) {
        return rv;
    }
    watch_lock(w);
    rv = wbatch_commit(&b, &w->live);
    if (rv == FLIP_OK) {
        atomic_store(&w->revision, b.revision);
        w->exact_from = b.revision;
    }
    watch_unlock(w);
    if (rv != FLIP_OK) {
        *why = "out of memory";
        wbatch_free(&b);
        return rv;
    }
    watch_notify(w);
    for (size_t i = 0; i < b.n; i++) {
        emit(w, b.items[i].deleted ? FLIP_EV_DELETE : FLIP_EV_CHANGE,
             b.items[i].shown, b.revision, 0, NULL);
    }
    wbatch_free(&b);
    w->lkg_dirty = WATCH_LKG_DATA;
    return FLIP_OK;
}

/* Notes the node's cluster id (from its SubscribeResult or a heartbeat);
 * anything but a short run of letters and digits is ignored. */
static void take_cluster_id(struct flip_watch *w, const char *cid)
{
    size_t n = 0;

    if (cid == NULL) {
        return;
    }
    for (; cid[n] != '\0' && n <= WCACHE_CLUSTER_ID_MAX; n++) {
        char ch = cid[n];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z'))) {
            return;
        }
    }
    if (n > WCACHE_CLUSTER_ID_MAX) {
        return;
    }
    memcpy(w->sess_cid, cid, n + 1);
}

/* Staleness of the node, from its heartbeat. A heartbeat that names a
 * leader is never taken as stale, whatever its flag says (an older node
 * could send a stale flag computed before it learnt of the leader). */
static void heartbeat_stale(struct flip_watch *w, const Flip__Heartbeat *hb)
{
    struct wire *c = &w->eps[w->cur];
    int names_leader = hb->has_leader_id && hb->leader_id != 0;
    int catching_up = hb->has_catching_up && hb->catching_up;

    if (hb->has_stale && hb->stale && (!names_leader || catching_up)) {
        if (w->node_stale) {
            return;
        }
        w->node_stale = 1;
        w->stale_mark[w->cur] = clock_mono_ms();
        w->probe_at = clock_mono_ms();
        w->probe_ms = WATCH_PROBE_MIN_MS;
        w->probe_next = w->cur;
        if (w->synced && catching_up) {
            watch_set_state(w, FLIP_WATCH_STALE, c->addr,
                            "%s is catching up (%" PRIu64
                            " behind what its leader committed); looking "
                            "for a live node",
                            c->addr, hb->lag);
        } else if (w->synced) {
            watch_set_state(w, FLIP_WATCH_STALE, c->addr,
                            "%s has had no leader for %" PRIu64
                            " ms; looking for a node that has one",
                            c->addr, hb->leaderless_ms);
        }
        return;
    }
    w->stale_mark[w->cur] = 0;
    if (!w->node_stale) {
        return;
    }
    w->node_stale = 0;
    w->probe_at = 0;
    if (w->synced) {
        watch_set_state(w, FLIP_WATCH_LIVE, c->addr,
                        "%s is live again (leader node %" PRIu64 ")", c->addr,
                        hb->leader_id);
    }
}

/* Moves the copy's revision up to rev: nothing matching changed in
 * between (exact_from stays: the copy is the state at every revision
 * from there to rev). The copy itself is unchanged; flip_watch_fd still
 * wakes (the revision is part of what an application may wait for). */
static void advance_revision(struct flip_watch *w, uint64_t rev)
{
    watch_lock(w);
    w->live.revision = rev;
    atomic_store(&w->revision, rev);
    watch_unlock(w);
    watch_notify(w);
    if (w->lkg_dirty == WATCH_LKG_CLEAN) {
        w->lkg_dirty = WATCH_LKG_REVISION;
    }
}

/* The node sends heartbeats only to a live subscription (snapshot and
 * catch-up done), and every matching change up to a heartbeat's
 * applied_revision before it: the copy holds the state at that revision,
 * even when our prefixes were quiet. So the first heartbeat of a session
 * makes it LIVE (or STALE), and each one moves the copy's revision, and
 * with it the resume point, up to the node's; never down. */
static void on_heartbeat(struct flip_watch *w, const Flip__Heartbeat *hb)
{
    char how[160];

    if (hb == NULL) {
        return;
    }
    if (w->sess_cid[0] == '\0') {
        take_cluster_id(w, hb->cluster_id);
    }
    heartbeat_stale(w, hb);
    /* Only after a state (snapshot done, or resuming from one): a node
     * never sends one earlier, and then it would prove nothing. */
    if (w->in_snapshot || !w->has_state) {
        return;
    }
    if (hb->has_applied_revision) {
        if (hb->applied_revision < w->sess_from) {
            /* Behind what we subscribed from: the node is not serving
             * us yet (it would answer AHEAD_OF_NODE). No catch-up. */
            return;
        }
        if (hb->applied_revision > w->live.revision) {
            advance_revision(w, hb->applied_revision);
        }
    }
    if (w->live.cluster_id[0] == '\0' && w->sess_cid[0] != '\0') {
        /* the state (one of the node's history) now knows its cluster */
        memcpy(w->live.cluster_id, w->sess_cid, sizeof w->live.cluster_id);
        w->lkg_dirty = WATCH_LKG_DATA;
    }
    if (!w->synced) {
        snprintf(how, sizeof how,
                 "caught up to revision %" PRIu64 " (%zu flags)",
                 w->live.revision, w->live.n);
        became_synced(w, how);
    }
}

static int on_event(struct flip_watch *w,
                    const Flip__Event *ev,
                    const char **why)
{
    if (!ev->has_type) {
        return FLIP_OK; /* nothing we can act on */
    }
    switch (ev->type) {
    case FLIP__EVENT_TYPE__SNAPSHOT_BEGIN:
        return snapshot_begin(w, ev, why);
    case FLIP__EVENT_TYPE__SNAPSHOT_ITEM:
        return snapshot_item(w, ev, why);
    case FLIP__EVENT_TYPE__SNAPSHOT_END:
        return snapshot_end(w, ev, why);
    case FLIP__EVENT_TYPE__CHANGE:
        return apply_change(w, ev, why);
    case FLIP__EVENT_TYPE__HEARTBEAT:
        on_heartbeat(w, ev->heartbeat);
        return FLIP_OK;
    default:
        return FLIP_OK; /* a newer server's event type */
    }
}

/* One frame of the stream. On failure `why` says why the session ends. */
static int on_frame(struct flip_watch *w,
                    const Flip__Response *resp,
                    char *why,
                    size_t len)
{
    const char *addr = w->eps[w->cur].addr;
    const Flip__Error *e = resp->error;
    const char *text = "";
    int rv;

    if (e != NULL && e->status != FLIP__STATUS__OK) {
        if (e->status == FLIP__STATUS__SLOW_CONSUMER) {
            snprintf(why, len,
                     "%s dropped the subscription (SLOW_CONSUMER, it had "
                     "queued up to revision %" PRIu64
                     "); resuming from revision %" PRIu64,
                     addr, e->resume_revision, w->live.revision);
        } else {
            w->sess_ahead = e->status == FLIP__STATUS__AHEAD_OF_NODE;
            snprintf(why, len, "%s: %s: %s", addr, status_name(e->status),
                     error_text(e));
        }
        return FLIP_CLOSED;
    }
    if (resp->result_case != FLIP__RESPONSE__RESULT_EVENT ||
        resp->event == NULL) {
        snprintf(why, len, "%s: unexpected frame (result %d) in the stream",
                 addr, (int)resp->result_case);
        return FLIP_PROTO;
    }
    rv = on_event(w, resp->event, &text);
    if (rv != FLIP_OK) {
        snprintf(why, len, "%s: %s at revision %" PRIu64 ": %s", addr,
                 rv == FLIP_PROTO ? "protocol error" : flip_strerror(rv),
                 resp->event->revision, text);
    }
    return rv;
}

/* ---- stale nodes: asking the others ------------------------------------ */

/* From a node's status: does it know a leader, recently enough (and,
 * when it says, is it live: caught up with that leader)? */
static int status_has_leader(const Flip__StatusResult *r)
{
    if (r->has_live) {
        return r->live; /* knows a leader and is caught up with it */
    }
    return r->leader_id != 0 &&
           ((r->role != NULL && strcmp(r->role, "leader") == 0) ||
            r->last_contact_ms < WATCH_PROBE_CONTACT_MS);
}

/* Asks the node on open connection c for its status.
 * @return 1 it knows a leader, 0 it does not, -1 no usable answer (the
 *         connection is then closed if the stream is in doubt). */
static int ask_has_leader(struct wire *c, int64_t deadline)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__StatusRequest st = FLIP__STATUS_REQUEST__INIT;
    Flip__Response *resp = NULL;
    int sent = 0;
    int answer = -1;

    req.op_case = FLIP__REQUEST__OP_STATUS;
    req.status = &st;
    if (wire_call(c, &req, deadline, &resp, &sent) == FLIP_OK &&
        resp->result_case == FLIP__RESPONSE__RESULT_STATUS &&
        resp->status != NULL) {
        answer = status_has_leader(resp->status);
    }
    codec_response_free(resp);
    return answer;
}

/* Asks endpoint j, on a connection of its own: 1 when it knows a leader. */
static int knows_leader(struct flip_watch *w, size_t j)
{
    struct wire t;
    int64_t deadline = clock_mono_ms() + WATCH_PROBE_CALL_MS;
    int answer = 0;

    if (wire_init(&t, w->eps[j].addr) != FLIP_OK) {
        return 0;
    }
    t.cancel_fd = w->stop_fd;
    if (wire_open(&t, w->name, deadline) == FLIP_OK) {
        answer = ask_has_leader(&t, deadline) == 1;
    }
    wire_destroy(&t);
    return answer;
}

/* When the next voluntary switch may happen (0: at once). */
static int64_t switch_allowed_at(const struct flip_watch *w)
{
    return w->last_switch == 0 ? 0 : w->last_switch + (int64_t)w->switch_gap_ms;
}

/* A voluntary switch happens now: spaces the next one. */
static void note_switch(struct flip_watch *w, int64_t now)
{
    if (w->last_switch == 0 || now - w->last_switch >= WATCH_SWITCH_CALM_MS) {
        w->switch_gap_ms = WATCH_SWITCH_MIN_MS;
    } else {
        w->switch_gap_ms = w->switch_gap_ms * 2 > WATCH_SWITCH_MAX_MS
                               ? WATCH_SWITCH_MAX_MS
                               : w->switch_gap_ms * 2;
    }
    w->last_switch = now;
}

/* While attached to a stale node: asks the next other node, and arranges
 * to switch to it if it knows a leader. 1 when switching. Not before the
 * spacing of voluntary switches allows: the probe waits until then. */
static int probe(struct flip_watch *w)
{
    int64_t now = clock_mono_ms();
    size_t j;

    if (w->n_eps < 2) {
        w->probe_at = 0;
        return 0;
    }
    if (now < switch_allowed_at(w)) {
        w->probe_at = switch_allowed_at(w);
        return 0;
    }
    j = (w->probe_next + 1) % w->n_eps;
    if (j == w->cur) {
        j = (j + 1) % w->n_eps;
    }
    w->probe_next = j;
    if (knows_leader(w, j)) {
        w->stale_mark[j] = 0;
        w->next_pick = j;
        note_switch(w, clock_mono_ms());
        watch_notice(w, w->eps[w->cur].addr,
                     "leaving %s, which is not live (no leader, or catching "
                     "up), for %s, which is",
                     w->eps[w->cur].addr, w->eps[j].addr);
        return 1;
    }
    w->probe_ms = w->probe_ms * 2 > WATCH_PROBE_MAX_MS ? WATCH_PROBE_MAX_MS
                                                       : w->probe_ms * 2;
    w->probe_at = clock_mono_ms() + w->probe_ms;
    return 0;
}

static int probe_due(const struct flip_watch *w, int64_t now)
{
    return w->synced && w->node_stale && w->probe_at != 0 && now >= w->probe_at;
}

/* ---- one session -------------------------------------------------------- */

/* 1 when an endpoint other than i is still worth trying in this round:
 * not tried yet, and not known to be stale. */
static int better_candidate(const struct flip_watch *w, size_t i)
{
    int64_t now = clock_mono_ms();

    for (size_t j = 0; j < w->n_eps; j++) {
        if (j != i && !(w->tried & (1u << j)) && !marked_stale(w, j, now)) {
            return 1;
        }
    }
    return 0;
}

/* Before subscribing: does the node know a leader? A heartbeat would
 * tell, but only after a heartbeat interval, and a watch must not claim
 * LIVE from a leaderless node meanwhile. A leaderless node is skipped
 * while a better candidate remains; otherwise it is used (state STALE).
 * FLIP_OK to go on; FLIP_UNAVAILABLE (skip it, `why` set). */
static int check_leader(struct flip_watch *w,
                        struct wire *c,
                        char *why,
                        size_t len)
{
    int answer = ask_has_leader(c, clock_mono_ms() + WATCH_CONNECT_MS);

    if (answer != 0) {
        /* 1, or -1: a server without Status (heartbeats will tell). */
        w->stale_mark[w->cur] = answer == 1 ? 0 : w->stale_mark[w->cur];
        w->node_stale = answer == 1 ? 0 : w->node_stale;
        if (c->fd < 0) {
            snprintf(why, len, "%s", c->errmsg);
            return FLIP_UNAVAILABLE;
        }
        return FLIP_OK;
    }
    w->node_stale = 1;
    w->stale_mark[w->cur] = clock_mono_ms();
    if (better_candidate(w, w->cur)) {
        snprintf(why, len,
                 "%s is not live (no leader, or catching up); trying another "
                 "node",
                 c->addr);
        return FLIP_UNAVAILABLE;
    }
    return FLIP_OK;
}

static int other_cluster(struct flip_watch *w, struct wire *c);

/* Connect, Hello, Status, Subscribe (from `from` when the watch has a
 * state). On failure `why` says why; *ahead is 1 when the node answered
 * AHEAD_OF_NODE. On success *node_applied is the node's applied revision
 * as the SubscribeResult says (`from` when it does not say). */
static int subscribe_once(struct flip_watch *w,
                          struct wire *c,
                          uint64_t from,
                          int *ahead,
                          uint64_t *node_applied,
                          char *why,
                          size_t len)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SubscribeRequest sub = FLIP__SUBSCRIBE_REQUEST__INIT;
    Flip__Response *resp = NULL;
    const Flip__Error *e;
    const Flip__SubscribeResult *r;
    uint64_t id;
    int rv;

    *ahead = 0;
    *node_applied = from;
    w->sess_cid[0] = '\0';
    rv = wire_open(c, w->name, clock_mono_ms() + WATCH_CONNECT_MS);
    if (rv == FLIP_OK) {
        rv = check_leader(w, c, why, len);
        if (rv != FLIP_OK) {
            wire_close(c);
            return rv;
        }
        take_cluster_id(w, c->cluster_id);
        if (w->has_state && other_cluster(w, c)) {
            from = 0; /* another cluster: a snapshot, not a resume */
        }
        if (w->prefixes.n != 1 || w->prefixes.p[0][0] != '\0') {
            sub.n_prefixes = w->prefixes.n;
            sub.prefixes = w->prefixes.p;
        }
        if (w->has_state) {
            sub.has_from_revision = 1;
            sub.from_revision = from;
        }
        req.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
        req.subscribe = &sub;
        rv = wire_send(c, &req, clock_mono_ms() + WATCH_CONNECT_MS);
    }
    id = req.id;
    if (rv == FLIP_OK) {
        rv = wire_recv(c, clock_mono_ms() + WATCH_SUBSCRIBE_MS, &resp);
    }
    if (rv != FLIP_OK) {
        snprintf(why, len, "%s", c->errmsg);
        return rv;
    }
    e = resp->error;
    if (e != NULL && e->status != FLIP__STATUS__OK) {
        *ahead = e->status == FLIP__STATUS__AHEAD_OF_NODE;
        snprintf(why, len, "%s: subscribe refused: %s: %s", c->addr,
                 status_name(e->status), error_text(e));
        rv = *ahead ? FLIP_AGAIN : status_to_flip(e->status);
    } else if (resp->result_case != FLIP__RESPONSE__RESULT_SUBSCRIBE ||
               resp->subscribe == NULL || !resp->has_id || resp->id != id) {
        snprintf(why, len, "%s: unexpected answer to subscribe", c->addr);
        rv = FLIP_PROTO;
    } else {
        r = resp->subscribe;
        w->heartbeat_ms = r->has_heartbeat_ms && r->heartbeat_ms > 0
                              ? r->heartbeat_ms
                              : WATCH_HEARTBEAT_MS;
        w->stale_after_ms =
            w->stale_after_opt != 0 ? w->stale_after_opt : 3 * w->heartbeat_ms;
        if (r->has_node_id && r->node_id != 0) {
            c->node_id = r->node_id;
        }
        if (r->has_applied_revision) {
            *node_applied = r->applied_revision;
        }
        take_cluster_id(w, r->cluster_id);
        /* Not LIVE yet: the snapshot or the changes since our revision
         * are coming; the node's first heartbeat says they are in. */
    }
    codec_response_free(resp);
    if (rv != FLIP_OK) {
        wire_close(c);
    }
    return rv;
}

/* The node just subscribed to belongs to another cluster than the copy's
 * state (both known): a revision means nothing across clusters (a rebuilt
 * or restored cluster numbers its history anew), so the resume point is
 * dropped and a fresh snapshot, marked resync, will replace the copy. The
 * copy's values stay readable as CACHED meanwhile, never as LIVE. */
static int other_cluster(struct flip_watch *w, struct wire *c)
{
    if (w->live.cluster_id[0] == '\0' || w->sess_cid[0] == '\0' ||
        strcmp(w->live.cluster_id, w->sess_cid) == 0) {
        return 0;
    }
    watch_notice(w, c->addr,
                 "%s belongs to cluster %s, but our copy (revision %" PRIu64
                 ") came from cluster %s: dropping its resume point and "
                 "taking a fresh snapshot",
                 c->addr, w->sess_cid, w->live.revision, w->live.cluster_id);
    watch_set_state(w, FLIP_WATCH_CONNECTING, c->addr,
                    "copy from another cluster: taking a fresh snapshot");
    w->has_state = 0;
    w->complete = 0;
    w->cluster_reset = 1;
    return 1;
}

/* Subscribes from the copy's revision. A node whose state is behind it
 * (it would wait for its apply to get there, then answer AHEAD_OF_NODE)
 * but not behind `exact_from` is subscribed to again at once, from its
 * own revision: the copy is the state at that revision too. This happens
 * when the revision came from a heartbeat of a node further ahead, or
 * names an entry that changed no flag (a heartbeat counts every raft
 * entry; a node's applied state only those that change flags). */
static int subscribe(struct flip_watch *w,
                     struct wire *c,
                     int *ahead,
                     char *why,
                     size_t len)
{
    uint64_t from = w->live.revision;
    uint64_t node_applied = 0;
    int rv;

    for (int again = 0;; again++) {
        rv = subscribe_once(w, c, from, ahead, &node_applied, why, len);
        if (rv == FLIP_OK && w->has_state && other_cluster(w, c)) {
            wire_close(c); /* then a fresh connection, for a snapshot */
            from = 0;
            continue;
        }
        if (rv != FLIP_OK || !w->has_state || again > 0 ||
            node_applied >= from || node_applied < w->exact_from) {
            break;
        }
        wire_close(c); /* then a fresh connection: one subscription each */
        from = node_applied;
    }
    w->sess_from = w->has_state ? from : 0;
    return rv;
}

/* Reads the stream until the session ends. */
static enum session_end stream(struct flip_watch *w, char *why, size_t len)
{
    struct wire *c = &w->eps[w->cur];
    Flip__Response *resp = NULL;
    struct pollfd p[2];
    int64_t now;
    int64_t wake;
    int rv;

    for (;;) {
        if (stopping(w)) {
            return END_STOPPED;
        }
        rv = wire_recv(c, WIRE_NO_WAIT, &resp);
        if (rv == FLIP_OK) {
            w->last_frame = clock_mono_ms();
            rv = on_frame(w, resp, why, len);
            codec_response_free(resp);
            resp = NULL;
            if (rv != FLIP_OK) {
                return END_LOST;
            }
            lkg_maybe_save(w, 0);
        } else if (rv != FLIP_AGAIN) {
            snprintf(why, len, "%s", c->errmsg);
            return END_LOST;
        }
        now = clock_mono_ms();
        if (now - w->last_frame >= (int64_t)w->stale_after_ms) {
            snprintf(why, len, "%s: no event or heartbeat for %u ms", c->addr,
                     w->stale_after_ms);
            return END_LOST;
        }
        if (probe_due(w, now) && probe(w)) {
            snprintf(why, len, "leaving stale %s", c->addr);
            return END_SWITCH;
        }
        lkg_maybe_save(w, 0);
        if (rv == FLIP_OK) {
            continue; /* drain what is buffered before waiting */
        }
        now = clock_mono_ms();
        wake = w->last_frame + (int64_t)w->stale_after_ms;
        if (lkg_due(w) < wake) {
            wake = lkg_due(w);
        }
        if (probe_due(w, INT64_MAX) && w->probe_at < wake) {
            wake = w->probe_at;
        }
        p[0].fd = c->fd;
        p[0].events = POLLIN;
        p[0].revents = 0;
        p[1].fd = w->stop_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        wake -= now;
        (void)poll(p, 2, wake <= 0 ? 0 : wake > 60000 ? 60000 : (int)wake);
    }
}

static enum session_end session(struct flip_watch *w,
                                size_t i,
                                int *ahead,
                                char *why,
                                size_t len)
{
    struct wire *c = &w->eps[i];
    enum session_end end;
    int64_t started;

    w->cur = i;
    w->tried |= 1u << i;
    w->synced = 0;
    w->node_stale = 0;
    w->probe_at = 0;
    w->in_snapshot = 0;
    w->sess_ahead = 0;
    if (subscribe(w, c, ahead, why, len) != FLIP_OK) {
        return stopping(w) ? END_STOPPED : END_FAILED;
    }
    w->last_err[i][0] = '\0';
    started = w->last_frame = clock_mono_ms();
    end = stream(w, why, len);
    wire_close(c);
    *ahead = w->sess_ahead;
    if (!w->sess_ahead) {
        w->ahead_rounds = 0; /* it had our revision */
    }
    if (w->in_snapshot) {
        wcache_clear(&w->staging); /* readers never saw it */
        w->in_snapshot = 0;
    }
    if (end == END_LOST &&
        (!w->synced || clock_mono_ms() - started < WATCH_GOOD_SESSION_MS)) {
        end = END_FAILED;
    }
    if (w->synced && end != END_STOPPED && end != END_SWITCH) {
        watch_set_state(w, FLIP_WATCH_CONNECTING, c->addr, "failing over: %s",
                        why);
    }
    w->synced = 0;
    return end;
}

/* ---- rounds ------------------------------------------------------------- */

/* The next endpoint: one not yet tried in this round and not known to
 * be stale, else one not yet tried, in rotation after the last. */
static size_t pick(struct flip_watch *w)
{
    int64_t now = clock_mono_ms();
    size_t i;

    if (w->next_pick < w->n_eps) {
        i = w->next_pick;
        w->next_pick = WATCH_MAX_EPS;
        return i;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 1; k <= w->n_eps; k++) {
            i = (w->cur + k) % w->n_eps;
            if (!(w->tried & (1u << i)) &&
                (pass == 1 || !marked_stale(w, i, now))) {
                return i;
            }
        }
    }
    return (w->cur + 1) % w->n_eps;
}

/* Every endpoint failed once: back off, and notice a history reset. */
static void end_round(struct flip_watch *w, const char *why)
{
    int64_t ms;

    if (w->round_ahead == w->n_eps && w->has_state) {
        if (++w->ahead_rounds >= WATCH_AHEAD_ROUNDS) {
            watch_notice(w, "",
                         "every node is behind revision %" PRIu64
                         " (the cluster was rebuilt or restored?): "
                         "taking a fresh snapshot",
                         w->live.revision);
            w->has_state = 0;
            w->ahead_rounds = 0;
        }
    } else {
        w->ahead_rounds = 0;
    }
    w->round_failures = 0;
    w->round_ahead = 0;
    w->tried = 0;
    watch_set_state(w, FLIP_WATCH_DISCONNECTED, "",
                    "no node could be subscribed to; last: %s", why);
    ms = endpoints_backoff(&w->rng, &w->backoff_ms, WATCH_BACKOFF_MIN_MS,
                           WATCH_BACKOFF_MAX_MS);
    pause_ms(w, ms);
}

void *wloop_main(void *arg)
{
    struct flip_watch *w = arg;
    char why[WATCH_MSG_MAX];
    enum session_end end;
    int ahead;
    size_t i;

    if (w->start_notice[0] != '\0') {
        watch_notice(w, "", "%s", w->start_notice);
    }
    /* Start at a random node, so many watchers spread over the cluster. */
    w->cur = (size_t)(endpoints_random(&w->rng) % w->n_eps);
    while (!stopping(w)) {
        i = pick(w);
        why[0] = '\0';
        end = session(w, i, &ahead, why, sizeof why);
        lkg_maybe_save(w, 1);
        if (end == END_STOPPED || stopping(w)) {
            break;
        }
        if (end == END_LOST || end == END_SWITCH) {
            w->round_failures = 0;
            w->round_ahead = 0;
            w->tried = 0;
            w->backoff_ms = 0;
            continue; /* straight to the next node */
        }
        endpoint_failed(w, i, why);
        w->round_failures++;
        w->round_ahead += ahead != 0;
        if (w->round_failures >= w->n_eps) {
            end_round(w, why);
        }
    }
    lkg_maybe_save(w, 1);
    return NULL;
}
