/* The membership operations of client/flip.h: the member list and
 * leadership transfer. Routing and retries are client.c's (client_call). */
#include <stdint.h>
#include <string.h>

#include "client/client.h"
#include "client/flag.h"
#include "lib/heap.h"
#include "proto/codec.h"

void flip_member_list_free(struct flip_member_info *m, size_t n)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        flip_free(m[i].raft_address);
        flip_free(m[i].client_address);
        flip_free(m[i].role);
    }
    flip_free(m);
}

static int member_from_wire(const Flip__Member *w,
                            uint64_t leader_id,
                            struct flip_member_info *m)
{
    m->id = w->id;
    m->leader = w->id == leader_id;
    m->reachable = w->reachable != 0;
    m->joined = w->joined != 0;
    m->match_index = w->match_index;
    m->lag = w->lag;
    m->raft_address = flag_dup_or_empty(w->raft_address);
    m->client_address = flag_dup_or_empty(w->client_address);
    m->role = flag_dup_or_empty(w->role);
    if (m->raft_address == NULL || m->client_address == NULL ||
        m->role == NULL) {
        return FLIP_NOMEM;
    }
    return FLIP_OK;
}

int flip_member_list(struct flip_client *c,
                     struct flip_member_info **out,
                     size_t *n_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__MemberListRequest ml = FLIP__MEMBER_LIST_REQUEST__INIT;
    Flip__Response *resp = NULL;
    const Flip__MemberListResult *res;
    struct flip_member_info *m = NULL;
    size_t n = 0;
    int rv;

    *out = NULL;
    *n_out = 0;
    req.op_case = FLIP__REQUEST__OP_MEMBER_LIST;
    req.member_list = &ml;
    rv = client_call(c, CLIENT_READ, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_MEMBER_LIST);
    if (rv != FLIP_OK) {
        goto out;
    }
    res = resp->member_list;
    if (res->n_members > 0) {
        m = flip_calloc(res->n_members, sizeof *m);
        if (m == NULL) {
            rv = FLIP_NOMEM;
            goto out;
        }
    }
    for (; n < res->n_members; n++) {
        rv = member_from_wire(res->members[n], res->leader_id, &m[n]);
        if (rv != FLIP_OK) {
            n++; /* frees the partial copy too */
            goto out;
        }
    }
    *out = m;
    *n_out = n;
    m = NULL;

out:
    if (rv == FLIP_NOMEM) {
        client_set_err(c, "out of memory");
    }
    flip_member_list_free(m, n);
    codec_response_free(resp);
    return rv;
}

int flip_leader_transfer(struct flip_client *c,
                         uint64_t id,
                         uint64_t *leader_out,
                         int *already_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__LeaderTransferRequest lt = FLIP__LEADER_TRANSFER_REQUEST__INIT;
    Flip__Response *resp = NULL;
    int rv;

    if (leader_out != NULL) {
        *leader_out = 0;
    }
    if (already_out != NULL) {
        *already_out = 0;
    }
    if (id != 0) {
        lt.has_id = 1;
        lt.id = id;
    }
    req.op_case = FLIP__REQUEST__OP_LEADER_TRANSFER;
    req.leader_transfer = &lt;
    rv = client_call(c, CLIENT_WRITE, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_LEADER_TRANSFER);
    if (rv == FLIP_OK) {
        if (leader_out != NULL) {
            *leader_out = resp->leader_transfer->leader_id;
        }
        if (already_out != NULL) {
            *already_out = resp->leader_transfer->already != 0;
        }
    }
    codec_response_free(resp);
    return rv;
}

int flip_member_change(struct flip_client *c,
                       enum flip_member_action action,
                       uint64_t id,
                       const char *raft,
                       const char *client,
                       const char *role,
                       int *already_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__MemberChangeRequest mc = FLIP__MEMBER_CHANGE_REQUEST__INIT;
    Flip__Response *resp = NULL;
    int rv;

    if (already_out != NULL) {
        *already_out = 0;
    }
    mc.has_action = 1;
    mc.action = (Flip__MemberAction)action;
    mc.has_id = 1;
    mc.id = id;
    mc.raft_address = (char *)(uintptr_t)raft;
    mc.client_address = (char *)(uintptr_t)client;
    mc.role = (char *)(uintptr_t)role;
    req.op_case = FLIP__REQUEST__OP_MEMBER_CHANGE;
    req.member_change = &mc;
    rv = client_call(c, CLIENT_READ, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_MEMBER_CHANGE);
    if (rv == FLIP_OK && already_out != NULL) {
        *already_out = resp->member_change->already != 0;
    }
    codec_response_free(resp);
    return rv;
}
