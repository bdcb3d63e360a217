/* Proposals and coalesced read barriers; see propose.h. */
#include "propose.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dedup.h"
#include "errmap.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/command.h"

static void fail_waiters(struct propose *pr)
{
    struct queue q;

    /* Move out first: a callback may queue a new read. */
    queue_init(&q);
    while (!queue_empty(&pr->failed)) {
        struct queue *e = queue_head(&pr->failed);
        queue_remove(e);
        queue_insert_tail(&q, e);
    }
    while (!queue_empty(&q)) {
        struct queue *e = queue_head(&q);
        struct read_wait *w = CONTAINER_OF(e, struct read_wait, link);
        queue_remove(e);
        w->cb(w, pr->failed_status);
    }
}

#define NUDGE_DELAY_MS 2
#define LIMBO_TICK_MS  10

struct propose_batch;
static void batch_finish(struct propose_batch *b, int rv);
static void limbo_tick(struct propose *pr);
static void limbo_drain(struct propose *pr);
static void limbo_passed(struct propose *pr, uint64_t index);
static void batch_propose(struct propose *pr);

static int closing(const struct propose *pr)
{
    return pr->env.closing(pr->env.data);
}

static int raft_closing(const struct propose *pr)
{
    return pr->env.raft_closing(pr->env.data);
}

static int is_leader(const struct propose *pr)
{
    return !closing(pr) && raft_state(pr->env.raft) == RAFT_LEADER;
}

static void nudge_done(struct raft_barrier *req, int status)
{
    struct propose *pr = req->data;
    (void)status;
    pr->nudge_inflight = 0;
}

/* Runs on the loop turn after an apply: never inside libraft's apply
 * loop, where appending to the log is not safe. */
static void nudge_fire(struct propose *pr)
{
    struct raft *r = pr->env.raft;

    pr->nudge_armed = 0;
    if (pr->nudge_inflight || pr->barrier_inflight || !is_leader(pr) ||
        raft_last_index(r) != raft_last_applied(r)) {
        return; /* later entries or a read barrier carry the commit index */
    }
    pr->nudge.data = pr;
    if (raft_barrier(r, &pr->nudge, nudge_done) == 0) {
        pr->nudge_inflight = 1;
        pr->n_nudges++;
    }
}

void propose_nudge_now(struct propose *pr)
{
    if (pr->nudge_armed) {
        pr->env.disarm(pr->env.data, PROPOSE_NUDGE);
        nudge_fire(pr);
    }
}

void propose_fire(struct propose *pr, enum propose_timer t)
{
    switch (t) {
    case PROPOSE_FLUSH:
        batch_propose(pr);
        break;
    case PROPOSE_DEFER:
        fail_waiters(pr);
        break;
    case PROPOSE_NUDGE:
        nudge_fire(pr);
        break;
    case PROPOSE_LIMBO:
        limbo_tick(pr);
        break;
    default:
        break;
    }
}

/* Random, so that no two processes of one node share it (H2 of the
 * correctness review: a restarted leader took its old entries for new
 * writes). The clock is mixed in should getrandom fail. */
static uint64_t new_incarnation(const struct propose_env *env)
{
    uint64_t x = 0;

    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
        x ^= clock_mono_ns() << 20 ^ (uint64_t)env->wall_ms(env->data);
    }
    return x;
}

void propose_init(struct propose *pr,
                  const struct propose_env *env,
                  uint64_t keep)
{
    memset(pr, 0, sizeof *pr);
    pr->env = *env;
    pr->incarnation =
        env->incarnation != 0 ? env->incarnation : new_incarnation(env);
    pr->changelog_keep = keep;
    queue_init(&pr->pending);
    queue_init(&pr->served);
    queue_init(&pr->next);
    queue_init(&pr->failed);
    queue_init(&pr->limbo);
}

void propose_close(struct propose *pr)
{
    pr->closed = 1;
    limbo_drain(pr);
    if (pr->open != NULL) {
        struct propose_batch *b = pr->open;
        pr->open = NULL;
        batch_finish(b, FLIP_NOTLEADER);
    }
    fail_waiters(pr); /* they waited for PROPOSE_DEFER, disarmed next */
    for (int t = 0; t < PROPOSE_N_TIMERS; t++) {
        pr->env.disarm(pr->env.data, (enum propose_timer)t);
    }
    if (pr->env.release != NULL) {
        pr->env.release(pr->env.data);
    }
}

struct propose_batch
{
    struct propose *pr;
    uint64_t limbo_deadline;
    struct raft_apply req;
    struct queue link; /* in pr->pending while raft owns req */
    uint64_t seq;
    struct proposal *items[PROPOSE_BATCH_MAX];
    size_t n;
};

/* Fires every proposal of a batch; frees the batch. */
static void batch_finish(struct propose_batch *b, int rv)
{
    for (size_t i = 0; i < b->n; i++) {
        struct proposal *p = b->items[i];
        int st = rv;
        if (st == FLIP_OK && !p->have_outcome) {
            /* Committed but our observer never saw it: should not happen. */
            flip_errorf("propose: entry %llu applied without an outcome",
                        (unsigned long long)b->req.index);
            st = FLIP_INTERNAL;
        }
        p->cb(p, st);
    }
    flip_free(b);
}

static int batch_applied(const struct propose_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->items[i]->have_outcome) {
            return 0;
        }
    }
    return b->n > 0;
}

/* Leadership was lost with this batch proposed but not known to be
 * committed. Rather than answer "outcome unknown" at once, wait (bounded)
 * as a follower: if the new leader commits our entry, apply shows it to
 * us (our node id, incarnation and sequence are in the entry) and the
 * clients get the real answer; if another entry is applied at our index,
 * ours can never commit, which is a definite "not applied" (NOT_LEADER:
 * retry safely). That conclusion needs our index to have passed through
 * apply here: if a snapshot install covered it, the outcome is unknown. A
 * planned stop transfers leadership and waits for this to drain, so it
 * fails no write. */
static void limbo_add(struct propose *pr, struct propose_batch *b)
{
    if (b->req.index <= pr->restored) {
        batch_finish(b, FLIP_LEADERSHIPLOST);
        return;
    }
    b->limbo_deadline = pr->env.now(pr->env.data) + pr->env.limbo_ms;
    queue_insert_tail(&pr->limbo, &b->link);
    pr->n_limbo++;
    if (!pr->limbo_armed) {
        pr->limbo_armed = 1;
        pr->env.arm(pr->env.data, PROPOSE_LIMBO, LIMBO_TICK_MS);
    }
}

static void limbo_finish(struct propose *pr, struct propose_batch *b, int rv)
{
    queue_remove(&b->link);
    pr->n_limbo--;
    batch_finish(b, rv);
}

static void limbo_tick(struct propose *pr)
{
    uint64_t now = pr->env.now(pr->env.data);
    struct queue *e;
    struct queue *next;

    for (e = pr->limbo.next; e != &pr->limbo; e = next) {
        struct propose_batch *b = CONTAINER_OF(e, struct propose_batch, link);
        next = e->next;
        if (now >= b->limbo_deadline) {
            limbo_finish(pr, b, FLIP_LEADERSHIPLOST);
        }
    }
    pr->limbo_armed = !queue_empty(&pr->limbo);
    if (pr->limbo_armed) {
        pr->env.arm(pr->env.data, PROPOSE_LIMBO, LIMBO_TICK_MS);
    }
}

static void limbo_drain(struct propose *pr)
{
    while (!queue_empty(&pr->limbo)) {
        struct propose_batch *b =
            CONTAINER_OF(queue_head(&pr->limbo), struct propose_batch, link);
        limbo_finish(pr, b, FLIP_LEADERSHIPLOST);
    }
}

int propose_outstanding(const struct propose *pr)
{
    return !queue_empty(&pr->pending) || pr->n_limbo > 0 || pr->open != NULL;
}

static void apply_done(struct raft_apply *req, int status, void *result)
{
    struct propose_batch *b = CONTAINER_OF(req, struct propose_batch, req);
    struct propose *pr = b->pr;
    int rv = errmap_from_raft(status);

    (void)result;
    queue_remove(&b->link);
    if (rv == FLIP_LEADERSHIPLOST && batch_applied(b)) {
        rv = FLIP_OK; /* applied here before leadership went */
    }
    if (rv == FLIP_LEADERSHIPLOST && req->index != 0 && !raft_closing(pr) &&
        !pr->closed) {
        limbo_add(pr, b);
        return;
    }
    batch_finish(b, rv);
}

/* Proposes the open batch as one entry. Failures are reported through the
 * proposals' callbacks: this runs from the check hook, never from inside
 * propose_submit. */
static void batch_propose(struct propose *pr)
{
    struct propose_batch *b = pr->open;
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change *changes[PROPOSE_BATCH_MAX];
    struct raft_buffer buf;
    int rv;

    if (b == NULL) {
        return;
    }
    pr->open = NULL;
    if (!is_leader(pr)) {
        batch_finish(b, FLIP_NOTLEADER);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        changes[i] = &b->items[i]->change;
    }
    cmd.has_time_ms = 1;
    cmd.time_ms = pr->env.wall_ms(pr->env.data);
    cmd.has_changelog_keep = 1;
    cmd.changelog_keep = pr->changelog_keep;
    cmd.n_changes = b->n;
    cmd.changes = changes;
    cmd.has_origin_node = 1;
    cmd.origin_node = pr->env.id;
    cmd.has_origin_seq = 1;
    cmd.origin_seq = b->seq;
    cmd.has_origin_incarnation = 1;
    cmd.origin_incarnation = pr->incarnation;
    cmd.has_dedup_window_ms = 1;
    cmd.dedup_window_ms = DEDUP_WINDOW_DEFAULT_MS;
    cmd.has_max_store_bytes = pr->max_store_bytes != 0;
    cmd.max_store_bytes = pr->max_store_bytes;

    buf.len = command_size(&cmd);
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        batch_finish(b, FLIP_NOMEM);
        return;
    }
    command_write(&cmd, buf.base);
    b->req.data = b;
    rv = raft_apply(pr->env.raft, &b->req, &buf, 1, apply_done);
    if (rv == RAFT_INVALID) {
        /* raft already freed the buffer; an unpadded entry is a bug here */
        flip_errorf("propose: raft rejected an entry of %zu bytes", buf.len);
        abort();
    }
    if (rv != 0 && rv != RAFT_NOTLEADER && rv != RAFT_NOSPACE) {
        /* Only those two come from libraft's checks before it touches its
         * log (and hand the buffer back). Any other error (out of memory,
         * an I/O layer failure, RAFT_BUSY) comes after it put the entry in
         * its in-memory trail, not in its log: the two disagree, the next
         * append lands at the wrong index, and whether this entry reached a
         * follower cannot be told. A restart from disk is the only clean
         * state; the client sees its connection drop, "outcome unknown".
         * Local memory or disk only: no client content leads here
         * (docs/known-issues.md #7). */
        if (pr->env.fatal != NULL) {
            pr->env.fatal(pr->env.data, rv);
            batch_finish(b, FLIP_LEADERSHIPLOST);
            return;
        }
        flip_errorf(
            "propose: raft_apply failed after libraft took the "
            "entry: %s; stopping",
            raft_strerror(rv));
        abort();
    }
    if (rv != 0) {
        raft_free(buf.base);
        batch_finish(b, errmap_from_raft(rv));
        return;
    }
    queue_insert_tail(&pr->pending, &b->link);
    pr->n_entries++;
    pr->n_changes += b->n;
}

static int batch_has_key(const struct propose_batch *b, const char *key)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->items[i]->change.key, key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void copy_request_id(const Flip__RequestId *r, struct proposal *p)
{
    size_t n = r->client_id.len < sizeof p->rid_client ? r->client_id.len
                                                       : sizeof p->rid_client;

    flip__request_id__init(&p->rid);
    memcpy(p->rid_client, r->client_id.data, n);
    p->rid.has_client_id = 1;
    p->rid.client_id.data = p->rid_client;
    p->rid.client_id.len = n;
    p->rid.has_seq = r->has_seq;
    p->rid.seq = r->seq;
    p->change.request_id = &p->rid;
}

int propose_submit(struct propose *pr,
                   struct proposal *p,
                   const Flipcmd__Change *change,
                   proposal_cb cb)
{
    size_t alen;

    if (!is_leader(pr)) {
        return FLIP_NOTLEADER;
    }
    alen = change->actor != NULL ? strlen(change->actor) : 0;
    if (alen > CODEC_ACTOR_MAX) {
        return FLIP_INVALID;
    }
    /* One change per key per entry: a second change to the same key goes
     * into the next entry, so it gets its own revision. */
    if (pr->open != NULL && (pr->open->n == PROPOSE_BATCH_MAX ||
                             batch_has_key(pr->open, change->key))) {
        batch_propose(pr);
    }
    if (pr->open == NULL) {
        pr->open = flip_calloc(1, sizeof *pr->open);
        if (pr->open == NULL) {
            return FLIP_NOMEM;
        }
        pr->open->pr = pr;
        pr->open->seq = ++pr->seq;
        pr->env.arm(pr->env.data, PROPOSE_FLUSH, 0);
    }
    p->change = *change;
    if (change->value != NULL) {
        command_value_copy(change->value, &p->value);
        p->change.value = &p->value;
    }
    if (change->request_id != NULL) {
        copy_request_id(change->request_id, p);
    }
    if (change->actor != NULL) {
        memcpy(p->actor, change->actor, alen + 1);
        p->change.actor = p->actor;
    }
    p->have_outcome = 0;
    p->cb = cb;
    pr->open->items[pr->open->n++] = p;
    return FLIP_OK;
}

/* The entry applied at `index` is this batch's own: same process (the
 * incarnation), same batch, and the index raft gave it (H2 of the
 * correctness review). */
static int batch_is_entry(const struct propose_batch *b,
                          const Flipcmd__Command *cmd,
                          uint64_t index)
{
    return cmd->origin_incarnation == b->pr->incarnation &&
           cmd->origin_seq == b->seq && index == b->req.index;
}

static void batch_take_outcomes(struct propose_batch *b,
                                const Flipcmd__Command *cmd,
                                const struct fsm_outcome *outcomes)
{
    for (size_t i = 0; i < b->n && i < cmd->n_changes; i++) {
        b->items[i]->outcome = outcomes[i];
        b->items[i]->have_outcome = 1;
    }
}

void propose_on_applied(struct propose *pr,
                        uint64_t index,
                        const Flipcmd__Command *cmd,
                        const struct fsm_outcome *outcomes)
{
    struct queue *e;

    struct propose_batch *b;

    if (!pr->nudge_armed && is_leader(pr)) {
        pr->nudge_armed = 1;
        /* 2 ms: a client writing back to back sends its next write
         * sooner, and that entry carries the commit index for free */
        pr->env.arm(pr->env.data, PROPOSE_NUDGE, NUDGE_DELAY_MS);
    }
    if (cmd != NULL && cmd->origin_node == pr->env.id && cmd->n_changes > 0) {
        QUEUE_FOREACH (e, &pr->pending) {
            b = CONTAINER_OF(e, struct propose_batch, link);
            if (batch_is_entry(b, cmd, index)) {
                batch_take_outcomes(b, cmd, outcomes);
                return;
            }
        }
        QUEUE_FOREACH (e, &pr->limbo) {
            b = CONTAINER_OF(e, struct propose_batch, link);
            if (batch_is_entry(b, cmd, index)) {
                batch_take_outcomes(b, cmd, outcomes);
                limbo_finish(pr, b, FLIP_OK);
                return;
            }
        }
    }
    if (pr->n_limbo > 0) {
        limbo_passed(pr, index);
    }
}

/* Every batch in limbo the snapshot covers ends "outcome unknown" (H1 of
 * the correctness review): its index never passed through apply here. */
void propose_on_restored(struct propose *pr, uint64_t index)
{
    if (index > pr->restored) {
        pr->restored = index;
    }
    limbo_passed(pr, index);
}

/* Every applied entry: a batch in limbo whose index has been passed by an
 * entry that is not ours can never commit ("not applied"), unless a
 * snapshot install passed it (outcome unknown). */
static void limbo_passed(struct propose *pr, uint64_t index)
{
    struct queue *e;
    struct queue *next;

    for (e = pr->limbo.next; e != &pr->limbo; e = next) {
        struct propose_batch *b = CONTAINER_OF(e, struct propose_batch, link);
        next = e->next;
        if (b->req.index <= index) {
            limbo_finish(pr, b,
                         b->req.index <= pr->restored ? FLIP_LEADERSHIPLOST
                                                      : FLIP_NOTLEADER);
        }
    }
}

static void barrier_start(struct propose *pr);

static void barrier_done(struct raft_barrier *req, int status)
{
    struct propose *pr = req->data;
    int rv = errmap_from_raft(status);
    struct queue q;

    pr->barrier_inflight = 0;
    queue_init(&q);
    while (!queue_empty(&pr->served)) {
        struct queue *e = queue_head(&pr->served);
        queue_remove(e);
        queue_insert_tail(&q, e);
    }
    /* Start the next barrier before answering, so callbacks that queue new
     * reads join the right generation; but not inside raft_close (which
     * fires this): libraft 0.22.1 would take the barrier and never answer
     * it. Those waiters then lose their leader like the rest. */
    if (!queue_empty(&pr->next) && !raft_closing(pr)) {
        barrier_start(pr);
    }
    while (!queue_empty(&q)) {
        struct queue *e = queue_head(&q);
        struct read_wait *w = CONTAINER_OF(e, struct read_wait, link);
        queue_remove(e);
        w->cb(w, rv);
    }
    while (raft_closing(pr) && !queue_empty(&pr->next)) {
        struct queue *e = queue_head(&pr->next);
        struct read_wait *w = CONTAINER_OF(e, struct read_wait, link);
        queue_remove(e);
        w->cb(w, FLIP_LEADERSHIPLOST);
    }
}

static void barrier_start(struct propose *pr)
{
    int rv;

    while (!queue_empty(&pr->next)) {
        struct queue *e = queue_head(&pr->next);
        queue_remove(e);
        queue_insert_tail(&pr->served, e);
    }
    pr->barrier.data = pr;
    rv = raft_barrier(pr->env.raft, &pr->barrier, barrier_done);
    if (rv == 0) {
        pr->barrier_inflight = 1;
        return;
    }
    /* Deliver the failure on a later loop turn, never re-entrantly. */
    while (!queue_empty(&pr->served)) {
        struct queue *e = queue_head(&pr->served);
        queue_remove(e);
        queue_insert_tail(&pr->failed, e);
    }
    pr->failed_status = errmap_from_raft(rv);
    pr->env.arm(pr->env.data, PROPOSE_DEFER, 0);
}

int propose_read(struct propose *pr, struct read_wait *w, read_wait_cb cb)
{
    if (!is_leader(pr)) {
        return FLIP_NOTLEADER;
    }
    w->cb = cb;
    queue_insert_tail(&pr->next, &w->link);
    if (!pr->barrier_inflight) {
        barrier_start(pr);
    }
    return FLIP_OK;
}
