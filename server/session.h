/* One client session: what belongs to one client above the transport.
 * The Hello state and name, the requests in flight (struct op, dispatch.h)
 * and the optional subscription. It hangs on its connection (c->owner)
 * from accept until the connection is freed.
 *
 * A session knows nothing of what a request means. dispatch.c fills it in
 * and implements the connection's handler table over it. So this file sits
 * below dispatch and pubsub, and the include graph of server/ has no
 * circle. */
#ifndef FLIP_SERVER_SESSION_H
#define FLIP_SERVER_SESSION_H

#include <stdint.h>

#include "conn.h"
#include "lib/queue.h"
#include "pubsub.h"

struct dispatch;

struct session
{
    struct conn *conn;
    struct dispatch *d; /* the node's request context */
    int hello_done;
    char *client_name;     /* from Hello; owned, NULL if none */
    struct queue ops;      /* struct op in flight */
    struct queue ready;    /* struct op whose answer waits for output room */
    struct queue deferred; /* in d->deferred while `ready` is not empty */
    struct sub *sub;       /* the subscription, if any (pubsub.h) */
    Flip__Request *req;    /* being handled, until an op takes it */
};

/* The session of an open connection. */
static inline struct session *session_of(const struct conn *c)
{
    return (struct session *)c->owner;
}

/* Hangs a new session on `c`; FLIP_OK or FLIP_NOMEM. */
int session_open(struct conn *c, struct dispatch *d);
/* Frees c's session (the connection is being freed). */
void session_free(struct conn *c);
/* Sets the name from Hello (NULL or "" for none); FLIP_NOMEM keeps none. */
int session_set_name(struct session *se, const char *name);
/* The actor a write is stamped with: `explicit_actor` if not empty, else
 * the Hello name, else the peer address. */
const char *session_actor(const struct session *se, const char *explicit_actor);
/* The sweep's deadlines: Hello within SESSION_HELLO_MS of accept, then
 * the transport's own (conn_check_deadlines). */
void session_check_deadlines(struct conn *c, uint64_t now);

/* The sink pubsub writes through: peers are connections of `set` whose
 * session takes the subscription (and turns the connection bulk). */
void session_sink(struct pubsub_sink *out, struct conn_set *set);

#define SESSION_HELLO_MS 10000

#endif
