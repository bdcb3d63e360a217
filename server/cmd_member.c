/* Membership requests: the member list as the leader holds it and
 * leadership transfer (raft/member.h). Both are served by the leader
 * only; any other node answers NOT_LEADER, which the library follows. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "raft/member.h"
#include "server.h"

/* Members shown; libraft has no limit, flipd's --cluster has 16. */
#define MEMBER_LIST_MAX 64

void cmd_member_list(struct conn *c, Flip__Request *req)
{
    struct node *n = &server_of(c)->node;
    struct node_member_view v[MEMBER_LIST_MAX];
    Flip__Member members[MEMBER_LIST_MAX];
    Flip__Member *ptrs[MEMBER_LIST_MAX];
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__MemberListResult res = FLIP__MEMBER_LIST_RESULT__INIT;
    uint64_t commit = raft_commit_index(&n->raft);
    unsigned count = 0;

    if (node_members(n, v, MEMBER_LIST_MAX, &count) != FLIP_OK) {
        dispatch_not_leader(c, req->id);
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        Flip__Member *m = &members[i];
        const char *role = node_member_role_name(v[i].role);

        flip__member__init(m);
        m->has_id = 1;
        m->id = v[i].id;
        m->raft_address = v[i].raft_address;
        m->client_address = v[i].client_address;
        m->has_voter = 1;
        m->voter = v[i].role == RAFT_VOTER;
        m->has_joined = 1;
        m->joined = node_member_joined(n, v[i].id);
        m->role = (char *)(uintptr_t)role;
        m->has_reachable = 1;
        m->reachable = v[i].reachable;
        m->has_match_index = 1;
        m->match_index = v[i].match;
        m->has_lag = 1;
        m->lag = commit > v[i].match ? commit - v[i].match : 0;
        ptrs[i] = m;
    }
    resp.has_id = 1;
    resp.id = req->id;
    res.n_members = count;
    res.members = ptrs;
    res.has_leader_id = 1;
    res.leader_id = server_of(c)->config.id;
    res.has_commit_index = 1;
    res.commit_index = commit;
    resp.result_case = FLIP__RESPONSE__RESULT_MEMBER_LIST;
    resp.member_list = &res;
    conn_send(c, &resp);
}

struct transfer_op
{
    struct node_transfer t; /* first: raft hands it back */
    struct op *op;
};

static void reply_transfer(struct conn *c,
                           uint64_t id,
                           const struct node_member *leader,
                           uint64_t leader_id,
                           int already)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__LeaderTransferResult res = FLIP__LEADER_TRANSFER_RESULT__INIT;

    resp.has_id = 1;
    resp.id = id;
    res.has_leader_id = 1;
    res.leader_id = leader_id;
    if (leader != NULL) {
        res.leader_address = (char *)(uintptr_t)leader->client_address;
    }
    res.has_already = 1;
    res.already = already;
    resp.result_case = FLIP__RESPONSE__RESULT_LEADER_TRANSFER;
    resp.leader_transfer = &res;
    conn_send(c, &resp);
}

static void transfer_done(struct node_transfer *t, uint64_t leader_id)
{
    struct transfer_op *x = (struct transfer_op *)t;
    struct op *op = x->op;
    char msg[160];

    if (op->conn != NULL) {
        int moved = leader_id != 0 && leader_id != op->d->self_id &&
                    (t->target == 0 || leader_id == t->target);
        if (moved) {
            reply_transfer(op->conn, op->req->id,
                           node_member_by_id(t->n, leader_id), leader_id, 0);
        } else {
            snprintf(msg, sizeof msg,
                     "leadership did not move to node %llu within an "
                     "election timeout (leader now: %llu); retry",
                     (unsigned long long)t->target,
                     (unsigned long long)leader_id);
            conn_send_error(op->conn, op->req->id, FLIP__STATUS__UNAVAILABLE,
                            msg);
        }
    }
    op_free(op);
    flip_free(x);
}

void cmd_leader_transfer(struct conn *c, Flip__Request *req)
{
    struct node *n = &server_of(c)->node;
    const Flip__LeaderTransferRequest *lt = req->leader_transfer;
    uint64_t target = lt->has_id ? lt->id : 0;
    const struct node_member *leader = node_leader(n);
    struct transfer_op *x;
    char msg[160];
    int rv;

    if (leader != NULL && target != 0 && leader->id == target) {
        /* a retry after the transfer happened, or asked of the target */
        reply_transfer(c, req->id, leader, leader->id, 1);
        return;
    }
    if (!node_is_leader(n)) {
        dispatch_not_leader(c, req->id);
        return;
    }
    x = flip_calloc(1, sizeof *x);
    if (x != NULL) {
        x->op = op_new(c, req);
    }
    if (x == NULL || x->op == NULL) {
        flip_free(x);
        dispatch_error(c, req->id, FLIP_NOMEM, NULL);
        return;
    }
    rv = node_transfer(n, &x->t, target, transfer_done);
    if (rv == FLIP_OK) {
        return; /* transfer_done answers and frees */
    }
    if (rv == FLIP_INVALID && target == 0) {
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
                        "no other voter to hand leadership to");
    } else if (rv == FLIP_INVALID) {
        snprintf(msg, sizeof msg,
                 "node %llu is not another voter of the configuration",
                 (unsigned long long)target);
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT, msg);
    } else if (rv == FLIP_UNAVAILABLE) {
        conn_send_error(c, req->id, FLIP__STATUS__UNAVAILABLE,
                        "a leadership transfer or a planned stop is "
                        "under way; retry");
    } else {
        dispatch_error(c, req->id, rv, NULL);
    }
    op_free(x->op);
    flip_free(x);
}

/* ---- configuration changes ----------------------------------------------- */

struct change_op
{
    struct node_change ch; /* first: raft hands it back */
    struct op *op;
};

static void reply_change(struct conn *c, uint64_t id, int already)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__MemberChangeResult res = FLIP__MEMBER_CHANGE_RESULT__INIT;

    resp.has_id = 1;
    resp.id = id;
    res.has_already = 1;
    res.already = already;
    resp.result_case = FLIP__RESPONSE__RESULT_MEMBER_CHANGE;
    resp.member_change = &res;
    conn_send(c, &resp);
}

static void change_done(struct node_change *ch, int status)
{
    struct change_op *x = (struct change_op *)ch;
    struct op *op = x->op;

    if (op->conn != NULL) {
        if (status == FLIP_OK) {
            reply_change(op->conn, op->req->id, 0);
        } else if (status == FLIP_UNAVAILABLE) {
            conn_send_error(op->conn, op->req->id, FLIP__STATUS__UNAVAILABLE,
                            "another membership change is in progress; "
                            "retry");
        } else {
            dispatch_error(op->conn, op->req->id, status,
                           "the membership change did not complete; retry "
                           "(it is safe to)");
        }
    }
    op_free(op);
    flip_free(x);
}

static int parse_role(const char *text, int *role)
{
    if (text == NULL || strcmp(text, "voter") == 0) {
        *role = RAFT_VOTER;
    } else if (strcmp(text, "standby") == 0) {
        *role = RAFT_STANDBY;
    } else if (strcmp(text, "spare") == 0) {
        *role = RAFT_SPARE;
    } else {
        return FLIP_INVALID;
    }
    return FLIP_OK;
}

/* An IPv4 HOST:PORT that fits a member's address. */
static int check_member_addr(const char *a)
{
    char host[NODE_ADDR_MAX];
    int port;

    if (a == NULL || strlen(a) >= NODE_ADDR_MAX || strchr(a, '/') != NULL) {
        return FLIP_INVALID;
    }
    return config_split_address(a, host, sizeof host, &port);
}

/* The request's arguments, or a message saying what is wrong. */
static const char *check_change(const Flip__MemberChangeRequest *mc, int *role)
{
    if (!mc->has_id || mc->id == 0 || mc->id > INT64_MAX) {
        return "id: a node id from 1 to 2^63-1";
    }
    if (parse_role(mc->role, role) != FLIP_OK) {
        return "role: voter, standby or spare";
    }
    switch (mc->action) {
    case FLIP__MEMBER_ACTION__MEMBER_ADD:
        if (check_member_addr(mc->raft_address) != FLIP_OK ||
            check_member_addr(mc->client_address) != FLIP_OK) {
            return "raft_address and client_address: IPv4 HOST:PORT each";
        }
        return NULL;
    case FLIP__MEMBER_ACTION__MEMBER_REMOVE:
        return NULL;
    case FLIP__MEMBER_ACTION__MEMBER_ASSIGN:
        return mc->role == NULL ? "role: required to assign one" : NULL;
    default:
        return "action: add, remove or assign";
    }
}

void cmd_member_change(struct conn *c, Flip__Request *req)
{
    struct node *n = &server_of(c)->node;
    const Flip__MemberChangeRequest *mc = req->member_change;
    struct change_op *x;
    const char *bad;
    int role = RAFT_VOTER;
    int already = 0;
    int rv;

    bad = check_change(mc, &role);
    if (bad != NULL) {
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT, bad);
        return;
    }
    if (!node_is_leader(n)) {
        dispatch_not_leader(c, req->id);
        return;
    }
    x = flip_calloc(1, sizeof *x);
    if (x != NULL) {
        x->op = op_new(c, req);
    }
    if (x == NULL || x->op == NULL) {
        flip_free(x);
        dispatch_error(c, req->id, FLIP_NOMEM, NULL);
        return;
    }
    switch (mc->action) {
    case FLIP__MEMBER_ACTION__MEMBER_ADD:
        rv = node_member_add(n, &x->ch, mc->id, mc->raft_address,
                             mc->client_address, role, change_done, &already);
        break;
    case FLIP__MEMBER_ACTION__MEMBER_REMOVE:
        rv = node_member_remove(n, &x->ch, mc->id, change_done, &already);
        break;
    default:
        rv = node_member_assign(n, &x->ch, mc->id, role, change_done, &already);
        break;
    }
    if (rv == FLIP_OK && !already) {
        return; /* change_done answers and frees */
    }
    if (rv == FLIP_OK) {
        reply_change(c, req->id, 1);
    } else if (rv == FLIP_INVALID) {
        conn_send_error(
            c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
            x->ch.why[0] != '\0' ? x->ch.why : "the change was refused");
    } else if (rv == FLIP_UNAVAILABLE) {
        conn_send_error(c, req->id, FLIP__STATUS__UNAVAILABLE,
                        "another membership change is in progress; retry");
    } else {
        dispatch_error(c, req->id, rv, NULL);
    }
    op_free(x->op);
    flip_free(x);
}
