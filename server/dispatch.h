/* What a request means: the connection handler table (frame -> decoded
 * request), the handshake gate, then one handler per request type, chosen
 * from the REQUEST_TYPES table. Handlers live in cmd_flag.c
 * (set/delete/get/list), cmd_admin.c (hello/status), cmd_member.c
 * (member list, leader transfer) and cmd_sub.c
 * (subscribe). The per-client state they read and write is the session's
 * (session.h); the node's is struct server's, which dispatch.c itself never
 * reads (it holds only the pointer the handlers get from server_of).
 *
 * A request that cannot be answered at once becomes a struct op: it owns
 * the decoded request and embeds the raft-side waiter (proposal or read
 * barrier). The op is freed by its completion callback, also when its
 * connection closed meanwhile (op->conn is then NULL). */
#ifndef FLIP_SERVER_DISPATCH_H
#define FLIP_SERVER_DISPATCH_H

#include "conn.h"
#include "flip.pb-c.h"
#include "raft/node.h"
#include "raft/propose.h"
#include "session.h"

struct server;

/* The node's request context, one per server. */
struct dispatch
{
    struct server *srv;      /* for the handlers (server_of); opaque here */
    struct node *node;       /* who leads, for NOT_LEADER answers */
    uint64_t self_id;        /* this node's id */
    unsigned node_inflight;  /* --max-inflight-node */
    unsigned n_ops;          /* requests in flight, every connection */
    uint64_t n_refused_busy; /* requests refused at --max-inflight-node */
    struct queue deferred;   /* sessions holding answers until output drains */
};

/* The connection handler table over sessions; h_data is the struct
 * dispatch. */
extern const struct conn_handler dispatch_conn_handler;

void dispatch_init(struct dispatch *d, struct server *srv, struct node *node);

/* The server a handler serves `c` for. */
static inline struct server *server_of(const struct conn *c)
{
    return session_of(c)->d->srv;
}

typedef void (*dispatch_serve_fn)(struct conn *c, const Flip__Request *req);

struct op
{
    struct conn *conn;  /* NULL once the connection went away */
    struct queue link;  /* in session->ops, or ->ready once it may answer */
    Flip__Request *req; /* owned */
    struct proposal proposal;
    struct read_wait read;
    dispatch_serve_fn serve; /* set while waiting in session->ready */
    struct dispatch *d;      /* counts the op while it lives */
    struct queue wait_link;  /* in a server-wide wait list (state hash) */
};

#define REQUEST_TYPES(X)                                      \
    X(FLIP__REQUEST__OP_HELLO, cmd_hello)                     \
    X(FLIP__REQUEST__OP_SET, cmd_set)                         \
    X(FLIP__REQUEST__OP_DELETE, cmd_delete)                   \
    X(FLIP__REQUEST__OP_GET, cmd_get)                         \
    X(FLIP__REQUEST__OP_LIST, cmd_list)                       \
    X(FLIP__REQUEST__OP_STATUS, cmd_status)                   \
    X(FLIP__REQUEST__OP_SUBSCRIBE, cmd_subscribe)             \
    X(FLIP__REQUEST__OP_MEMBER_LIST, cmd_member_list)         \
    X(FLIP__REQUEST__OP_LEADER_TRANSFER, cmd_leader_transfer) \
    X(FLIP__REQUEST__OP_MEMBER_CHANGE, cmd_member_change)

/* A handler borrows `req`: dispatch_request frees it when the handler
 * returns, unless the handler kept it in an op (op_new), which then owns it
 * and frees it in op_free. */
#define DECLARE_HANDLER(op, fn) void fn(struct conn *c, Flip__Request *req);
REQUEST_TYPES(DECLARE_HANDLER)
#undef DECLARE_HANDLER

/* op lifecycle shared by the handlers. op_new takes `req` (the op frees
 * it in op_free; a NULL return takes nothing), drops the request's unknown
 * fields (protobuf-c keeps each one, about 30x the wire bytes; F11), counts
 * the op against the connection's and the node's in-flight bounds, and
 * op_free uncounts it. */
struct op *op_new(struct conn *c, Flip__Request *req);
void op_free(struct op *op);
/* Frees the unknown fields of `m` and of every message set inside it
 * (what op_new does to the request it keeps). */
void dispatch_strip_unknown(ProtobufCMessage *m);
/* Detaches every op of a closing connection. */
void dispatch_detach(struct conn *c);
/* Answers `op` (whose connection is open) with `serve` now if the
 * connection and the node have output room, else once they do (F4: a
 * barrier that releases many reads must not queue all their answers in one
 * turn). Takes ownership of `op`. */
void dispatch_serve(struct op *op, dispatch_serve_fn serve);
/* Serves every session's waiting answers while there is room; from the
 * flush hook. */
void dispatch_serve_deferred(struct dispatch *d);

/* Replies NOT_LEADER with the leader's client address, or UNAVAILABLE when
 * no leader is known. */
void dispatch_not_leader(struct conn *c, uint64_t id);
/* Maps a FLIP_* code to a wire status and replies. */
void dispatch_error(struct conn *c, uint64_t id, int rv, const char *message);

#endif
