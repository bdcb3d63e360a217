/* The real raft/propose.c (included, its exported names renamed so the
 * linked copy does not clash) fed the callbacks libraft and the FSM make:
 * a batch is answered only by its own entry, and a batch whose entry an
 * installed snapshot covered is never answered "not applied". These are
 * H1 and H2 of the 2026-12-07 correctness review. */
#define propose_init        tp_propose_init
#define propose_close       tp_propose_close
#define propose_submit      tp_propose_submit
#define propose_read        tp_propose_read
#define propose_outstanding tp_propose_outstanding
#define propose_nudge_now   tp_propose_nudge_now
#define propose_on_applied  tp_propose_on_applied
#define propose_on_restored tp_propose_on_restored
#define propose_fire        tp_propose_fire
#include "../lib/runner.h"
#include "raft/propose.c"

struct probe
{
    int fired;
    int status;
    struct fsm_outcome outcome;
};

static struct probe probe;

static void on_done(struct proposal *p, int status)
{
    probe.fired++;
    probe.status = status;
    probe.outcome = p->outcome;
}

struct rig
{
    struct raft raft;
    int armed[PROPOSE_N_TIMERS];
    struct propose pr;
    struct proposal p;
    Flip__Value value;
};

/* A host whose timers never fire: the tests call what they would. */
static uint64_t rig_now(void *data)
{
    (void)data;
    return 1000;
}

static int64_t rig_wall_ms(void *data)
{
    (void)data;
    return 1700000000000;
}

static void rig_arm(void *data, enum propose_timer t, uint64_t ms)
{
    struct rig *g = data;
    (void)ms;
    g->armed[t] = 1;
}

static void rig_disarm(void *data, enum propose_timer t)
{
    struct rig *g = data;
    g->armed[t] = 0;
}

static int rig_no(void *data)
{
    (void)data;
    return 0;
}

static void rig_start(struct rig *g)
{
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    struct propose_env env = {
        .raft = &g->raft,
        .id = 1,
        .limbo_ms = 500,
        .data = g,
        .now = rig_now,
        .wall_ms = rig_wall_ms,
        .arm = rig_arm,
        .disarm = rig_disarm,
        .closing = rig_no,
        .raft_closing = rig_no,
    };

    memset(g, 0, sizeof *g);
    g->raft.state = RAFT_LEADER;
    propose_init(&g->pr, &env, 0);
    memset(&probe, 0, sizeof probe);
    probe.status = -1;
    flip__value__init(&g->value);
    g->value.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = (char *)"checkout.new_flow";
    ch.value = &g->value;
    ch.actor = (char *)"client";
    CHECK_EQ_INT(propose_submit(&g->pr, &g->p, &ch, on_done), FLIP_OK);
}

/* What batch_propose does once raft_apply accepted the entry at `index`
 * (raft_apply itself needs a running raft). */
static struct propose_batch *rig_proposed(struct rig *g, uint64_t index)
{
    struct propose_batch *b = g->pr.open;

    g->pr.open = NULL;
    b->req.index = index;
    queue_insert_tail(&g->pr.pending, &b->link);
    return b;
}

/* The FSM observer for an entry of node `origin`, incarnation `inc`. */
static void rig_apply(struct rig *g,
                      uint64_t index,
                      uint64_t origin,
                      uint64_t inc,
                      uint64_t seq)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change *chs[1] = { &ch };
    struct fsm_outcome out[1] = { { .status = FSM_OK, .revision = index } };

    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = (char *)"checkout.new_flow";
    ch.value = &g->value;
    cmd.n_changes = 1;
    cmd.changes = chs;
    cmd.has_origin_node = 1;
    cmd.origin_node = origin;
    cmd.has_origin_incarnation = 1;
    cmd.origin_incarnation = inc;
    cmd.has_origin_seq = 1;
    cmd.origin_seq = seq;
    propose_on_applied(&g->pr, index, &cmd, out);
}

static void rig_stop(struct rig *g)
{
    propose_close(&g->pr);
    for (int t = 0; t < PROPOSE_N_TIMERS; t++) {
        CHECK_EQ_INT(g->armed[t], 0);
    }
}

/* An entry of this node's previous process with the same sequence number
 * is not this batch's: the batch in limbo stays unanswered by it, and
 * ends "outcome unknown" or "not applied", never OK with another entry's
 * revision (H2). */
TEST(propose_old_incarnation_never_acknowledges, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 5002);
    CHECK(b->seq == 1);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK_EQ_INT(g.pr.n_limbo, 1);
    /* node 1's previous process proposed seq 1 too; it commits at 4097 */
    rig_apply(&g, 4097, 1, g.pr.incarnation ^ 0x5a5a, 1);
    CHECK_EQ_INT(probe.fired, 0);
    /* another entry takes index 5002: ours can never commit */
    rig_apply(&g, 5002, 2, 77, 9);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK(probe.status != FLIP_OK);
    rig_stop(&g);
}

/* The same while the batch is still pending: the old entry does not mark
 * it applied, so leadership lost stays "outcome unknown" (H2, A2). */
TEST(propose_old_incarnation_pending_not_applied, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 5002);
    rig_apply(&g, 4097, 1, g.pr.incarnation + 1, 1);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK(probe.fired == 0 || probe.status != FLIP_OK);
    rig_stop(&g);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK(probe.status != FLIP_OK);
}

/* Our own entry, but at another index than the batch was given (a log
 * rewritten after a crash), does not answer the batch either. */
TEST(propose_own_entry_only_at_its_index, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 40);
    rig_apply(&g, 39, 1, g.pr.incarnation, b->seq);
    CHECK_EQ_INT(probe.fired, 0);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL); /* -> limbo */
    CHECK_EQ_INT(probe.fired, 0);
    rig_apply(&g, 40, 1, g.pr.incarnation, b->seq);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK_EQ_INT(probe.status, FLIP_OK);
    CHECK_EQ_INT(probe.outcome.revision, 40);
    rig_stop(&g);
}

/* A deposed leader whose batch is in limbo catches up by a snapshot that
 * covers the batch's index: the batch is answered "outcome unknown"
 * (LEADERSHIP_LOST), and a later foreign entry does not turn it into
 * NOT_LEADER, which clients take as "not applied, resend" (H1). */
TEST(propose_snapshot_over_limbo_is_unknown, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 120);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK_EQ_INT(g.pr.n_limbo, 1);
    propose_on_restored(&g.pr, 300);
    rig_apply(&g, 301, 2, 77, 5);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK_EQ_INT(probe.status, FLIP_LEADERSHIPLOST);
    rig_stop(&g);
}

/* A batch that enters limbo after a snapshot already covered its index
 * (the install landed first) is unknown at once, not NOT_LEADER later. */
TEST(propose_limbo_after_snapshot_is_unknown, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 120);
    propose_on_restored(&g.pr, 300);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK_EQ_INT(probe.status, FLIP_LEADERSHIPLOST);
    rig_stop(&g);
}

/* Nothing the client sent beyond the validated members reaches the entry:
 * unknown fields inside the value are dropped at submit (F1, F6). */
TEST(propose_entry_drops_unknown_value_fields, 10)
{
    struct rig g;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    struct proposal p2;
    ProtobufCMessageUnknownField junk;
    static uint8_t bytes[70000];

    rig_start(&g);
    bytes[0] = (uint8_t)(0x80 | (69997 & 0x7f)); /* the length prefix */
    bytes[1] = (uint8_t)(0x80 | ((69997 >> 7) & 0x7f));
    bytes[2] = (uint8_t)(69997 >> 14);
    junk.tag = 100;
    junk.wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    junk.len = sizeof bytes;
    junk.data = bytes;
    g.value.base.n_unknown_fields = 1;
    g.value.base.unknown_fields = &junk;
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = (char *)"other.flag";
    ch.value = &g.value;
    CHECK_EQ_INT(propose_submit(&g.pr, &p2, &ch, on_done), FLIP_OK);
    CHECK(p2.change.value != &g.value);
    CHECK_EQ_INT(p2.change.value->base.n_unknown_fields, 0);
    CHECK(flip__value__get_packed_size(p2.change.value) < 16);
    g.value.base.n_unknown_fields = 0;
    g.value.base.unknown_fields = NULL;
    rig_stop(&g);
}

/* A batch in limbo whose index another entry took can never commit: it is
 * answered exactly NOT_LEADER, which tells the client "not applied, safe
 * to resend" (docs/protocol.md), not the "outcome unknown" of
 * LEADERSHIP_LOST. */
TEST(propose_limbo_passed_is_not_leader, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 120);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK_EQ_INT(g.pr.n_limbo, 1);
    CHECK_EQ_INT(probe.fired, 0);
    rig_apply(&g, 120, 2, 77, 5);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK_EQ_INT(probe.status, FLIP_NOTLEADER);
    CHECK_EQ_INT(g.pr.n_limbo, 0);
    rig_stop(&g);
}

/* A batch applied here before libraft reports leadership lost was
 * committed: it is answered OK with its revision at once, not parked in
 * limbo to be answered otherwise later. */
TEST(propose_applied_before_lost_is_ok, 10)
{
    struct rig g;
    struct propose_batch *b;

    rig_start(&g);
    b = rig_proposed(&g, 40);
    rig_apply(&g, 40, 1, g.pr.incarnation, b->seq);
    CHECK_EQ_INT(probe.fired, 0);
    g.raft.state = RAFT_FOLLOWER;
    apply_done(&b->req, RAFT_LEADERSHIPLOST, NULL);
    CHECK_EQ_INT(probe.fired, 1);
    CHECK_EQ_INT(probe.status, FLIP_OK);
    CHECK_EQ_INT(probe.outcome.revision, 40);
    CHECK_EQ_INT(g.pr.n_limbo, 0);
    rig_stop(&g);
}

static int read_fired;
static int read_status;

static void on_read(struct read_wait *w, int status)
{
    (void)w;
    read_fired++;
    read_status = status;
}

/* A read whose barrier failed waits for the deferred timer to be told;
 * closing disarms that timer, so closing answers it (review of session 5:
 * it was never answered, and its request never freed). */
TEST(propose_close_answers_failed_reads, 10)
{
    struct rig g;
    struct read_wait w;

    rig_start(&g);
    read_fired = 0;
    w.cb = on_read;
    queue_insert_tail(&g.pr.failed, &w.link);
    g.pr.failed_status = FLIP_LEADERSHIPLOST;
    g.armed[PROPOSE_DEFER] = 1;
    rig_stop(&g);
    CHECK_EQ_INT(read_fired, 1);
    CHECK_EQ_INT(read_status, FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(probe.fired, 1); /* the open batch: not proposed */
}
