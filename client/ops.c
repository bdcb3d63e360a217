/* The flag and status operations of client/flip.h: argument checks,
 * conversion between struct flip_value/flip_flag and the wire messages,
 * and list paging. Routing and retries are client.c's (client_call). */
#include <string.h>

#include "client/client.h"
#include "client/flag.h"
#include "lib/clock.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/status.h"

/* ---- values and flags -------------------------------------------------- */

/* Fills a wire value that borrows v's string, checked as the server
 * would check it (nothing invalid is sent). */
static int value_to_wire(struct flip_client *c,
                         const struct flip_value *v,
                         Flip__Value *w)
{
    const char *why = NULL;
    int rv = flag_value_to_wire(v, w, &why);

    if (rv != FLIP_OK) {
        if (w->kind_case == FLIP__VALUE__KIND__NOT_SET) {
            client_set_err(c, "value: %s %d", why, (int)v->type);
        } else {
            client_set_err(c, "value: %s", why);
        }
        return rv;
    }
    rv = codec_check_value(w, &why);
    if (rv != FLIP_OK) {
        client_set_err(c, "value: %s", why != NULL ? why : flip_strerror(rv));
    }
    return rv;
}

/* Deep-copies a wire flag of an answer into *dst (zeroed by the caller):
 * it must have a key and a value. On failure *dst is cleared. */
static int flag_from_wire(struct flip_client *c,
                          const Flip__Flag *src,
                          struct flip_flag *dst)
{
    const char *why = NULL;
    int rv;

    if (src->key == NULL || src->value == NULL) {
        client_set_err(c, "flag without %s in answer",
                       src->value != NULL ? "key" : "value");
        return FLIP_PROTO;
    }
    rv = flag_value_from_wire(src->value, &dst->value, &why);
    if (rv == FLIP_PROTO) {
        client_set_err(c, "flag %s: %s", src->key, why);
        return rv;
    }
    if (rv != FLIP_OK || flag_meta_from_wire(src, dst) != FLIP_OK) {
        flip_flag_clear(dst);
        client_set_err(c, "out of memory");
        return FLIP_NOMEM;
    }
    return FLIP_OK;
}

/* ---- operations -------------------------------------------------------- */

static int check_key(struct flip_client *c, const char *key)
{
    const char *why = NULL;
    int rv;

    c->conflict_revision = 0;
    if (key == NULL) {
        client_set_err(c, "key: NULL");
        return FLIP_INVALID;
    }
    rv = codec_check_key(key, &why);
    if (rv != FLIP_OK) {
        client_set_err(c, "key: %s", why != NULL ? why : flip_strerror(rv));
    }
    return rv;
}

/* Validates reason and actor, and returns their wire pointers. */
static int check_opts(struct flip_client *c,
                      const struct flip_write_opts *opts,
                      char **reason,
                      char **actor)
{
    const char *why = NULL;
    int rv;

    *reason = NULL;
    *actor = NULL;
    if (opts == NULL) {
        return FLIP_OK;
    }
    if (opts->reason != NULL) {
        rv = codec_check_text(opts->reason, CODEC_REASON_MAX, &why);
        if (rv != FLIP_OK) {
            client_set_err(c, "reason: %s",
                           why != NULL ? why : flip_strerror(rv));
            return rv;
        }
        *reason = (char *)opts->reason;
    }
    if (opts->actor != NULL) {
        rv = codec_check_text(opts->actor, CODEC_ACTOR_MAX, &why);
        if (rv != FLIP_OK) {
            client_set_err(c, "actor: %s",
                           why != NULL ? why : flip_strerror(rv));
            return rv;
        }
        *actor = (char *)opts->actor;
    }
    return FLIP_OK;
}

int flip_set(struct flip_client *c,
             const char *key,
             const struct flip_value *value,
             const struct flip_write_opts *opts,
             uint64_t *revision_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SetRequest set = FLIP__SET_REQUEST__INIT;
    Flip__Value w = FLIP__VALUE__INIT;
    Flip__RequestId rid;
    Flip__Response *resp = NULL;
    int rv;

    if (revision_out != NULL) {
        *revision_out = 0;
    }
    rv = check_key(c, key);
    if (rv == FLIP_OK && value == NULL) {
        client_set_err(c, "value: NULL");
        rv = FLIP_INVALID;
    }
    if (rv == FLIP_OK) {
        rv = value_to_wire(c, value, &w);
    }
    if (rv == FLIP_OK) {
        rv = check_opts(c, opts, &set.reason, &set.actor);
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    set.key = (char *)key;
    set.value = &w;
    if (opts != NULL && opts->use_cas) {
        set.has_expected_revision = 1;
        set.expected_revision = opts->expected_revision;
    }
    if (opts != NULL && opts->change_type) {
        set.has_change_type = 1;
        set.change_type = 1;
    }
    client_next_request_id(c, &rid);
    set.request_id = &rid;
    req.op_case = FLIP__REQUEST__OP_SET;
    req.set = &set;
    rv = client_call(c, CLIENT_WRITE_ONCE, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_SET);
    if (rv == FLIP_OK && revision_out != NULL) {
        *revision_out = resp->set->revision;
    }
    codec_response_free(resp);
    return rv;
}

int flip_delete(struct flip_client *c,
                const char *key,
                const struct flip_write_opts *opts,
                uint64_t *revision_out,
                int *existed_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__DeleteRequest del = FLIP__DELETE_REQUEST__INIT;
    Flip__RequestId rid;
    Flip__Response *resp = NULL;
    int rv;

    if (revision_out != NULL) {
        *revision_out = 0;
    }
    if (existed_out != NULL) {
        *existed_out = 0;
    }
    rv = check_key(c, key);
    if (rv == FLIP_OK) {
        rv = check_opts(c, opts, &del.reason, &del.actor);
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    del.key = (char *)key;
    if (opts != NULL && opts->use_cas) {
        del.has_expected_revision = 1;
        del.expected_revision = opts->expected_revision;
    }
    client_next_request_id(c, &rid);
    del.request_id = &rid;
    req.op_case = FLIP__REQUEST__OP_DELETE;
    req.delete_ = &del;
    rv = client_call(c, CLIENT_WRITE_ONCE, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_DELETE);
    if (rv == FLIP_OK) {
        if (revision_out != NULL) {
            *revision_out = resp->delete_->revision;
        }
        if (existed_out != NULL) {
            /* An old server that does not say is assumed to have found it:
             * it answered OK rather than NOT_FOUND. */
            *existed_out =
                resp->delete_->has_existed ? resp->delete_->existed != 0 : 1;
        }
    }
    codec_response_free(resp);
    return rv;
}

int flip_get(struct flip_client *c,
             const char *key,
             int stale,
             struct flip_flag *out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__GetRequest get = FLIP__GET_REQUEST__INIT;
    Flip__Response *resp = NULL;
    int rv;

    memset(out, 0, sizeof *out);
    rv = check_key(c, key);
    if (rv != FLIP_OK) {
        return rv;
    }
    get.key = (char *)key;
    get.has_stale = stale != 0;
    get.stale = stale != 0;
    req.op_case = FLIP__REQUEST__OP_GET;
    req.get = &get;
    rv = client_call(c, stale ? CLIENT_STALE_READ : CLIENT_READ, &req, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_GET);
    if (rv == FLIP_OK && resp->get->flag == NULL) {
        client_set_err(c, "%s: not found", key);
        rv = FLIP_NOTFOUND;
    }
    if (rv == FLIP_OK) {
        rv = flag_from_wire(c, resp->get->flag, out);
    }
    codec_response_free(resp);
    return rv;
}

/* Appends one page of flags to *flags (capacity *cap, *n used). */
static int append_page(struct flip_client *c,
                       const Flip__ListResult *page,
                       struct flip_flag **flags,
                       size_t *n,
                       size_t *cap)
{
    struct flip_flag *grown;
    size_t want;
    int rv;

    if (page->n_flags > CLIENT_LIST_MAX - *n) {
        client_set_err(c, "list answer longer than %u flags",
                       (unsigned)CLIENT_LIST_MAX);
        return FLIP_TOOBIG;
    }
    want = *n + page->n_flags;
    if (want > *cap) {
        want = want > 2 * *cap ? want : 2 * *cap;
        grown = flip_realloc(*flags, want * sizeof *grown);
        if (grown == NULL) {
            client_set_err(c, "out of memory");
            return FLIP_NOMEM;
        }
        *flags = grown;
        *cap = want;
    }
    for (size_t k = 0; k < page->n_flags; k++) {
        memset(&(*flags)[*n], 0, sizeof **flags);
        rv = flag_from_wire(c, page->flags[k], &(*flags)[*n]);
        if (rv != FLIP_OK) {
            return rv;
        }
        /* Paging relies on strictly increasing keys; anything else would
         * loop or skip flags. */
        if (*n > 0 && strcmp((*flags)[*n - 1].key, (*flags)[*n].key) >= 0) {
            client_set_err(c, "list answer out of key order at %s",
                           (*flags)[*n].key);
            flip_flag_clear(&(*flags)[*n]);
            return FLIP_PROTO;
        }
        (*n)++;
    }
    return FLIP_OK;
}

int flip_list(struct flip_client *c,
              const char *prefix,
              int stale,
              struct flip_flag **flags_out,
              size_t *n_out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__ListRequest list = FLIP__LIST_REQUEST__INIT;
    Flip__Response *resp = NULL;
    struct flip_flag *flags = NULL; /* owned here until handed out */
    size_t n = 0;
    size_t cap = 0;
    const char *why = NULL;
    int more;
    int rv;

    *flags_out = NULL;
    *n_out = 0;
    c->conflict_revision = 0;
    if (prefix != NULL && prefix[0] != '\0') {
        rv = codec_check_prefix(prefix, &why);
        if (rv != FLIP_OK) {
            client_set_err(c, "prefix: %s",
                           why != NULL ? why : flip_strerror(rv));
            return rv;
        }
        list.prefix = (char *)prefix;
    }
    list.has_stale = stale != 0;
    list.stale = stale != 0;
    list.has_limit = 1;
    list.limit = CLIENT_LIST_PAGE;
    req.op_case = FLIP__REQUEST__OP_LIST;
    req.list = &list;
    do {
        /* start_after borrows the last key we own; set per page. */
        list.start_after = n > 0 ? flags[n - 1].key : NULL;
        rv = client_call(c, stale ? CLIENT_STALE_READ : CLIENT_READ, &req,
                         &resp);
        if (rv != FLIP_OK) {
            goto err;
        }
        rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_LIST);
        if (rv == FLIP_OK) {
            rv = append_page(c, resp->list, &flags, &n, &cap);
        }
        more = rv == FLIP_OK && resp->list->more;
        if (more && resp->list->n_flags == 0) {
            client_set_err(c, "list answer says more but holds no flags");
            rv = FLIP_PROTO;
        }
        codec_response_free(resp);
        resp = NULL;
        if (rv != FLIP_OK) {
            goto err;
        }
    } while (more);
    *flags_out = flags;
    *n_out = n;
    return FLIP_OK;

err:
    flip_flags_free(flags, n);
    return rv;
}

/* ---- status ------------------------------------------------------------ */

void flip_node_status_clear(struct flip_node_status *s)
{
    flip_free(s->role);
    flip_free(s->leader_address);
    flip_free(s->raft_address);
    flip_free(s->client_address);
    flip_free(s->cluster_id);
    for (size_t i = 0; i < s->n_members; i++) {
        flip_free(s->members[i].raft_address);
        flip_free(s->members[i].client_address);
    }
    flip_free(s->members);
    memset(s, 0, sizeof *s);
}

static int status_from_wire(const Flip__StatusResult *w,
                            struct flip_node_status *s)
{
    s->id = w->node_id;
    s->term = w->term;
    s->leader_id = w->leader_id;
    s->applied_revision = w->applied_revision;
    s->commit_index = w->commit_index;
    s->last_contact_ms = w->last_contact_ms;
    s->flag_count = w->flag_count;
    s->store_bytes = w->store_bytes;
    s->max_store_bytes = w->max_store_bytes;
    s->loop_busy_max_us = w->loop_busy_max_us;
    s->loop_turns_over_1ms = w->loop_turns_over_1ms;
    s->loop_turns_over_10ms = w->loop_turns_over_10ms;
    s->loop_cpu_max_us = w->loop_cpu_max_us;
    s->loop_stalls_over_10ms = w->loop_stalls_over_10ms;
    s->has_state_hash = w->has_state_hash != 0;
    s->state_hash = w->state_hash;
    s->role = flag_dup_or_empty(w->role);
    s->leader_address = flag_dup_or_empty(w->leader_address);
    s->raft_address = flag_dup_or_empty(w->raft_address);
    s->client_address = flag_dup_or_empty(w->client_address);
    s->cluster_id = flag_dup_or_empty(w->cluster_id);
    s->has_live = w->has_live != 0;
    s->live = w->live != 0;
    s->leader_commit = w->leader_commit;
    s->lag = w->lag;
    if (s->role == NULL || s->leader_address == NULL ||
        s->raft_address == NULL || s->client_address == NULL ||
        s->cluster_id == NULL) {
        return FLIP_NOMEM;
    }
    if (w->n_members == 0) {
        return FLIP_OK;
    }
    s->members = flip_calloc(w->n_members, sizeof *s->members);
    if (s->members == NULL) {
        return FLIP_NOMEM;
    }
    for (size_t i = 0; i < w->n_members; i++) {
        struct flip_member *m = &s->members[i];
        s->n_members++; /* counted first so clear frees partial copies */
        m->id = w->members[i]->id;
        m->voter = w->members[i]->voter != 0;
        m->joined = w->members[i]->joined != 0;
        m->raft_address = flag_dup_or_empty(w->members[i]->raft_address);
        m->client_address = flag_dup_or_empty(w->members[i]->client_address);
        if (m->raft_address == NULL || m->client_address == NULL) {
            return FLIP_NOMEM;
        }
    }
    return FLIP_OK;
}

int flip_status_node(struct flip_client *c,
                     const char *endpoint,
                     unsigned flags,
                     struct flip_node_status *out)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__StatusRequest st = FLIP__STATUS_REQUEST__INIT;
    Flip__Response *resp = NULL;
    struct wire tmp;
    struct wire *w = &tmp;
    int64_t deadline = clock_mono_ms() + c->timeout_ms;
    int64_t open_deadline = clock_mono_ms() + CLIENT_CONNECT_MS;
    size_t i;
    int sent = 0;
    int rv;

    memset(out, 0, sizeof *out);
    c->errmsg[0] = '\0';
    c->conflict_revision = 0;
    /* Reuse a connection we already hold; otherwise a one-off, so asking
     * every member does not evict learned leader addresses. */
    i = endpoint != NULL ? client_find_endpoint(c, endpoint) : CLIENT_NONE;
    if (i != CLIENT_NONE) {
        w = &c->eps[i];
    } else {
        rv = wire_init(&tmp, endpoint);
        if (rv != FLIP_OK) {
            client_set_err(c, "%s: %s", endpoint != NULL ? endpoint : "(null)",
                           rv == FLIP_INVALID ? "not a host:port address"
                                              : flip_strerror(rv));
            return rv;
        }
    }
    if (flags & FLIP_STATUS_HASH) {
        st.has_include_hash = 1;
        st.include_hash = 1;
    }
    req.op_case = FLIP__REQUEST__OP_STATUS;
    req.status = &st;
    rv = wire_open(w, c->name,
                   open_deadline < deadline ? open_deadline : deadline);
    if (rv == FLIP_OK) {
        rv = wire_call(w, &req, deadline, &resp, &sent);
    }
    if (rv != FLIP_OK) {
        client_set_err(c, "%s", w->errmsg);
        if (rv == FLIP_IOERR || rv == FLIP_CLOSED) {
            rv = FLIP_UNAVAILABLE;
        }
        goto out;
    }
    if (resp->error != NULL && resp->error->status != FLIP__STATUS__OK) {
        rv = status_to_flip(resp->error->status);
        client_set_err(c, "%s: %s", w->addr, client_err_text(resp->error));
        goto out;
    }
    rv = client_expect(c, resp, FLIP__RESPONSE__RESULT_STATUS);
    if (rv == FLIP_OK) {
        rv = status_from_wire(resp->status, out);
        if (rv != FLIP_OK) {
            flip_node_status_clear(out);
            client_set_err(c, "out of memory");
        }
    }

out:
    if (resp != NULL) {
        codec_response_free(resp);
    }
    if (w == &tmp) {
        wire_destroy(&tmp);
    }
    return rv;
}
