/* Request routing; see dispatch.h. */
#include "dispatch.h"

#include <stdio.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "server.h"

struct op *op_new(struct conn *c, Flip__Request *req)
{
    struct op *op = flip_calloc(1, sizeof *op);
    if (op == NULL) {
        return NULL;
    }
    op->conn = c;
    op->req = req;
    op->proposal.data = op;
    op->read.data = op;
    queue_insert_tail(&c->ops, &op->link);
    return op;
}

void op_free(struct op *op)
{
    if (op->conn != NULL) {
        queue_remove(&op->link);
    }
    codec_request_free(op->req);
    flip_free(op);
}

void dispatch_detach(struct conn *c)
{
    while (!queue_empty(&c->ops)) {
        struct queue *e = queue_head(&c->ops);
        struct op *op = CONTAINER_OF(e, struct op, link);
        queue_remove(e);
        op->conn = NULL;
    }
}

void dispatch_not_leader(struct conn *c, uint64_t id)
{
    const struct node_member *leader = node_leader(&c->srv->node);
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__Error err = FLIP__ERROR__INIT;
    char msg[128];

    if (leader == NULL || leader->id == c->srv->config.id) {
        conn_send_error(c, id, FLIP__STATUS__UNAVAILABLE,
                        "no leader known yet; retry shortly");
        return;
    }
    snprintf(msg, sizeof msg, "not the leader; leader is node %llu at %s",
             (unsigned long long)leader->id, leader->client_address);
    resp.has_id = 1;
    resp.id = id;
    err.has_status = 1;
    err.status = FLIP__STATUS__NOT_LEADER;
    err.message = msg;
    err.leader_address = (char *)(uintptr_t)leader->client_address;
    err.has_leader_id = 1;
    err.leader_id = leader->id;
    resp.error = &err;
    conn_send(c, &resp);
}

void dispatch_error(struct conn *c, uint64_t id, int rv, const char *message)
{
    Flip__Status st;

    switch (rv) {
    case FLIP_NOTLEADER:
        dispatch_not_leader(c, id);
        return;
    case FLIP_NOTFOUND:
        st = FLIP__STATUS__NOT_FOUND;
        break;
    case FLIP_CONFLICT:
        st = FLIP__STATUS__CAS_CONFLICT;
        break;
    case FLIP_INVALID:
        st = FLIP__STATUS__INVALID_ARGUMENT;
        break;
    case FLIP_TOOBIG:
        st = FLIP__STATUS__TOO_LARGE;
        break;
    case FLIP_LEADERSHIPLOST:
        st = FLIP__STATUS__LEADERSHIP_LOST;
        break;
    case FLIP_NOSPACE:
        st = FLIP__STATUS__NO_SPACE;
        break;
    case FLIP_STOREFULL:
        st = FLIP__STATUS__STORE_FULL;
        break;
    case FLIP_TYPEMISMATCH:
        st = FLIP__STATUS__TYPE_MISMATCH;
        break;
    case FLIP_UNAVAILABLE:
    case FLIP_BUSY:
        st = FLIP__STATUS__UNAVAILABLE;
        break;
    default:
        st = FLIP__STATUS__INTERNAL;
        break;
    }
    conn_send_error(c, id, st, message != NULL ? message : flip_strerror(rv));
}

void dispatch_request(struct conn *c, Flip__Request *req)
{
    uint64_t id = req->id;

    if (!c->hello_done && req->op_case != FLIP__REQUEST__OP_HELLO) {
        conn_send_error(c, id, FLIP__STATUS__INVALID_ARGUMENT,
                        "the first request must be Hello");
        codec_request_free(req);
        return;
    }
    switch (req->op_case) {
#define DISPATCH_CASE(op, fn) \
    case op:                  \
        fn(c, req);           \
        return;
        REQUEST_TYPES(DISPATCH_CASE)
#undef DISPATCH_CASE
    default:
        conn_send_error(c, id, FLIP__STATUS__UNKNOWN_TYPE,
                        "unknown request type for protocol version 1");
        codec_request_free(req);
        return;
    }
}
