/* Request routing; see dispatch.h. */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/status.h"
#include "pubsub.h"

/* Frees the unknown fields of `m` and of every message inside it. A
 * request kept in flight (up to --max-inflight of them per connection)
 * then holds only what the server reads. */
void dispatch_strip_unknown(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        flip_free(m->unknown_fields[i].data);
    }
    flip_free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *member = (char *)m + f->offset;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            ProtobufCMessage **arr;
            memcpy(&n, (char *)m + f->quantifier_offset, sizeof n);
            memcpy(&arr, member, sizeof arr);
            for (size_t j = 0; j < n; j++) {
                if (arr[j] != NULL) {
                    dispatch_strip_unknown(arr[j]);
                }
            }
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, (char *)m + f->quantifier_offset, sizeof which);
            if (which != f->id) {
                continue; /* another member of the oneof is set */
            }
        }
        {
            ProtobufCMessage *sub;
            memcpy(&sub, member, sizeof sub);
            if (sub != NULL) {
                dispatch_strip_unknown(sub);
            }
        }
    }
}

struct op *op_new(struct conn *c, Flip__Request *req)
{
    struct session *se = session_of(c);
    struct op *op = flip_calloc(1, sizeof *op);
    if (op == NULL) {
        return NULL;
    }
    if (se->req == req) {
        se->req = NULL; /* the op frees it now (op_free) */
    }
    dispatch_strip_unknown(&req->base);
    op->conn = c;
    op->req = req;
    op->proposal.data = op;
    op->read.data = op;
    queue_insert_tail(&se->ops, &op->link);
    c->n_ops++;
    se->d->n_ops++;
    op->d = se->d;
    return op;
}

void op_free(struct op *op)
{
    struct conn *c = op->conn;

    op->d->n_ops--;
    if (c != NULL) {
        queue_remove(&op->link);
        c->n_ops--;
        conn_ops_changed(c);
    }
    codec_request_free(op->req);
    flip_free(op);
}

void dispatch_detach(struct conn *c)
{
    struct session *se = session_of(c);

    while (!queue_empty(&se->ready)) {
        /* answers that waited for room: nothing else refers to them */
        struct op *op = CONTAINER_OF(queue_head(&se->ready), struct op, link);
        queue_remove(&op->link);
        op->conn = NULL;
        op_free(op);
    }
    if (!queue_empty(&se->deferred)) {
        queue_remove(&se->deferred);
    }
    while (!queue_empty(&se->ops)) {
        struct queue *e = queue_head(&se->ops);
        struct op *op = CONTAINER_OF(e, struct op, link);
        queue_remove(e);
        op->conn = NULL;
    }
    c->n_ops = 0;
}

void dispatch_serve(struct op *op, dispatch_serve_fn serve)
{
    struct conn *c = op->conn;
    struct session *se = session_of(c);

    if (queue_empty(&se->ready) && conn_has_room(c)) {
        serve(c, op->req);
        op_free(op);
        return;
    }
    op->serve = serve;
    queue_remove(&op->link);
    queue_insert_tail(&se->ready, &op->link);
    if (queue_empty(&se->deferred)) {
        queue_insert_tail(&se->d->deferred, &se->deferred);
    }
}

/* Serves c's waiting answers while there is room. */
static void serve_ready(struct session *se)
{
    struct conn *c = se->conn;

    while (c->state == CONN_OPEN && !queue_empty(&se->ready) &&
           conn_has_room(c)) {
        struct op *op = CONTAINER_OF(queue_head(&se->ready), struct op, link);
        /* back among the ops in flight: if serving closes the connection,
         * dispatch_detach then only detaches it, and op_free below frees */
        queue_remove(&op->link);
        queue_insert_tail(&se->ops, &op->link);
        op->serve(c, op->req);
        op_free(op);
    }
    if (queue_empty(&se->ready) && !queue_empty(&se->deferred)) {
        queue_remove(&se->deferred);
    }
}

/* Answers held back for output room (dispatch_serve), each session as far
 * as its room allows now. */
void dispatch_serve_deferred(struct dispatch *d)
{
    struct queue *e;
    struct queue *next;

    for (e = d->deferred.next; e != &d->deferred; e = next) {
        struct session *se = CONTAINER_OF(e, struct session, deferred);
        next = e->next; /* serving se may unlink se, never another */
        serve_ready(se);
    }
}

void dispatch_not_leader(struct conn *c, uint64_t id)
{
    struct dispatch *d = session_of(c)->d;
    const struct node_member *leader = node_leader(d->node);
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__Error err = FLIP__ERROR__INIT;
    char msg[128];

    if (leader == NULL || leader->id == d->self_id) {
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
    if (rv == FLIP_NOTLEADER) {
        dispatch_not_leader(c, id);
        return;
    }
    conn_send_error(c, id, status_from_flip(rv),
                    message != NULL ? message : flip_strerror(rv));
}

/* The hello gate, the node-wide bound, then the handler. */
static void route(struct conn *c, Flip__Request *req)
{
    struct session *se = session_of(c);
    struct dispatch *d = se->d;
    uint64_t id = req->id;

    if (!se->hello_done && req->op_case != FLIP__REQUEST__OP_HELLO) {
        conn_send_error(c, id, FLIP__STATUS__INVALID_ARGUMENT,
                        "the first request must be Hello");
        return;
    }
    if (d->n_ops >= d->node_inflight &&
        req->op_case != FLIP__REQUEST__OP_HELLO &&
        req->op_case != FLIP__REQUEST__OP_SUBSCRIBE) {
        /* --max-inflight-node: nothing was started, so a retry is safe */
        d->n_refused_busy++;
        conn_send_error(c, id, FLIP__STATUS__UNAVAILABLE,
                        "node has too many requests in flight; retry");
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
        return;
    }
}

/* Owns `req`: frees it once, after the handler, unless an op took it. A
 * request whose frame holds a NUL is refused before any handler sees it
 * (checked on the frame: the decoded strings cannot show a NUL). */
static void dispatch_request(struct conn *c, Flip__Request *req, int nul)
{
    struct session *se = session_of(c);

    se->req = req;
    if (nul) {
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
                        "a text field contains U+0000 (NUL), which "
                        "flipd does not store");
    } else {
        route(c, req);
    }
    /* not taken by op_new: the one place a request is freed outside op_free
     * (the session outlives every handler: it is freed with the handle) */
    if (se->req != NULL) {
        codec_request_free(se->req);
        se->req = NULL;
    }
}

/* ---- the connection handler table --------------------------------------- */

static int on_open(void *data, struct conn *c)
{
    return session_open(c, data);
}

/* Decodes one frame and routes it; an undecodable frame ends the stream
 * (it cannot be resynchronised). */
static void on_frame(struct conn *c, const uint8_t *payload, size_t len)
{
    Flip__Request *req = NULL;
    int rv = codec_request_decode(payload, len, &req);

    if (rv != FLIP_OK) {
        conn_send_error(c, 0, FLIP__STATUS__PROTOCOL_ERROR,
                        "frame is not a valid Request message");
        conn_close(c, "undecodable frame");
        return;
    }
    dispatch_request(c, req, codec_request_has_nul(payload, len));
}

static void on_drained(struct conn *c)
{
    struct session *se = session_of(c);

    if (se->sub != NULL) {
        pubsub_drained(se->sub);
    }
}

static void on_close(struct conn *c)
{
    struct session *se = session_of(c);

    if (se->sub != NULL) {
        pubsub_unsubscribe(se->sub);
        se->sub = NULL;
    }
    dispatch_detach(c);
}

const struct conn_handler dispatch_conn_handler = {
    on_open, on_frame, on_drained, on_close, session_free,
};

void dispatch_init(struct dispatch *d, struct server *srv, struct node *node)
{
    memset(d, 0, sizeof *d);
    d->srv = srv;
    d->node = node;
    queue_init(&d->deferred);
}
