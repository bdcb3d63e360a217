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

void cluster_command(const char *key,
                     const char *value,
                     int cas,
                     uint64_t expected,
                     struct raft_buffer *out)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change *chs[1] = { &ch };
    Flip__Value v = FLIP__VALUE__INIT;

    cmd.has_time_ms = 1;
    cmd.time_ms = 1700000000000;
    cmd.has_changelog_keep = 1;
    cmd.changelog_keep = 50;
    cmd.n_changes = 1;
    cmd.changes = chs;
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = (char *)key;
    ch.value = &v;
    ch.actor = "test";
    ch.has_expected_revision = cas;
    ch.expected_revision = expected;
    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = (char *)value;
    encode(&cmd, out);
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
