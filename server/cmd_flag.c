/* Flag requests: set, delete (proposed through raft on the leader) and
 * get, list (served from this node's applied state; linearizable by
 * default: a read barrier runs first on the leader, and a client that asks
 * for stale skips it and reads whatever this node has applied). */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "raft/dedup.h"
#include "raft/fsm.h"
#include "server.h"
#include "storage/flags.h"

#define LIST_DEFAULT 1000
#define LIST_MAX     10000

/* ---- writes -------------------------------------------------------------- */

/* The stored flag's type name, for a TYPE_MISMATCH answer: the client
 * can then read its text as that type (flipctl set's auto type). NULL
 * when it cannot be read. */
static const char *stored_type(struct conn *c, const char *key)
{
    struct flags_head head;

    (void)flags_head(server_of(c)->node.store, key, strlen(key), &head);
    switch (head.kind) {
    case FLIP__VALUE__KIND_BOOL_VALUE:
        return "bool";
    case FLIP__VALUE__KIND_INT_VALUE:
        return "int";
    case FLIP__VALUE__KIND_DOUBLE_VALUE:
        return "double";
    case FLIP__VALUE__KIND_STRING_VALUE:
        return "string";
    case FLIP__VALUE__KIND_JSON_VALUE:
        return "json";
    default:
        return NULL;
    }
}

static void write_done(struct proposal *p, int status)
{
    struct op *op = p->data;
    struct conn *c = op->conn;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__SetResult set = FLIP__SET_RESULT__INIT;
    Flip__DeleteResult del = FLIP__DELETE_RESULT__INIT;
    Flip__Error err = FLIP__ERROR__INIT;
    const char *type_name = NULL;
    uint64_t id = op->req->id;

    if (c == NULL) {
        op_free(op);
        return;
    }
    if (status != FLIP_OK) {
        dispatch_error(c, id, status,
                       status == FLIP_LEADERSHIPLOST
                           ? "leadership lost before the change committed; "
                             "it may or may not have been applied"
                           : NULL);
        op_free(op);
        return;
    }
    resp.has_id = 1;
    resp.id = id;
    switch (p->outcome.status) {
    case FSM_OK:
        if (op->req->op_case == FLIP__REQUEST__OP_SET) {
            set.has_revision = 1;
            set.revision = p->outcome.revision;
            resp.result_case = FLIP__RESPONSE__RESULT_SET;
            resp.set = &set;
        } else {
            del.has_revision = 1;
            del.revision = p->outcome.revision;
            del.has_existed = 1;
            del.existed = 1;
            resp.result_case = FLIP__RESPONSE__RESULT_DELETE;
            resp.delete_ = &del;
        }
        conn_send(c, &resp);
        break;
    case FSM_CONFLICT:
        err.has_status = 1;
        err.status = FLIP__STATUS__CAS_CONFLICT;
        err.message = (char *)"expected revision does not match";
        err.has_current_revision = 1;
        err.current_revision = p->outcome.revision;
        resp.error = &err;
        conn_send(c, &resp);
        break;
    case FSM_NOTFOUND:
        conn_send_error(c, id, FLIP__STATUS__NOT_FOUND, "no such flag");
        break;
    case FSM_TYPE_MISMATCH:
        err.has_status = 1;
        err.status = FLIP__STATUS__TYPE_MISMATCH;
        err.message = (char *)"the flag has another value type; set "
                              "change_type to change it";
        err.has_current_revision = 1;
        err.current_revision = p->outcome.revision;
        type_name = stored_type(c, op->req->set->key);
        err.current_type = (char *)(uintptr_t)type_name;
        resp.error = &err;
        conn_send(c, &resp);
        break;
    case FSM_STORE_FULL:
        conn_send_error(c, id, FLIP__STATUS__STORE_FULL,
                        "the store is at its size budget "
                        "(--max-store-bytes); delete flags to make room");
        break;
    default:
        conn_send_error(c, id, FLIP__STATUS__INVALID_ARGUMENT,
                        "the change was rejected by the state machine");
        break;
    }
    op_free(op);
}

/* Actor stamped into the entry: explicit, else the Hello name, else the
 * peer address. */
static char *actor_of(struct conn *c, char *explicit_actor)
{
    const char *actor = session_actor(session_of(c), explicit_actor);

    return (char *)(uintptr_t)actor;
}

static int check_common(struct conn *c,
                        uint64_t id,
                        const char *key,
                        const char *actor,
                        const char *reason)
{
    const char *why = NULL;
    int rv = codec_check_key(key, &why);

    if (rv == FLIP_OK) {
        rv = codec_check_text(actor, CODEC_ACTOR_MAX, &why);
    }
    if (rv == FLIP_OK) {
        rv = codec_check_text(reason, CODEC_REASON_MAX, &why);
    }
    if (rv != FLIP_OK) {
        dispatch_error(c, id, rv, why);
    }
    return rv;
}

/* The request id, if the client sent one, checked as apply will. */
static int check_request_id(struct conn *c,
                            uint64_t id,
                            Flip__RequestId *rid,
                            Flipcmd__Change *ch)
{
    struct dedup_id parsed;
    const char *why = NULL;
    int rv;

    if (rid == NULL) {
        return FLIP_OK;
    }
    rv = dedup_id_parse(rid, &parsed, &why);
    if (rv != FLIP_OK) {
        dispatch_error(c, id, rv, why);
        return rv;
    }
    ch->request_id = rid;
    return FLIP_OK;
}

/* Early refusal of a set that cannot fit even with the whole change log
 * dropped: its key and value alone (a lower bound of its record) grow the
 * live flags past the budget. Never refuses what apply would accept; apply
 * decides for real, on every replica alike. */
static int check_budget(struct conn *c, uint64_t id, const Flip__SetRequest *r)
{
    struct store *st = server_of(c)->node.store;
    uint64_t max = server_of(c)->config.max_store_bytes;
    size_t klen = strlen(r->key);
    struct flags_head head;
    uint64_t rec;
    Flip__Value v;
    struct dedup_id rid;
    const char *why = NULL;

    /* Only the leader, and not for a resend: the answer to a write whose
     * id was (or may yet be) applied is its first outcome, which only
     * apply knows. A follower answers NOT_LEADER instead. */
    if (max == 0 || !node_is_leader(&server_of(c)->node)) {
        return FLIP_OK;
    }
    if (r->request_id != NULL &&
        (propose_outstanding(&server_of(c)->propose) ||
         (dedup_id_parse(r->request_id, &rid, &why) == FLIP_OK &&
          dedup_known(st, &rid)))) {
        return FLIP_OK;
    }
    command_value_copy(r->value, &v);
    rec = klen + flip__value__get_packed_size(&v);
    (void)flags_head(st, r->key, klen, &head);
    if (rec > head.bytes && store_flag_bytes(st) + (rec - head.bytes) > max) {
        dispatch_error(c, id, FLIP_STOREFULL,
                       "the store is at its size budget (--max-store-bytes); "
                       "delete flags to make room");
        return FLIP_STOREFULL;
    }
    return FLIP_OK;
}

static void submit(struct conn *c, Flip__Request *req, Flipcmd__Change *ch)
{
    struct op *op;
    int rv;

    if (!node_is_leader(&server_of(c)->node)) {
        dispatch_not_leader(c, req->id);
        return;
    }
    op = op_new(c, req);
    if (op == NULL) {
        dispatch_error(c, req->id, FLIP_NOMEM, NULL);
        return;
    }
    rv = propose_submit(&server_of(c)->propose, &op->proposal, ch, write_done);
    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, NULL);
        op_free(op);
    }
}

void cmd_set(struct conn *c, Flip__Request *req)
{
    const Flip__SetRequest *r = req->set;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    const char *why = NULL;
    int rv;

    if (check_common(c, req->id, r->key, r->actor, r->reason) != FLIP_OK) {
        return;
    }
    rv = codec_check_value(r->value, &why);
    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, why);
        return;
    }
    if (check_request_id(c, req->id, r->request_id, &ch) != FLIP_OK ||
        check_budget(c, req->id, r) != FLIP_OK) {
        return;
    }
    ch.has_change_type = 1;
    ch.change_type = r->has_change_type && r->change_type;
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = r->key;
    ch.value = r->value;
    ch.actor = actor_of(c, r->actor);
    ch.reason = r->reason;
    ch.has_expected_revision = r->has_expected_revision;
    ch.expected_revision = r->expected_revision;
    submit(c, req, &ch);
}

void cmd_delete(struct conn *c, Flip__Request *req)
{
    const Flip__DeleteRequest *r = req->delete_;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;

    if (check_common(c, req->id, r->key, r->actor, r->reason) != FLIP_OK ||
        check_request_id(c, req->id, r->request_id, &ch) != FLIP_OK) {
        return;
    }
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__DELETE;
    ch.key = r->key;
    ch.actor = actor_of(c, r->actor);
    ch.reason = r->reason;
    ch.has_expected_revision = r->has_expected_revision;
    ch.expected_revision = r->expected_revision;
    submit(c, req, &ch);
}

/* ---- reads --------------------------------------------------------------- */

static void serve_get(struct conn *c, const Flip__Request *req)
{
    struct server *s = server_of(c);
    Flip__Flag *flag = NULL;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__GetResult res = FLIP__GET_RESULT__INIT;
    const char *key = req->get->key;
    int rv;

    rv = flags_get(s->node.store, key, &flag);
    if (rv == FLIP_NOTFOUND) {
        conn_send_error(c, req->id, FLIP__STATUS__NOT_FOUND, "no such flag");
        return;
    }
    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, "cannot read the flag");
        return;
    }
    resp.has_id = 1;
    resp.id = req->id;
    res.flag = flag;
    res.has_applied_revision = 1;
    res.applied_revision = node_applied(&s->node);
    resp.result_case = FLIP__RESPONSE__RESULT_GET;
    resp.get = &res;
    conn_send(c, &resp);
    flags_free(flag);
}

struct list_ctx
{
    Flip__Flag **flags;
    size_t n;
    size_t cap;
    size_t bytes;  /* running packed-size estimate */
    size_t budget; /* stop before the response would exceed the frame */
    int failed;
};

static int list_visit(void *arg, const struct flags_row *row)
{
    struct list_ctx *l = arg;
    Flip__Flag *f = NULL;

    if (l->bytes + row->bytes + 16 > l->budget) {
        return 1; /* full: flags_scan then sets *more */
    }
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 64 : l->cap * 2;
        Flip__Flag **grown = flip_realloc(l->flags, cap * sizeof *grown);
        if (grown == NULL) {
            l->failed = 1;
            return 1;
        }
        l->flags = grown;
        l->cap = cap;
    }
    if (flags_row_decode(row, &f) != FLIP_OK) {
        l->failed = 1;
        return 1;
    }
    l->flags[l->n++] = f;
    l->bytes += row->bytes + 16;
    return 0;
}

static void serve_list(struct conn *c, const Flip__Request *req)
{
    struct server *s = server_of(c);
    const Flip__ListRequest *r = req->list;
    struct list_ctx l = { NULL, 0, 0, 0, 0, 0 };
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__ListResult res = FLIP__LIST_RESULT__INIT;
    const char *prefix = r->prefix != NULL ? r->prefix : "";
    size_t limit = r->has_limit && r->limit > 0 ? r->limit : LIST_DEFAULT;
    int more = 0;
    int rv;

    if (limit > LIST_MAX) {
        limit = LIST_MAX;
    }
    l.budget = s->config.max_frame - 1024;
    rv = flags_scan(s->node.store, prefix, r->start_after,
                    r->start_after != NULL ? strlen(r->start_after) : 0, limit,
                    list_visit, &l, &more);
    if (rv != FLIP_OK || l.failed) {
        dispatch_error(c, req->id, rv != FLIP_OK ? rv : FLIP_NOMEM,
                       "cannot list flags");
        goto out;
    }
    resp.has_id = 1;
    resp.id = req->id;
    res.n_flags = l.n;
    res.flags = l.flags;
    res.has_applied_revision = 1;
    res.applied_revision = node_applied(&s->node);
    res.has_more = 1;
    res.more = more;
    resp.result_case = FLIP__RESPONSE__RESULT_LIST;
    resp.list = &res;
    conn_send(c, &resp);
out:
    for (size_t i = 0; i < l.n; i++) {
        flags_free(l.flags[i]);
    }
    flip_free(l.flags);
}

static void serve(struct conn *c, const Flip__Request *req)
{
    if (req->op_case == FLIP__REQUEST__OP_GET) {
        serve_get(c, req);
    } else {
        serve_list(c, req);
    }
}

static void read_ready(struct read_wait *w, int status)
{
    struct op *op = w->data;

    if (op->conn != NULL) {
        if (status == FLIP_OK) {
            dispatch_serve(op, serve); /* now, or once output drains */
            return;
        } else {
            /* the barrier is a log entry: it fails for what fails writes,
             * and only a lost leadership means "retry elsewhere" */
            dispatch_error(
                op->conn, op->req->id, status,
                status == FLIP_LEADERSHIPLOST || status == FLIP_NOTLEADER
                    ? "leadership changed during the read; retry"
                : status == FLIP_NOSPACE
                    ? "the read barrier could not be appended to "
                      "the raft log: no space"
                    : NULL);
        }
    }
    op_free(op);
}

static void read_request(struct conn *c, Flip__Request *req, int stale)
{
    struct op *op;
    int rv;

    if (stale) {
        serve(c, req);
        return;
    }
    if (!node_is_leader(&server_of(c)->node)) {
        dispatch_not_leader(c, req->id);
        return;
    }
    op = op_new(c, req);
    if (op == NULL) {
        dispatch_error(c, req->id, FLIP_NOMEM, NULL);
        return;
    }
    rv = propose_read(&server_of(c)->propose, &op->read, read_ready);
    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, NULL);
        op_free(op);
    }
}

void cmd_get(struct conn *c, Flip__Request *req)
{
    const char *why = NULL;
    int rv = codec_check_key(req->get->key, &why);

    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, why);
        return;
    }
    read_request(c, req, req->get->has_stale && req->get->stale);
}

void cmd_list(struct conn *c, Flip__Request *req)
{
    const char *why = NULL;
    int rv = codec_check_prefix(req->list->prefix, &why);

    if (rv == FLIP_OK && req->list->start_after != NULL &&
        req->list->start_after[0] != '\0') {
        rv = codec_check_key(req->list->start_after, &why);
    }
    if (rv != FLIP_OK) {
        dispatch_error(c, req->id, rv, why);
        return;
    }
    read_request(c, req, req->list->has_stale && req->list->stale);
}
