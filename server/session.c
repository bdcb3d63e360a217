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
