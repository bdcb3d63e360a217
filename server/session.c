/* Client sessions; see session.h. */
#include "session.h"

#include "lib/err.h"
#include "lib/heap.h"

int session_open(struct conn *c, struct dispatch *d)
{
    struct session *se = flip_calloc(1, sizeof *se);

    if (se == NULL) {
        return FLIP_NOMEM;
    }
    se->conn = c;
    se->d = d;
    queue_init(&se->ops);
    queue_init(&se->ready);
    queue_init(&se->deferred);
    c->owner = se;
    return FLIP_OK;
}

void session_free(struct conn *c)
{
    struct session *se = session_of(c);

    c->owner = NULL;
    flip_free(se->client_name);
    flip_free(se);
}

int session_set_name(struct session *se, const char *name)
{
    flip_free(se->client_name);
    se->client_name = NULL;
    if (name != NULL && name[0] != '\0') {
        se->client_name = flip_strdup(name);
        if (se->client_name == NULL) {
            return FLIP_NOMEM;
        }
    }
    return FLIP_OK;
}

const char *session_actor(const struct session *se, const char *explicit_actor)
{
    if (explicit_actor != NULL && explicit_actor[0] != '\0') {
        return explicit_actor;
    }
    if (se->client_name != NULL && se->client_name[0] != '\0') {
        return se->client_name;
    }
    return se->conn->peer;
}

void session_check_deadlines(struct conn *c, uint64_t now)
{
    struct session *se = session_of(c);

    if (c->state != CONN_OPEN || se == NULL) {
        return;
    }
    if (!se->hello_done) {
        if (now - c->accepted_ms > SESSION_HELLO_MS) {
            conn_send_error(c, 0, FLIP__STATUS__PROTOCOL_ERROR,
                            "no Hello within 10 seconds");
            conn_close(c, "no Hello within 10 seconds");
        }
        return;
    }
    conn_check_deadlines(c, now);
}

/* ---- the subscription's sink: pubsub's output onto the connection ------ */

static void sink_send(void *to, const Flip__Response *resp)
{
    conn_send(to, resp);
}

static void sink_send_error(void *to,
                            uint64_t id,
                            Flip__Status status,
                            const char *message)
{
    conn_send_error(to, id, status, message);
}

static void sink_send_frame(void *to, const uint8_t *frame, size_t len)
{
    conn_send_frame(to, frame, len);
}

static int sink_is_open(const void *to)
{
    const struct conn *c = to;
    return c->state == CONN_OPEN;
}

static size_t sink_backlog(const void *to)
{
    return conn_backlog(to);
}

static void sink_discard(void *to)
{
    conn_discard_output(to);
}

static void sink_close(void *to, const char *why)
{
    conn_close(to, why);
}

/* The subscription makes the connection a bulk stream from its first
 * answer on: flushed after interactive connections, counted in the
 * subscribers' budget, exempt from the idle timeout. */
static void sink_attach(void *to, struct sub *sub)
{
    struct conn *c = to;

    session_of(c)->sub = sub;
    conn_set_bulk(c, 1);
}

static uint64_t sink_id(const void *to)
{
    const struct conn *c = to;
    return c->id;
}

static size_t sink_total(void *data)
{
    const struct conn_set *set = data;
    return set->out_bulk;
}

void session_sink(struct pubsub_sink *out, struct conn_set *set)
{
    out->data = set;
    out->send = sink_send;
    out->send_error = sink_send_error;
    out->send_frame = sink_send_frame;
    out->is_open = sink_is_open;
    out->backlog = sink_backlog;
    out->discard = sink_discard;
    out->close = sink_close;
    out->attach = sink_attach;
    out->id = sink_id;
    out->total = sink_total;
}
