/* raft_fixture cluster running the real FSM; see cluster.h. */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "proto/command.h"
#include "runner.h"
#include "tmpdir.h"

static void silent_emit(struct raft_tracer *t, int type, const void *info)
{
    (void)t;
    (void)type;
    (void)info;
}

static struct raft_tracer silent_tracer = { NULL, 2, silent_emit };

static void record(void *data,
                   uint64_t index,
                   const Flipcmd__Command *cmd,
                   const struct fsm_outcome *outcomes)
{
    struct cluster_seen *seen = data;
    size_t at = seen->next++ % CLUSTER_SEEN;
    size_t n = cmd != NULL ? cmd->n_changes : 0;

    seen->index[at] = index;
    seen->n_changes[at] = n;
    for (size_t i = 0; i < n && i < CLUSTER_SEEN_CHANGES; i++) {
        seen->out[at][i] = outcomes[i];
    }
}

void cluster_start(struct cluster *c, unsigned n)
{
    struct raft_configuration conf;

    memset(c, 0, sizeof *c);
    c->n = n;
    CHECK_EQ_INT(raft_fixture_init(&c->f), 0);
    for (unsigned i = 0; i < n; i++) {
        tmpdir_make(c->dirs[i], sizeof c->dirs[i]);
        CHECK_EQ_INT(store_open(&c->stores[i], c->dirs[i], 1u << 26), FLIP_OK);
        fsm_init(&c->fsms[i], c->stores[i]);
        c->fsms[i].observer.data = &c->seen[i];
        c->fsms[i].observer.on_applied = record;
        CHECK_EQ_INT(raft_fixture_grow(&c->f, &c->fsms[i].raft_fsm), 0);
        c->fsms[i].raft = raft_fixture_get(&c->f, i);
        c->fsms[i].raft->tracer = &silent_tracer;
    }
    CHECK_EQ_INT(raft_fixture_configuration(&c->f, n, &conf), 0);
    CHECK_EQ_INT(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    CHECK_EQ_INT(raft_fixture_start(&c->f), 0);
}

void cluster_stop(struct cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++) {
        store_close(c->stores[i]);
        tmpdir_remove(c->dirs[i]);
    }
}

void cluster_elect(struct cluster *c, unsigned i)
{
    raft_fixture_elect(&c->f, i);
    CHECK(raft_fixture_leader_index(&c->f) == i);
}

int cluster_leader(struct cluster *c)
{
    unsigned i = raft_fixture_leader_index(&c->f);
    return i < c->n ? (int)i : -1;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct cluster *c = req->data;
    (void)result;
    c->n_apply_done++;
    c->last_status = status;
    free(req);
}

static void encode(const Flipcmd__Command *cmd, struct raft_buffer *out)
{
    out->len = command_size(cmd);
    CHECK(out->len % 8 == 0);
    out->base = raft_malloc(out->len);
    CHECK(out->base != NULL);
    command_write(cmd, out->base);
}

void cluster_encode(const struct cluster_entry *e, struct raft_buffer *out)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change chs[CLUSTER_SEEN_CHANGES];
    Flipcmd__Change *ptrs[CLUSTER_SEEN_CHANGES];
    Flip__Value vs[CLUSTER_SEEN_CHANGES];
    Flip__RequestId ids[CLUSTER_SEEN_CHANGES];
    uint8_t client[16];

    CHECK(e->n <= CLUSTER_SEEN_CHANGES);
    memset(client, 0x5a, sizeof client);
    cmd.has_time_ms = e->time_ms != -1;
    cmd.time_ms = e->time_ms > 0 ? e->time_ms : 1700000000000;
    cmd.has_changelog_keep = 1;
    cmd.changelog_keep = e->changelog_keep != 0 ? e->changelog_keep : 50;
    cmd.n_changes = e->n;
    cmd.changes = ptrs;
    cmd.cluster_id = (char *)e->cluster_id;
    cmd.has_joined_member = e->joined_member != 0;
    cmd.joined_member = e->joined_member;
    for (size_t i = 0; i < e->n; i++) {
        const struct cluster_change *c = &e->changes[i];
        Flipcmd__Change *ch = &chs[i];

        flipcmd__change__init(ch);
        ptrs[i] = ch;
        ch->has_op = 1;
        ch->key = (char *)c->key;
        ch->actor = "test";
        ch->reason = (char *)c->reason;
        ch->has_expected_revision = c->cas;
        ch->expected_revision = c->expected;
        if (c->v != NULL) {
            ch->op = FLIPCMD__OP__SET;
            ch->value = (Flip__Value *)c->v;
        } else if (c->value != NULL) {
            ch->op = FLIPCMD__OP__SET;
            flip__value__init(&vs[i]);
            vs[i].kind_case = FLIP__VALUE__KIND_STRING_VALUE;
            vs[i].string_value = (char *)c->value;
            ch->value = &vs[i];
        } else {
            ch->op = FLIPCMD__OP__DELETE;
        }
        if (c->request_seq != 0) {
            flip__request_id__init(&ids[i]);
            ids[i].has_client_id = 1;
            ids[i].client_id.data = client;
            ids[i].client_id.len = sizeof client;
            ids[i].has_seq = 1;
            ids[i].seq = c->request_seq;
            ch->request_id = &ids[i];
        }
    }
    encode(&cmd, out);
}

void cluster_command(const char *key,
                     const char *value,
                     int cas,
                     uint64_t expected,
                     struct raft_buffer *out)
{
    struct cluster_change ch = {
        .key = key, .value = value, .cas = cas, .expected = expected
    };
    struct cluster_entry e = { .changes = &ch, .n = 1 };

    cluster_encode(&e, out);
}

/* Proposes `buf` (handed to raft) on the leader; its index, or 0. */
static uint64_t propose(struct cluster *c, struct raft_buffer *buf)
{
    struct raft_apply *req;
    int leader = cluster_leader(c);
    struct raft *r;

    if (leader < 0) {
        raft_free(buf->base);
        return 0;
    }
    r = raft_fixture_get(&c->f, (unsigned)leader);
    req = calloc(1, sizeof *req);
    req->data = c;
    if (raft_apply(r, req, buf, 1, apply_cb) != 0) {
        raft_free(buf->base);
        free(req);
        return 0;
    }
    return req->index;
}

uint64_t cluster_set(struct cluster *c,
                     const char *key,
                     const char *value,
                     int cas,
                     uint64_t expected)
{
    struct raft_buffer buf;

    cluster_command(key, value, cas, expected, &buf);
    return propose(c, &buf);
}

uint64_t cluster_write(struct cluster *c, const struct cluster_entry *e)
{
    struct raft_buffer buf;

    cluster_encode(e, &buf);
    return propose(c, &buf);
}

uint64_t cluster_propose_raw(struct cluster *c, const void *bytes, size_t len)
{
    struct raft_buffer buf = { raft_malloc(len), len };

    CHECK(buf.base != NULL);
    memcpy(buf.base, bytes, len);
    return propose(c, &buf);
}

struct fsm_outcome cluster_outcome(struct cluster *c,
                                   unsigned server,
                                   uint64_t index,
                                   size_t pos)
{
    struct cluster_seen *seen = &c->seen[server];
    struct fsm_outcome none;

    memset(&none, 0, sizeof none);
    for (size_t i = 0; i < CLUSTER_SEEN && i < seen->next; i++) {
        if (seen->index[i] == index && pos < seen->n_changes[i] &&
            pos < CLUSTER_SEEN_CHANGES) {
            return seen->out[i][pos];
        }
    }
    fprintf(stderr, "  server %u has no outcome for change %zu of entry %llu\n",
            server, pos, (unsigned long long)index);
    CHECK(0);
    return none;
}

void cluster_check_outcome(struct cluster *c,
                           uint64_t index,
                           size_t pos,
                           enum fsm_status st,
                           uint64_t revision)
{
    for (unsigned s = 0; s < c->n; s++) {
        struct fsm_outcome o = cluster_outcome(c, s, index, pos);
        if (o.status != st ||
            (revision != CLUSTER_ANY_REVISION && o.revision != revision)) {
            fprintf(stderr,
                    "  server %u, entry %llu change %zu: status %d revision "
                    "%llu, expected %d %llu\n",
                    s, (unsigned long long)index, pos, (int)o.status,
                    (unsigned long long)o.revision, (int)st,
                    (unsigned long long)revision);
            CHECK(0);
        }
    }
}

uint64_t cluster_apply(struct cluster *c, const Flipcmd__Command *cmd)
{
    struct raft_buffer buf;

    encode(cmd, &buf);
    return propose(c, &buf);
}

int cluster_wait_applied(struct cluster *c, uint64_t index, unsigned max_ms)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (!raft_fixture_alive(&c->f, i)) {
            continue;
        }
        if (!raft_fixture_step_until_applied(&c->f, i, index, max_ms)) {
            return 0;
        }
    }
    return 1;
}
