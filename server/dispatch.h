/* What a request means: the handshake gate, then one handler per request
 * type, chosen from the REQUEST_TYPES table. Handlers live in cmd_flag.c
 * (set/delete/get/list) and cmd_admin.c (hello/status).
 *
 * A request that cannot be answered at once becomes a struct op: it owns
 * the decoded request and embeds the raft-side waiter (proposal or read
 * barrier). The op is freed by its completion callback, also when its
 * connection closed meanwhile (op->conn is then NULL). */
#ifndef FLIP_SERVER_DISPATCH_H
#define FLIP_SERVER_DISPATCH_H

#include "conn.h"
#include "flip.pb-c.h"
#include "raft/propose.h"

struct op
{
    struct conn *conn;  /* NULL once the connection went away */
    struct queue link;  /* in conn->ops */
    Flip__Request *req; /* owned */
    struct proposal proposal;
    struct read_wait read;
};

#define REQUEST_TYPES(X)                    \
    X(FLIP__REQUEST__OP_HELLO, cmd_hello)   \
    X(FLIP__REQUEST__OP_SET, cmd_set)       \
    X(FLIP__REQUEST__OP_DELETE, cmd_delete) \
    X(FLIP__REQUEST__OP_GET, cmd_get)       \
    X(FLIP__REQUEST__OP_LIST, cmd_list)     \
    X(FLIP__REQUEST__OP_STATUS, cmd_status) \
    X(FLIP__REQUEST__OP_SUBSCRIBE, cmd_subscribe)

/* Each handler takes ownership of `req`. */
#define DECLARE_HANDLER(op, fn) void fn(struct conn *c, Flip__Request *req);
REQUEST_TYPES(DECLARE_HANDLER)
#undef DECLARE_HANDLER

/* Routes one decoded request; takes ownership of `req`. */
void dispatch_request(struct conn *c, Flip__Request *req);

/* op lifecycle shared by the handlers. */
struct op *op_new(struct conn *c, Flip__Request *req);
void op_free(struct op *op);
/* Detaches every op of a closing connection. */
void dispatch_detach(struct conn *c);

/* Replies NOT_LEADER with the leader's client address, or UNAVAILABLE when
 * no leader is known. */
void dispatch_not_leader(struct conn *c, uint64_t id);
/* Maps a FLIP_* code to a wire status and replies. */
void dispatch_error(struct conn *c, uint64_t id, int rv, const char *message);

#endif
