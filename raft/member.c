/* See member.h. */
#include "member.h"

#include <stdio.h>
#include <string.h>

#include "errmap.h"
#include "lib/err.h"
#include "node.h"

const char *node_member_role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    case RAFT_SPARE:
        return "spare";
    default:
        return "unknown";
    }
}

/* peertcp counts failed connects per peer since the last success: a peer
 * with some is one the leader cannot reach now. */
static int peer_reachable(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < PEERTCP_MAX_PEERS; i++) {
        if (n->peers.peer[i].id == id) {
            return n->peers.peer[i].refused == 0;
        }
    }
    return 1; /* never failed */
}

int node_members(struct node *n,
                 struct node_member_view *out,
                 unsigned max,
                 unsigned *n_out)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    unsigned k = 0;

    *n_out = 0;
    if (!node_is_leader(n)) {
        return FLIP_NOTLEADER;
    }
    for (unsigned i = 0; i < conf->n && k < max; i++) {
        const struct raft_server *s = &conf->servers[i];
        const struct node_member *m = node_member_by_id(n, s->id);
        struct node_member_view *v = &out[k++];
        raft_index match = 0;

        v->id = s->id;
        node_field_split(s->address, v->raft_address, v->client_address);
        if (v->client_address[0] == '\0' && m != NULL) {
            memcpy(v->client_address, m->client_address,
                   sizeof v->client_address);
        }
        v->role = s->role;
        if (s->id == n->config.id) {
            v->reachable = 1;
            v->match = raft_commit_index(&n->raft);
        } else {
            v->reachable = peer_reachable(n, s->id);
            if (raft_match_index(&n->raft, s->id, &match) == 0) {
                v->match = match;
            } else {
                v->match = 0;
            }
        }
    }
    *n_out = k;
    return FLIP_OK;
}

static void transfer_cb(struct raft_transfer *req)
{
    struct node_transfer *t = (struct node_transfer *)req;
    raft_id leader = 0;
    const char *addr = NULL;

    raft_leader(&t->n->raft, &leader, &addr);
    t->cb(t, leader);
}

static const struct raft_server *voter(const struct node *n, uint64_t id)
{
    const struct raft_configuration *conf = &n->raft.configuration;

    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return conf->servers[i].role == RAFT_VOTER ? &conf->servers[i]
                                                       : NULL;
        }
    }
    return NULL;
}

int node_transfer(struct node *n,
                  struct node_transfer *t,
                  uint64_t id,
                  node_transfer_cb cb)
{
    int rv;

    if (!node_is_leader(n) || n->raft_closing) {
        return FLIP_NOTLEADER;
    }
    if (id == n->config.id || (id != 0 && voter(n, id) == NULL)) {
        return FLIP_INVALID;
    }
    if (n->raft.transfer != NULL || n->unstick_busy ||
        n->transfer_timer_started) {
        return FLIP_UNAVAILABLE;
    }
    t->n = n;
    t->target = id;
    t->cb = cb;
    rv = raft_transfer(&n->raft, &t->req, id, transfer_cb);
    if (rv == RAFT_NOTFOUND) {
        return FLIP_INVALID; /* 0 asked and no other voter */
    }
    if (rv != 0) {
        return errmap_from_raft(rv);
    }
    return FLIP_OK;
}

void node_field_encode(char *field, const char *raft, const char *client)
{
    if (client[0] == '\0') {
        snprintf(field, NODE_FIELD_MAX, "%s", raft);
    } else {
        snprintf(field, NODE_FIELD_MAX, "%s/%s", raft, client);
    }
}

void node_field_split(const char *field, char *raft, char *client)
{
    const char *slash = strchr(field, '/');
    size_t len = slash != NULL ? (size_t)(slash - field) : strlen(field);

    if (len >= NODE_ADDR_MAX) {
        len = NODE_ADDR_MAX - 1;
    }
    memcpy(raft, field, len);
    raft[len] = '\0';
    snprintf(client, NODE_ADDR_MAX, "%s", slash != NULL ? slash + 1 : "");
}

static int in_config(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (n->config.members[i].id == id) {
            return 1;
        }
    }
    return 0;
}

void node_members_refresh(struct node *n)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    unsigned k = 0;

    for (unsigned i = 0; i < conf->n && k < NODE_MAX_MEMBERS; i++) {
        const struct raft_server *s = &conf->servers[i];
        struct node_member *m = &n->conf_members[k];

        if (in_config(n, s->id)) {
            continue;
        }
        m->id = s->id;
        node_field_split(s->address, m->raft_address, m->client_address);
        k++;
    }
    n->n_conf_members = k;
}
