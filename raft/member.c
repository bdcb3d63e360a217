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
        (void)addrfield_split(s->address, v->raft_address, v->client_address);
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
        (void)addrfield_split(s->address, m->raft_address, m->client_address);
        k++;
    }
    n->n_conf_members = k;
}

/* ---- configuration changes ---------------------------------------------- */

static const struct raft_server *conf_server(const struct node *n, uint64_t id)
{
    const struct raft_configuration *conf = &n->raft.configuration;

    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

static int change_rv(int rv)
{
    if (rv == RAFT_CANTCHANGE) {
        return FLIP_UNAVAILABLE;
    }
    return rv == RAFT_NOTLEADER ? FLIP_NOTLEADER : errmap_from_raft(rv);
}

static void change_done(struct raft_change *req, int status)
{
    struct node_change *ch = (struct node_change *)req;
    int rv;

    if (status == 0 && ch->assign) {
        ch->assign = 0;
        rv = raft_assign(&ch->n->raft, &ch->req, ch->id, ch->role, change_done);
        if (rv == 0) {
            return;
        }
        status = rv;
    }
    ch->cb(ch, status == 0 ? FLIP_OK : change_rv(status));
}

/* FLIP_OK when voter `id` may stop voting (removed or demoted), else
 * FLIP_INVALID with ch->why. */
static int may_lose_voter(struct node *n, struct node_change *ch, uint64_t id)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    unsigned rest = 0;
    unsigned reachable = 0;

    if (id == n->config.id) {
        snprintf(ch->why, sizeof ch->why,
                 "node %llu is the leader: move leadership first "
                 "(flipctl leader transfer)",
                 (unsigned long long)id);
        return FLIP_INVALID;
    }
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        if (s->role != RAFT_VOTER || s->id == id) {
            continue;
        }
        rest++;
        reachable += s->id == n->config.id || peer_reachable(n, s->id);
    }
    if (rest < 2) {
        snprintf(ch->why, sizeof ch->why,
                 "would leave %u voter%s, which cannot lose any: add or "
                 "promote a voter first",
                 rest, rest == 1 ? "" : "s");
        return FLIP_INVALID;
    }
    if (reachable < rest / 2 + 1) {
        snprintf(ch->why, sizeof ch->why,
                 "only %u of the %u remaining voters are reachable, not a "
                 "majority: bring members back first",
                 reachable, rest);
        return FLIP_INVALID;
    }
    return FLIP_OK;
}

static int change_start(struct node *n,
                        struct node_change *ch,
                        uint64_t id,
                        int role,
                        node_change_cb cb)
{
    ch->n = n;
    ch->id = id;
    ch->role = role;
    ch->assign = 0;
    ch->cb = cb;
    ch->why[0] = '\0';
    return node_is_leader(n) && !n->raft_closing ? FLIP_OK : FLIP_NOTLEADER;
}

int node_member_add(struct node *n,
                    struct node_change *ch,
                    uint64_t id,
                    const char *raft,
                    const char *client,
                    int role,
                    node_change_cb cb,
                    int *already)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    const struct raft_server *s;
    char field[NODE_FIELD_MAX];
    char r[NODE_ADDR_MAX];
    char c[NODE_ADDR_MAX];
    int rv;

    *already = 0;
    rv = change_start(n, ch, id, role, cb);
    if (rv != FLIP_OK) {
        return rv;
    }
    addrfield_encode(field, raft, client);
    for (unsigned i = 0; i < conf->n; i++) {
        s = &conf->servers[i];
        (void)addrfield_split(s->address, r, c);
        if (s->id != id && (strcmp(r, raft) == 0 || strcmp(c, client) == 0)) {
            snprintf(ch->why, sizeof ch->why,
                     "node %llu already uses these addresses",
                     (unsigned long long)s->id);
            return FLIP_INVALID;
        }
    }
    s = conf_server(n, id);
    if (s != NULL) {
        if (strcmp(s->address, field) != 0) {
            snprintf(ch->why, sizeof ch->why,
                     "node %llu is a member at other addresses (%s): remove "
                     "it first, or add the new node under a new id",
                     (unsigned long long)id, s->address);
            return FLIP_INVALID;
        }
        if (s->role == role) {
            *already = 1;
            return FLIP_OK;
        }
        if (s->role == RAFT_VOTER) {
            rv = may_lose_voter(n, ch, id);
            if (rv != FLIP_OK) {
                return rv;
            }
        }
        rv = raft_assign(&n->raft, &ch->req, id, role, change_done);
        return rv == 0 ? FLIP_OK : change_rv(rv);
    }
    ch->assign = role != RAFT_SPARE;
    rv = raft_add(&n->raft, &ch->req, id, field, change_done);
    return rv == 0 ? FLIP_OK : change_rv(rv);
}

int node_member_remove(struct node *n,
                       struct node_change *ch,
                       uint64_t id,
                       node_change_cb cb,
                       int *already)
{
    const struct raft_server *s;
    int rv;

    *already = 0;
    rv = change_start(n, ch, id, 0, cb);
    if (rv != FLIP_OK) {
        return rv;
    }
    s = conf_server(n, id);
    if (s == NULL) {
        *already = 1;
        return FLIP_OK;
    }
    if (id == n->config.id || s->role == RAFT_VOTER) {
        rv = may_lose_voter(n, ch, id);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    rv = raft_remove(&n->raft, &ch->req, id, change_done);
    return rv == 0 ? FLIP_OK : change_rv(rv);
}

int node_member_assign(struct node *n,
                       struct node_change *ch,
                       uint64_t id,
                       int role,
                       node_change_cb cb,
                       int *already)
{
    const struct raft_server *s;
    int rv;

    *already = 0;
    rv = change_start(n, ch, id, role, cb);
    if (rv != FLIP_OK) {
        return rv;
    }
    s = conf_server(n, id);
    if (s == NULL) {
        snprintf(ch->why, sizeof ch->why, "node %llu is not a member",
                 (unsigned long long)id);
        return FLIP_INVALID;
    }
    if (s->role == role) {
        *already = 1;
        return FLIP_OK;
    }
    if (s->role == RAFT_VOTER) {
        rv = may_lose_voter(n, ch, id);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    rv = raft_assign(&n->raft, &ch->req, id, role, change_done);
    return rv == 0 ? FLIP_OK : change_rv(rv);
}
