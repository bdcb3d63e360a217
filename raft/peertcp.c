/* TCP_NODELAY on raft's peer streams; see peertcp.h.
 *
 * Inbound: raft_uv listens once, with its accept callback; the wrapper
 * keeps that callback and passes its own, which sets the option on the
 * stream and hands it on. Outbound: raft_uv starts every connect with the
 * same callback and its client in req->data, and reads req->data back
 * there (uvClientConnectCb; while a connect is pending it only tests it
 * for NULL). The wrapper parks both in a small record, puts the record in
 * req->data for the duration (non-NULL, as raft_uv expects), and restores
 * them before raft_uv's callback runs, on success, failure or
 * cancellation alike. If the option cannot be set the stream is used
 * anyway: latency and recovery time, not correctness, are at stake. */
#include "peertcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "addrfield.h"

struct peertcp_connect
{
    struct peertcp *p;
    raft_id id;
    void *data;            /* raft_uv's req->data */
    raft_uv_connect_cb cb; /* raft_uv's callback */
};

static void set_options(struct peertcp *p, struct uv_stream_s *stream)
{
    unsigned timeout = p->user_timeout_ms;
    uv_os_fd_t fd;

    if (stream == NULL || stream->type != UV_TCP) {
        return;
    }
    if (uv_tcp_nodelay((uv_tcp_t *)stream, 1) == 0 &&
        uv_fileno((uv_handle_t *)stream, &fd) == 0 &&
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
                   sizeof timeout) == 0) {
        p->n_nodelay++;
    } else {
        p->n_failed++;
    }
}

static void on_accepted(struct raft_uv_transport *t,
                        raft_id id,
                        const char *address,
                        struct uv_stream_s *stream)
{
    struct peertcp *p = (struct peertcp *)(void *)t; /* first member */

    set_options(p, stream);
    p->accept_cb(t, id, address, stream);
}

static int wrapped_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct peertcp *p = (struct peertcp *)(void *)t;

    p->accept_cb = cb;
    return p->next_listen(t, on_accepted);
}

/* The peer's slot, taken if free; NULL when all are in use (then its
 * refusals go uncounted, nothing else). */
static struct peertcp_peer *peer_of(struct peertcp *p, raft_id id)
{
    struct peertcp_peer *free_slot = NULL;
    unsigned i;

    for (i = 0; i < PEERTCP_MAX_PEERS; i++) {
        if (p->peer[i].id == id) {
            return &p->peer[i];
        }
        if (p->peer[i].id == 0 && free_slot == NULL) {
            free_slot = &p->peer[i];
        }
    }
    if (free_slot != NULL) {
        free_slot->id = id;
        free_slot->refused = 0;
    }
    return free_slot;
}

static void note_refused(struct peertcp *p, raft_id id)
{
    struct peertcp_peer *peer = peer_of(p, id);

    p->n_refused++;
    if (peer == NULL) {
        return;
    }
    if (peer->refused == 0 && p->loop != NULL) {
        peer->first_at = uv_now(p->loop);
    }
    peer->refused++;
}

static void note_reached(struct peertcp *p, raft_id id)
{
    struct peertcp_peer *peer = peer_of(p, id);
    unsigned refused;

    if (peer == NULL || peer->refused == 0) {
        return;
    }
    refused = peer->refused;
    peer->refused = 0;
    if (p->reached_cb != NULL && p->loop != NULL) {
        p->reached_cb(p, id, refused, uv_now(p->loop) - peer->first_at);
    }
}

static void on_connected(struct raft_uv_connect *req,
                         struct uv_stream_s *stream,
                         int status)
{
    struct peertcp_connect *pc = req->data;
    raft_uv_connect_cb cb = pc->cb;

    req->data = pc->data;
    if (status == 0) {
        set_options(pc->p, stream);
        note_reached(pc->p, pc->id);
    } else if (status != RAFT_CANCELED) {
        note_refused(pc->p, pc->id);
    }
    raft_free(pc);
    cb(req, stream, status);
}

static int wrapped_connect(struct raft_uv_transport *t,
                           struct raft_uv_connect *req,
                           raft_id id,
                           const char *address,
                           raft_uv_connect_cb cb)
{
    struct peertcp *p = (struct peertcp *)(void *)t;
    struct peertcp_connect *pc;
    char host[ADDRFIELD_PART_MAX];
    char client[ADDRFIELD_PART_MAX];
    int rv;

    /* raft hands over a member's address field: connect to its RAFT part */
    if (addrfield_split(address, host, client) != 0) {
        return RAFT_INVALID;
    }
    address = host;
    pc = raft_malloc(sizeof *pc);
    if (pc == NULL) {
        return RAFT_NOMEM; /* raft_uv retries the connect later */
    }
    pc->p = p;
    pc->id = id;
    pc->data = req->data;
    pc->cb = cb;
    req->data = pc;
    rv = p->next_connect(t, req, id, address, on_connected);
    if (rv != 0) {
        req->data = pc->data; /* no callback will come */
        raft_free(pc);
        note_refused(p, id);
    }
    return rv;
}

unsigned peertcp_user_timeout_ms(unsigned election_ms)
{
    return election_ms * 4 > 2000 ? election_ms * 4 : 2000;
}

unsigned peertcp_retry_delay_ms(unsigned heartbeat_ms, unsigned election_ms)
{
    unsigned ms = election_ms / 10;

    if (ms < heartbeat_ms) {
        ms = heartbeat_ms;
    }
    return ms > 1000 ? 1000 : ms;
}

void peertcp_wrap(struct peertcp *p,
                  struct uv_loop_s *loop,
                  unsigned user_timeout_ms)
{
    p->loop = loop;
    p->user_timeout_ms = user_timeout_ms;
    p->next_listen = p->transport.listen;
    p->next_connect = p->transport.connect;
    p->transport.listen = wrapped_listen;
    p->transport.connect = wrapped_connect;
}
