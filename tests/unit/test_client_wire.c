/* The client library against a scripted fake node: every value type and
 * every answer shape of get, set, delete, list and status; every error
 * status and what the retry loop does with it (docs/protocol.md section
 * 6); the Hello outcomes; frames that are too large, undecodable or carry
 * the wrong id; reconnecting after the server closed an idle connection;
 * running out of memory while copying an answer.
 *
 * client.c, ops.c and wire.c are compiled into the unit binary by
 * test_client_args.c; this file uses their headers. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fakelisten.h"
#include "../lib/fakewire.h"
#include "../lib/faultnth.h"
#include "../lib/runner.h"
#include "client/client.h"
#include "client/flip.h"
#include "client/wire.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/status.h"

/* ---- the fake node ------------------------------------------------------ */

struct fake;

/* Answers one request (Hello included when it is on_hello); returns 0 to
 * close the connection afterwards. */
typedef int (*fake_fn)(struct fake *f, int fd, Flip__Request *req);

#define SEEN_MAX 16

struct fake
{
    int lfd;
    char addr[32];
    pthread_t th;
    volatile int stop;
    fake_fn on_request; /* every request but Hello */
    fake_fn on_hello;   /* NULL: a plain HelloResult */
    int step;           /* the test's script position, for on_request */
    /* written by the fake's thread, read once the client call returned */
    int n_requests;
    int n_conns;
    char seen[SEEN_MAX][80]; /* one line per request: what it asked */
};

static void reply(int fd, const Flip__Request *req, Flip__Response *r)
{
    r->has_id = 1;
    r->id = req->id;
    fakewire_send(fd, r);
}

static void plain_hello(int fd, const Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__HelloResult h = FLIP__HELLO_RESULT__INIT;

    h.has_protocol_version = 1;
    h.protocol_version = 1;
    h.has_node_id = 1;
    h.node_id = 3;
    r.result_case = FLIP__RESPONSE__RESULT_HELLO;
    r.hello = &h;
    reply(fd, req, &r);
}

static void note(struct fake *f, const Flip__Request *req)
{
    char *line;

    if (f->n_requests >= SEEN_MAX) {
        return;
    }
    line = f->seen[f->n_requests];
    switch (req->op_case) {
    case FLIP__REQUEST__OP_GET:
        snprintf(line, 80, "get %s%s", req->get->key,
                 req->get->stale ? " stale" : "");
        break;
    case FLIP__REQUEST__OP_SET:
        snprintf(line, 80, "set %s cas=%d:%llu", req->set->key,
                 req->set->has_expected_revision,
                 (unsigned long long)req->set->expected_revision);
        break;
    case FLIP__REQUEST__OP_DELETE:
        snprintf(line, 80, "delete %s cas=%d:%llu", req->delete_->key,
                 req->delete_->has_expected_revision,
                 (unsigned long long)req->delete_->expected_revision);
        break;
    case FLIP__REQUEST__OP_LIST:
        snprintf(
            line, 80, "list prefix=%s after=%s",
            req->list->prefix != NULL ? req->list->prefix : "(none)",
            req->list->start_after != NULL ? req->list->start_after : "(none)");
        break;
    case FLIP__REQUEST__OP_STATUS:
        snprintf(line, 80, "status hash=%d", req->status->include_hash);
        break;
    default:
        snprintf(line, 80, "op %d", (int)req->op_case);
        break;
    }
}

static void serve(struct fake *f, int fd)
{
    Flip__Request *req;
    int keep = 1;

    while (keep && !f->stop && (req = fakewire_recv(fd)) != NULL) {
        if (req->op_case == FLIP__REQUEST__OP_HELLO) {
            if (f->on_hello != NULL) {
                keep = f->on_hello(f, fd, req);
            } else {
                plain_hello(fd, req);
            }
        } else {
            note(f, req);
            f->n_requests++;
            keep = f->on_request(f, fd, req);
        }
        codec_request_free(req);
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct timeval tv = { 0, 100000 };
    int fd;

    while (!f->stop) {
        fd = fakelisten_accept(f->lfd, 20);
        if (fd < 0) {
            continue;
        }
        /* a client that keeps the connection open must not stall the
         * stop: the receive wakes every 100 ms */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        f->n_conns++;
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(struct fake *f, fake_fn on_request, fake_fn on_hello)
{
    memset(f, 0, sizeof *f);
    f->on_request = on_request;
    f->on_hello = on_hello;
    f->lfd = fakelisten_open(f->addr, sizeof f->addr);
    CHECK(pthread_create(&f->th, NULL, fake_main, f) == 0);
}

static void fake_stop(struct fake *f)
{
    f->stop = 1;
    pthread_join(f->th, NULL);
    close(f->lfd);
}

static struct flip_client *client_for(const struct fake *f, unsigned ms)
{
    struct flip_client *c = NULL;

    CHECK_EQ_INT(flip_client_new(&c, f->addr, "wire-test"), FLIP_OK);
    flip_client_set_timeout(c, ms);
    return c;
}

static void check_errmsg(const struct flip_client *c, const char *want)
{
    if (strcmp(flip_client_errmsg(c), want) != 0) {
        fprintf(stderr, "  errmsg [%s], want [%s]\n", flip_client_errmsg(c),
                want);
    }
    CHECK(strcmp(flip_client_errmsg(c), want) == 0);
}

/* ---- pure pieces -------------------------------------------------------- */

/* Every wire status has its documented FLIP_* code (client/flip.h's
 * table; TYPE_MISMATCH and STORE_FULL were once missing, and an error
 * without a message then read "internal error"); a status this library
 * does not know is an internal error. */
TEST(client_wire_status_codes, 5)
{
    static const struct
    {
        Flip__Status status;
        int rv;
    } map[] = {
        { FLIP__STATUS__OK, FLIP_OK },
        { FLIP__STATUS__NOT_LEADER, FLIP_NOTLEADER },
        { FLIP__STATUS__NOT_FOUND, FLIP_NOTFOUND },
        { FLIP__STATUS__CAS_CONFLICT, FLIP_CONFLICT },
        { FLIP__STATUS__INVALID_ARGUMENT, FLIP_INVALID },
        { FLIP__STATUS__TOO_LARGE, FLIP_TOOBIG },
        { FLIP__STATUS__UNAVAILABLE, FLIP_UNAVAILABLE },
        { FLIP__STATUS__UNSUPPORTED_VERSION, FLIP_UNSUPPORTED },
        { FLIP__STATUS__UNKNOWN_TYPE, FLIP_UNSUPPORTED },
        { FLIP__STATUS__LEADERSHIP_LOST, FLIP_LEADERSHIPLOST },
        { FLIP__STATUS__PROTOCOL_ERROR, FLIP_PROTO },
        { FLIP__STATUS__NO_SPACE, FLIP_NOSPACE },
        { FLIP__STATUS__INTERNAL, FLIP_INTERNAL },
        { FLIP__STATUS__TYPE_MISMATCH, FLIP_TYPEMISMATCH },
        { FLIP__STATUS__STORE_FULL, FLIP_STOREFULL },
        { FLIP__STATUS__SLOW_CONSUMER, FLIP_INTERNAL },
        { (Flip__Status)99, FLIP_INTERNAL },
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        CHECK_EQ_INT(status_to_flip(map[i].status), map[i].rv);
    }
}

/* Addresses: brackets only around a host, a port of digits in 1..65535,
 * nothing empty; the endpoint list trims blanks and tabs, takes at most 16
 * endpoints, and an allocation failure while building the handle leaves
 * nothing behind. */
TEST(client_wire_address_forms, 5)
{
    static const char *const bad[] = {
        "[]:7001", "[::1:7001",    "[::1]x:7001",   ":7001",
        "host:",   "host:+1",      "host:0",        "host:65536",
        "host:1x", "host:1234567", "host:12345678", "a:b:7001",
    };
    char host[64];
    char port[8];
    char many[600];
    char huge[WIRE_ADDR_MAX + 16];
    struct flip_client *c = NULL;
    struct wire w;
    size_t len = 0;

    CHECK_EQ_INT(
        wire_addr_split("[::1]:7001", host, sizeof host, port, sizeof port),
        FLIP_OK);
    CHECK(strcmp(host, "::1") == 0 && strcmp(port, "7001") == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (wire_addr_split(bad[i], host, sizeof host, port, sizeof port) !=
            FLIP_INVALID) {
            fprintf(stderr, "  accepted %s\n", bad[i]);
        }
        CHECK_EQ_INT(
            wire_addr_split(bad[i], host, sizeof host, port, sizeof port),
            FLIP_INVALID);
    }
    CHECK_EQ_INT(wire_addr_split(NULL, host, sizeof host, port, sizeof port),
                 FLIP_INVALID);
    CHECK_EQ_INT(wire_init(&w, NULL), FLIP_INVALID);
    CHECK_EQ_INT(
        flip_client_new(&c, "\t127.0.0.1:7001 , \t,127.0.0.1:7002\t", NULL),
        FLIP_OK);
    CHECK_EQ_INT(c->n_eps, 2);
    CHECK(strcmp(c->eps[0].addr, "127.0.0.1:7001") == 0);
    CHECK(strcmp(c->eps[1].addr, "127.0.0.1:7002") == 0);
    CHECK(c->name == NULL);
    flip_client_free(c);
    for (int i = 0; i < CLIENT_MAX_GIVEN + 1; i++) {
        len += (size_t)snprintf(many + len, sizeof many - len, "%s127.0.0.1:%d",
                                i > 0 ? "," : "", 7001 + i);
    }
    CHECK_EQ_INT(flip_client_new(&c, many, NULL), FLIP_INVALID);
    CHECK(c == NULL);
    memset(huge, 'h', sizeof huge - 1);
    memcpy(huge + sizeof huge - 6, ":7001", 6);
    CHECK_EQ_INT(flip_client_new(&c, huge, NULL), FLIP_INVALID);
    CHECK_EQ_INT(flip_client_new(&c, NULL, NULL), FLIP_INVALID);
}

/* flip_client_new makes the handle, one address copy per endpoint and the
 * name copy: any of them failing gives FLIP_NOMEM and no handle. */
TEST(client_wire_new_out_of_memory, 5)
{
    struct flip_client *c = NULL;

    for (int nth = 1; nth <= 3; nth++) {
        faultnth_start(nth);
        CHECK_EQ_INT(flip_client_new(&c, "127.0.0.1:7001", "name"), FLIP_NOMEM);
        faultnth_stop();
        CHECK(c == NULL);
    }
    faultnth_start(4);
    CHECK_EQ_INT(flip_client_new(&c, "127.0.0.1:7001", "name"), FLIP_OK);
    faultnth_stop();
    CHECK(strcmp(c->name, "name") == 0);
    flip_client_free(c);
}

/* ---- answers of every shape --------------------------------------------- */

/* Get answers by key: one flag of each type, a flag without a value, one
 * whose value has no type, one without a key, no flag, and a result of
 * the wrong kind. */
static int answer_get(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__GetResult g = FLIP__GET_RESULT__INIT;
    Flip__SetResult s = FLIP__SET_RESULT__INIT;
    Flip__Flag fl = FLIP__FLAG__INIT;
    Flip__Value v = FLIP__VALUE__INIT;
    const char *key = req->get->key;

    (void)f;
    fl.key = (char *)key;
    fl.value = &v;
    fl.has_revision = 1;
    fl.revision = 8;
    fl.has_create_revision = 1;
    fl.create_revision = 2;
    fl.has_time_ms = 1;
    fl.time_ms = 1700000000123;
    fl.actor = "alice";
    fl.reason = "because";
    g.flag = &fl;
    r.result_case = FLIP__RESPONSE__RESULT_GET;
    r.get = &g;
    if (strcmp(key, "b") == 0) {
        v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        v.bool_value = 1;
    } else if (strcmp(key, "i") == 0) {
        v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
        v.int_value = -42;
    } else if (strcmp(key, "d") == 0) {
        v.kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
        v.double_value = 2.5;
        fl.actor = NULL; /* an old server: no audit fields */
        fl.reason = NULL;
    } else if (strcmp(key, "s") == 0) {
        v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        v.string_value = "text";
    } else if (strcmp(key, "j") == 0) {
        v.kind_case = FLIP__VALUE__KIND_JSON_VALUE;
        v.json_value = "{\"a\":1}";
    } else if (strcmp(key, "novalue") == 0) {
        fl.value = NULL;
    } else if (strcmp(key, "notype") == 0) {
        v.kind_case = FLIP__VALUE__KIND__NOT_SET;
    } else if (strcmp(key, "nokey") == 0) {
        v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        fl.key = NULL;
    } else if (strcmp(key, "absent") == 0) {
        g.flag = NULL;
    } else { /* "wrong": a set result */
        r.result_case = FLIP__RESPONSE__RESULT_SET;
        r.set = &s;
    }
    reply(fd, req, &r);
    return 1;
}

/* Each value type comes back as it was sent, with its revisions and audit
 * fields (absent ones as ""); answers that are not a flag are protocol
 * errors, and no flag is FLIP_NOTFOUND. */
TEST(client_wire_get_every_answer, 10)
{
    struct fake f;
    struct flip_client *c;
    struct flip_flag fl;
    char want[200];

    fake_start(&f, answer_get, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(flip_get(c, "b", 0, &fl), FLIP_OK);
    CHECK_EQ_INT(fl.value.type, FLIP_TYPE_BOOL);
    CHECK_EQ_INT(fl.value.u.b, 1);
    CHECK_EQ_INT(fl.revision, 8);
    CHECK_EQ_INT(fl.create_revision, 2);
    CHECK(fl.time_ms == 1700000000123);
    CHECK(strcmp(fl.actor, "alice") == 0 && strcmp(fl.reason, "because") == 0);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_get(c, "i", 1, &fl), FLIP_OK);
    CHECK_EQ_INT(fl.value.type, FLIP_TYPE_INT);
    CHECK(fl.value.u.i == -42);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_get(c, "d", 0, &fl), FLIP_OK);
    CHECK_EQ_INT(fl.value.type, FLIP_TYPE_DOUBLE);
    CHECK(fl.value.u.d > 2.49 && fl.value.u.d < 2.51);
    CHECK(strcmp(fl.actor, "") == 0 && strcmp(fl.reason, "") == 0);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_get(c, "s", 0, &fl), FLIP_OK);
    CHECK_EQ_INT(fl.value.type, FLIP_TYPE_STRING);
    CHECK(strcmp(fl.value.u.s, "text") == 0);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_get(c, "j", 0, &fl), FLIP_OK);
    CHECK_EQ_INT(fl.value.type, FLIP_TYPE_JSON);
    CHECK(strcmp(fl.value.u.s, "{\"a\":1}") == 0);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_get(c, "novalue", 0, &fl), FLIP_PROTO);
    check_errmsg(c, "flag without value in answer");
    CHECK(fl.key == NULL);
    CHECK_EQ_INT(flip_get(c, "nokey", 0, &fl), FLIP_PROTO);
    check_errmsg(c, "flag without key in answer");
    CHECK_EQ_INT(flip_get(c, "notype", 0, &fl), FLIP_PROTO);
    check_errmsg(c, "flag notype: value of unknown type");
    CHECK(fl.key == NULL);
    CHECK_EQ_INT(flip_get(c, "absent", 0, &fl), FLIP_NOTFOUND);
    check_errmsg(c, "absent: not found");
    CHECK_EQ_INT(flip_get(c, "wrong", 0, &fl), FLIP_PROTO);
    snprintf(want, sizeof want, "server answered with result %d, expected %d",
             (int)FLIP__RESPONSE__RESULT_SET, (int)FLIP__RESPONSE__RESULT_GET);
    check_errmsg(c, want);
    flip_client_free(c);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_requests, 10);
    CHECK(strcmp(f.seen[1], "get i stale") == 0);
    CHECK_EQ_INT(f.n_conns, 1); /* one connection served every call */
}

/* A get of a string flag on an open connection: every allocation after
 * the answer arrived (the copies of value, key, actor and reason) may
 * fail, and then the caller gets FLIP_NOMEM and an empty flag. */
TEST(client_wire_get_copy_out_of_memory, 10)
{
    struct fake f;
    struct flip_client *c;
    struct flip_flag fl;
    int total;

    fake_start(&f, answer_get, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(flip_get(c, "s", 0, &fl), FLIP_OK); /* opens the connection */
    flip_flag_clear(&fl);
    faultnth_start(0); /* counts, never fails */
    CHECK_EQ_INT(flip_get(c, "s", 0, &fl), FLIP_OK);
    total = faultnth_count();
    faultnth_stop();
    flip_flag_clear(&fl);
    for (int k = 0; k < 4; k++) {
        faultnth_start(total - k);
        CHECK_EQ_INT(flip_get(c, "s", 0, &fl), FLIP_NOMEM);
        faultnth_stop();
        check_errmsg(c, "out of memory");
        CHECK(fl.key == NULL && fl.actor == NULL && fl.reason == NULL);
        CHECK_EQ_INT(fl.value.type, 0);
    }
    flip_client_free(c);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_conns, 1);
}

/* Writes: set and delete answers, with and without the optional parts. */
static int answer_write(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__SetResult s = FLIP__SET_RESULT__INIT;
    Flip__DeleteResult d = FLIP__DELETE_RESULT__INIT;

    (void)f;
    if (req->op_case == FLIP__REQUEST__OP_SET) {
        s.has_revision = 1;
        s.revision = 21;
        r.result_case = FLIP__RESPONSE__RESULT_SET;
        r.set = &s;
    } else {
        d.has_revision = 1;
        d.revision = 22;
        if (strcmp(req->delete_->key, "gone") == 0) {
            d.has_existed = 1;
            d.existed = 0;
        } else if (strcmp(req->delete_->key, "here") == 0) {
            d.has_existed = 1;
            d.existed = 1;
        } /* else an old server that does not say */
        r.result_case = FLIP__RESPONSE__RESULT_DELETE;
        r.delete_ = &d;
    }
    reply(fd, req, &r);
    return 1;
}

/* A delete reports whether the flag existed (an old server that does not
 * say is taken as "it did": it answered OK, not NOT_FOUND); compare-and-
 * set revisions reach the server; optional outputs may be NULL; a bad
 * actor or value never leaves the client. */
TEST(client_wire_writes, 10)
{
    struct fake f;
    struct flip_client *c;
    struct flip_write_opts o = { 0 };
    struct flip_value v = { 0 };
    uint64_t rev = 0;
    int existed = -1;

    fake_start(&f, answer_write, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(flip_delete(c, "gone", NULL, &rev, &existed), FLIP_OK);
    CHECK_EQ_INT(rev, 22);
    CHECK_EQ_INT(existed, 0);
    CHECK_EQ_INT(flip_delete(c, "here", NULL, &rev, &existed), FLIP_OK);
    CHECK_EQ_INT(existed, 1);
    existed = 0;
    CHECK_EQ_INT(flip_delete(c, "old", NULL, NULL, &existed), FLIP_OK);
    CHECK_EQ_INT(existed, 1);
    o.use_cas = 1;
    o.expected_revision = 5;
    CHECK_EQ_INT(flip_delete(c, "old", &o, NULL, NULL), FLIP_OK);
    v.type = FLIP_TYPE_STRING;
    v.u.s = "on";
    o.expected_revision = 6;
    o.change_type = 1;
    CHECK_EQ_INT(flip_set(c, "k", &v, &o, NULL), FLIP_OK);
    CHECK_EQ_INT(f.n_requests, 5);
    CHECK(strcmp(f.seen[2], "delete old cas=0:0") == 0);
    CHECK(strcmp(f.seen[3], "delete old cas=1:5") == 0);
    CHECK(strcmp(f.seen[4], "set k cas=1:6") == 0);
    /* Refused before anything is sent. */
    o.actor = "\xff";
    CHECK_EQ_INT(flip_set(c, "k", &v, &o, NULL), FLIP_INVALID);
    CHECK(strncmp(flip_client_errmsg(c), "actor: ", 7) == 0);
    o.actor = NULL;
    v.u.s = NULL;
    CHECK_EQ_INT(flip_set(c, "k", &v, NULL, &rev), FLIP_INVALID);
    check_errmsg(c, "value: NULL string");
    CHECK_EQ_INT(rev, 0);
    v.type = FLIP_TYPE_JSON;
    CHECK_EQ_INT(flip_set(c, "k", &v, NULL, NULL), FLIP_INVALID);
    check_errmsg(c, "value: NULL string");
    v.type = (enum flip_type)99;
    CHECK_EQ_INT(flip_set(c, "k", &v, NULL, NULL), FLIP_INVALID);
    check_errmsg(c, "value: unknown type 99");
    flip_client_free(c);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_requests, 5);
}

/* List pages of two flags: keys k0..k4 and `more` until the last page;
 * step 1 answers "more" with no flags, step 2 answers keys out of order. */
static int answer_list(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__ListResult l = FLIP__LIST_RESULT__INIT;
    Flip__Flag fl[2] = { FLIP__FLAG__INIT, FLIP__FLAG__INIT };
    Flip__Flag *pf[2] = { &fl[0], &fl[1] };
    Flip__Value v = FLIP__VALUE__INIT;
    char keys[2][8];
    int from = 0;

    v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    if (req->list->start_after != NULL) {
        from = req->list->start_after[1] - '0' + 1;
    }
    for (int k = 0; k < 2 && from + k < 5; k++) {
        snprintf(keys[k], sizeof keys[k], "k%d", from + k);
        fl[k].key = keys[k];
        fl[k].value = &v;
        l.n_flags++;
    }
    l.flags = pf;
    l.has_more = 1;
    l.more = from + 2 < 5;
    if (f->step == 1) {
        l.n_flags = 0;
        l.more = 1;
    } else if (f->step == 2) {
        fl[1].key = "a";
    }
    r.result_case = FLIP__RESPONSE__RESULT_LIST;
    r.list = &l;
    reply(fd, req, &r);
    return 1;
}

/* A list follows `more` page by page, each page starting after the last
 * key it holds; a page that says more but holds nothing, or keys out of
 * order, would loop or skip flags: FLIP_PROTO, and nothing handed out. */
TEST(client_wire_list_pages, 10)
{
    struct fake f;
    struct flip_client *c;
    struct flip_flag *flags = NULL;
    size_t n = 0;

    fake_start(&f, answer_list, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(flip_list(c, "", 0, &flags, &n), FLIP_OK);
    CHECK_EQ_INT(n, 5);
    for (size_t i = 0; i < n; i++) {
        char want[8];
        snprintf(want, sizeof want, "k%zu", i);
        CHECK(strcmp(flags[i].key, want) == 0);
    }
    flip_flags_free(flags, n);
    flip_flags_free(NULL, 0);
    CHECK_EQ_INT(f.n_requests, 3);
    CHECK(strcmp(f.seen[0], "list prefix=(none) after=(none)") == 0);
    CHECK(strcmp(f.seen[1], "list prefix=(none) after=k1") == 0);
    CHECK(strcmp(f.seen[2], "list prefix=(none) after=k3") == 0);
    f.step = 1;
    CHECK_EQ_INT(flip_list(c, "k", 1, &flags, &n), FLIP_PROTO);
    check_errmsg(c, "list answer says more but holds no flags");
    CHECK(flags == NULL && n == 0);
    CHECK(strcmp(f.seen[3], "list prefix=k after=(none)") == 0);
    f.step = 2;
    CHECK_EQ_INT(flip_list(c, NULL, 0, &flags, &n), FLIP_PROTO);
    check_errmsg(c, "list answer out of key order at a");
    CHECK(flags == NULL && n == 0);
    flip_client_free(c);
    fake_stop(&f);
}

/* ---- error statuses ----------------------------------------------------- */

/* f->step selects the answer to every request (see the table of
 * client_wire_error_statuses); a retried status is answered once, then
 * the request succeeds. */
enum
{
    ST_TYPE_MISMATCH = 1,
    ST_TYPE_MISMATCH_BARE,
    ST_STORE_FULL,
    ST_CAS_BARE,
    ST_NOT_FOUND_NO_TEXT,
    ST_INVALID,
    ST_TOO_LARGE,
    ST_UNSUPPORTED,
    ST_UNKNOWN_TYPE,
    ST_PROTOCOL_ERROR,
    ST_NO_SPACE_ONCE,
    ST_INTERNAL_ONCE,
    ST_UNKNOWN_ONCE,
    ST_OK_WITH_ERROR,
    ST_CONN_ERROR,
    ST_WRONG_ID,
    ST_LOST_THEN_WRONG_ID,
    ST_NOT_LEADER_BAD_ADDR,
};

static int answer_status(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Error e = FLIP__ERROR__INIT;
    Flip__GetResult g = FLIP__GET_RESULT__INIT;
    Flip__SetResult s = FLIP__SET_RESULT__INIT;
    int first = f->n_requests == 1;

    e.has_status = 1;
    switch (f->step) {
    case ST_TYPE_MISMATCH:
        e.status = FLIP__STATUS__TYPE_MISMATCH;
        e.message = "k holds an int";
        e.current_type = "int";
        e.has_current_revision = 1;
        e.current_revision = 9;
        break;
    case ST_TYPE_MISMATCH_BARE:
        e.status = FLIP__STATUS__TYPE_MISMATCH;
        break;
    case ST_STORE_FULL:
        e.status = FLIP__STATUS__STORE_FULL;
        e.message = "full";
        break;
    case ST_CAS_BARE:
        e.status = FLIP__STATUS__CAS_CONFLICT;
        break;
    case ST_NOT_FOUND_NO_TEXT:
        e.status = FLIP__STATUS__NOT_FOUND;
        e.message = "";
        break;
    case ST_INVALID:
        e.status = FLIP__STATUS__INVALID_ARGUMENT;
        e.message = "bad";
        break;
    case ST_TOO_LARGE:
        e.status = FLIP__STATUS__TOO_LARGE;
        break;
    case ST_UNSUPPORTED:
        e.status = FLIP__STATUS__UNSUPPORTED_VERSION;
        break;
    case ST_UNKNOWN_TYPE:
        e.status = FLIP__STATUS__UNKNOWN_TYPE;
        break;
    case ST_PROTOCOL_ERROR:
        e.status = FLIP__STATUS__PROTOCOL_ERROR;
        e.message = "garbled";
        break;
    case ST_NO_SPACE_ONCE:
        e.status = FLIP__STATUS__NO_SPACE;
        break;
    case ST_INTERNAL_ONCE:
        e.status = FLIP__STATUS__INTERNAL;
        break;
    case ST_UNKNOWN_ONCE:
        e.status = (Flip__Status)77;
        break;
    case ST_OK_WITH_ERROR:
        e.status = FLIP__STATUS__OK;
        first = 1; /* an error part saying OK is no error */
        break;
    case ST_CONN_ERROR: /* id 0: the connection's error, then it closes */
        r.has_id = 1;
        r.id = 0;
        e.status = FLIP__STATUS__TOO_LARGE;
        e.message = "frame too large";
        r.error = &e;
        fakewire_send(fd, &r);
        return 0;
    case ST_WRONG_ID:
        g.flag = NULL;
        r.result_case = FLIP__RESPONSE__RESULT_GET;
        r.get = &g;
        r.has_id = 1;
        r.id = req->id + 100;
        fakewire_send(fd, &r);
        return 1;
    case ST_LOST_THEN_WRONG_ID:
        if (!first) {
            r.result_case = FLIP__RESPONSE__RESULT_SET;
            r.set = &s;
            r.has_id = 1;
            r.id = req->id + 100;
            fakewire_send(fd, &r);
            return 1;
        }
        e.status = FLIP__STATUS__LEADERSHIP_LOST;
        break;
    case ST_NOT_LEADER_BAD_ADDR:
        e.status = FLIP__STATUS__NOT_LEADER;
        e.leader_address = "no-port-here";
        break;
    default:
        CHECK(0);
    }
    if (first || f->step < ST_NO_SPACE_ONCE || f->step > ST_UNKNOWN_ONCE) {
        r.error = &e;
    }
    if (r.error == NULL || e.status == FLIP__STATUS__OK) {
        if (req->op_case == FLIP__REQUEST__OP_SET) {
            s.has_revision = 1;
            s.revision = 30;
            r.result_case = FLIP__RESPONSE__RESULT_SET;
            r.set = &s;
        } else {
            r.result_case = FLIP__RESPONSE__RESULT_GET;
            r.get = &g; /* no flag: not found */
        }
    }
    reply(fd, req, &r);
    return 1;
}

/* Runs one set against f answering with `step`; returns its code. */
static int set_with(struct fake *f, struct flip_client *c, int step)
{
    struct flip_value v = { .type = FLIP_TYPE_BOOL };

    f->step = step;
    f->n_requests = 0;
    return flip_set(c, "k", &v, NULL, NULL);
}

static int get_with(struct fake *f, struct flip_client *c, int step)
{
    struct flip_flag fl;

    f->step = step;
    f->n_requests = 0;
    return flip_get(c, "k", 0, &fl);
}

/* Final statuses map to their codes at once, with the details the error
 * carries (conflict revision and type, message or the code's text);
 * NO_SPACE, INTERNAL and an unknown status are retried; PROTOCOL_ERROR
 * closes the connection. */
TEST(client_wire_error_statuses, 20)
{
    struct fake f;
    struct flip_client *c;

    fake_start(&f, answer_status, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(set_with(&f, c, ST_TYPE_MISMATCH), FLIP_TYPEMISMATCH);
    check_errmsg(c, "k holds an int");
    CHECK(flip_client_conflict_type(c) == FLIP_TYPE_INT);
    CHECK_EQ_INT(flip_client_conflict_revision(c), 9);
    CHECK_EQ_INT(set_with(&f, c, ST_TYPE_MISMATCH_BARE), FLIP_TYPEMISMATCH);
    check_errmsg(c, "value type differs from the flag's");
    CHECK(flip_client_conflict_type(c) == FLIP_TYPE_AUTO);
    CHECK_EQ_INT(flip_client_conflict_revision(c), 0);
    CHECK_EQ_INT(set_with(&f, c, ST_STORE_FULL), FLIP_STOREFULL);
    check_errmsg(c, "full");
    CHECK_EQ_INT(set_with(&f, c, ST_CAS_BARE), FLIP_CONFLICT);
    CHECK_EQ_INT(flip_client_conflict_revision(c), 0);
    CHECK_EQ_INT(get_with(&f, c, ST_NOT_FOUND_NO_TEXT), FLIP_NOTFOUND);
    check_errmsg(c, "not found");
    CHECK_EQ_INT(set_with(&f, c, ST_INVALID), FLIP_INVALID);
    check_errmsg(c, "bad");
    CHECK_EQ_INT(set_with(&f, c, ST_TOO_LARGE), FLIP_TOOBIG);
    CHECK_EQ_INT(get_with(&f, c, ST_UNSUPPORTED), FLIP_UNSUPPORTED);
    CHECK_EQ_INT(get_with(&f, c, ST_UNKNOWN_TYPE), FLIP_UNSUPPORTED);
    CHECK_EQ_INT(f.n_conns, 1);
    CHECK_EQ_INT(get_with(&f, c, ST_PROTOCOL_ERROR), FLIP_PROTO);
    CHECK_EQ_INT(f.n_requests, 1);
    CHECK(strstr(flip_client_errmsg(c), ": garbled") != NULL);
    CHECK(c->eps[0].fd < 0); /* closed, as the server closes it */
    CHECK_EQ_INT(set_with(&f, c, ST_NO_SPACE_ONCE), FLIP_OK);
    CHECK_EQ_INT(f.n_requests, 2);
    CHECK_EQ_INT(get_with(&f, c, ST_INTERNAL_ONCE), FLIP_NOTFOUND);
    CHECK_EQ_INT(f.n_requests, 2);
    CHECK_EQ_INT(get_with(&f, c, ST_UNKNOWN_ONCE), FLIP_NOTFOUND);
    CHECK_EQ_INT(f.n_requests, 2);
    CHECK_EQ_INT(set_with(&f, c, ST_OK_WITH_ERROR), FLIP_OK);
    CHECK_EQ_INT(f.n_requests, 1);
    CHECK_EQ_INT(f.n_conns, 2);
    flip_client_free(c);
    fake_stop(&f);
}

/* A connection-level error (id 0) answers the request in flight and the
 * connection is closed; an answer with another request's id means the
 * stream is confused: FLIP_PROTO at once, and for a write that an earlier
 * attempt may have applied, the earlier unknown outcome instead. */
TEST(client_wire_answer_ids, 20)
{
    struct fake f;
    struct flip_client *c;

    fake_start(&f, answer_status, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(get_with(&f, c, ST_CONN_ERROR), FLIP_TOOBIG);
    check_errmsg(c, "frame too large");
    CHECK(c->eps[0].fd < 0);
    CHECK_EQ_INT(get_with(&f, c, ST_WRONG_ID), FLIP_PROTO);
    CHECK(strstr(flip_client_errmsg(c), "response id 102 for request 2") !=
          NULL);
    CHECK(c->eps[0].fd < 0);
    CHECK_EQ_INT(set_with(&f, c, ST_LOST_THEN_WRONG_ID), FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(f.n_requests, 2);
    CHECK(strstr(flip_client_errmsg(c),
                 "an earlier attempt was sent, so the write may or may not "
                 "have been applied") != NULL);
    flip_client_free(c);
    fake_stop(&f);
}

/* CLIENT_WRITE (a write without a request id) is never resent once
 * written: LEADERSHIP_LOST and INTERNAL stop it with "outcome unknown",
 * and so does a connection lost after the write. */
TEST(client_wire_write_without_id_is_not_resent, 20)
{
    struct fake f;
    struct flip_client *c;
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SetRequest set = FLIP__SET_REQUEST__INIT;
    Flip__Value v = FLIP__VALUE__INIT;
    Flip__Response *resp = NULL;

    fake_start(&f, answer_status, NULL);
    c = client_for(&f, 5000);
    v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    set.key = "k";
    set.value = &v;
    req.op_case = FLIP__REQUEST__OP_SET;
    req.set = &set;
    f.step = ST_LOST_THEN_WRONG_ID; /* LEADERSHIP_LOST first */
    CHECK_EQ_INT(client_call(c, CLIENT_WRITE, &req, &resp),
                 FLIP_LEADERSHIPLOST);
    CHECK(resp == NULL);
    CHECK_EQ_INT(f.n_requests, 1);
    CHECK(strstr(flip_client_errmsg(c),
                 "leadership lost before the write "
                 "committed") != NULL);
    f.n_requests = 0;
    f.step = ST_INTERNAL_ONCE;
    CHECK_EQ_INT(client_call(c, CLIENT_WRITE, &req, &resp), FLIP_INTERNAL);
    CHECK_EQ_INT(f.n_requests, 1);
    CHECK(strstr(flip_client_errmsg(c),
                 "the write may or may not have "
                 "been applied") != NULL);
    f.n_requests = 0;
    f.step = ST_CONN_ERROR; /* no: id 0 counts as the answer */
    CHECK_EQ_INT(client_call(c, CLIENT_WRITE, &req, &resp), FLIP_TOOBIG);
    /* A read redirected to an address that is not one: nobody to ask,
     * retried until the deadline, unavailable. */
    flip_client_set_timeout(c, 300);
    f.n_requests = 0;
    f.step = ST_NOT_LEADER_BAD_ADDR;
    CHECK_EQ_INT(get_with(&f, c, ST_NOT_LEADER_BAD_ADDR), FLIP_UNAVAILABLE);
    CHECK(strstr(flip_client_errmsg(c), "gave up after 300 ms: ") != NULL);
    CHECK(strstr(flip_client_errmsg(c), "not leader, and no leader known") !=
          NULL);
    CHECK(f.n_requests >= 2);
    CHECK_EQ_INT(c->n_eps, 1); /* the bad address was not learned */
    flip_client_free(c);
    fake_stop(&f);
}

/* ---- Hello -------------------------------------------------------------- */

enum
{
    HELLO_REFUSED = 1,
    HELLO_WRONG_RESULT,
    HELLO_VERSION_2,
    HELLO_DETAILS,
    HELLO_ODD_DETAILS,
    HELLO_HANG_UP,
};

static int answer_hello(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__HelloResult h = FLIP__HELLO_RESULT__INIT;
    Flip__SetResult s = FLIP__SET_RESULT__INIT;
    Flip__Error e = FLIP__ERROR__INIT;
    static char long_id[80];

    r.result_case = FLIP__RESPONSE__RESULT_HELLO;
    r.hello = &h;
    switch (f->step) {
    case HELLO_REFUSED:
        e.has_status = 1;
        e.status = FLIP__STATUS__UNAVAILABLE;
        r.error = &e;
        break;
    case HELLO_WRONG_RESULT:
        r.result_case = FLIP__RESPONSE__RESULT_SET;
        r.set = &s;
        break;
    case HELLO_VERSION_2:
        h.has_protocol_version = 1;
        h.protocol_version = 2;
        break;
    case HELLO_DETAILS:
        h.has_node_id = 1;
        h.node_id = 7;
        h.cluster_id = "0123abcd";
        h.has_max_frame = 1;
        h.max_frame = 3 * WIRE_FRAME_CAP; /* never above the cap */
        break;
    case HELLO_ODD_DETAILS: /* no version, an id too long to keep */
        memset(long_id, 'a', sizeof long_id - 1);
        h.cluster_id = long_id;
        h.has_max_frame = 1;
        h.max_frame = 0;
        break;
    default: /* HELLO_HANG_UP */
        return 0;
    }
    reply(fd, req, &r);
    return 1;
}

static int answer_nothing(struct fake *f, int fd, Flip__Request *req)
{
    (void)f;
    (void)fd;
    (void)req;
    return 1;
}

/* A refused Hello, an answer that is not a HelloResult, another protocol
 * version and a server that hangs up each fail the connection with their
 * own code and message; a HelloResult's node id, cluster id and frame
 * limit are kept (the limit capped, an overlong id dropped). */
TEST(client_wire_hello_outcomes, 20)
{
    struct fake f;
    struct flip_client *c;
    struct flip_node_status st;
    struct wire w;
    char want[200];

    fake_start(&f, answer_nothing, answer_hello);
    c = client_for(&f, 5000);
    f.step = HELLO_REFUSED;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_UNAVAILABLE);
    snprintf(want, sizeof want, "%s: hello refused: unavailable", f.addr);
    check_errmsg(c, want);
    f.step = HELLO_WRONG_RESULT;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_PROTO);
    snprintf(want, sizeof want, "%s: hello: unexpected answer", f.addr);
    check_errmsg(c, want);
    f.step = HELLO_VERSION_2;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_UNSUPPORTED);
    snprintf(want, sizeof want, "%s: server speaks protocol version 2", f.addr);
    check_errmsg(c, want);
    /* A read stops at once: another node would say the same. */
    CHECK_EQ_INT(get_with(&f, c, HELLO_VERSION_2), FLIP_UNSUPPORTED);
    check_errmsg(c, want);
    f.step = HELLO_HANG_UP;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_UNAVAILABLE);
    snprintf(want, sizeof want, "%s: connection closed by server", f.addr);
    check_errmsg(c, want);
    CHECK(c->eps[0].fd < 0);
    flip_client_free(c);
    CHECK_EQ_INT(wire_init(&w, f.addr), FLIP_OK);
    f.step = HELLO_DETAILS;
    CHECK_EQ_INT(wire_open(&w, NULL, clock_mono_ms() + 5000), FLIP_OK);
    CHECK_EQ_INT(w.node_id, 7);
    CHECK(strcmp(w.cluster_id, "0123abcd") == 0);
    CHECK_EQ_INT(w.max_frame, WIRE_FRAME_CAP);
    wire_close(&w);
    CHECK_EQ_INT(w.node_id, 0);
    CHECK_EQ_INT(w.cluster_id[0], '\0');
    f.step = HELLO_ODD_DETAILS;
    CHECK_EQ_INT(wire_open(&w, "name", clock_mono_ms() + 5000), FLIP_OK);
    CHECK_EQ_INT(w.node_id, 0);
    CHECK_EQ_INT(w.cluster_id[0], '\0');
    CHECK_EQ_INT(w.max_frame, FRAME_MAX_DEFAULT);
    wire_destroy(&w);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_requests, 0);
}

/* ---- frames ------------------------------------------------------------- */

enum
{
    FR_SILENT = 1,
    FR_TWO_ANSWERS,
    FR_GARBAGE,
    FR_OVERSIZE,
    FR_HANG_UP,
    FR_ANSWER_THEN_CLOSE,
    FR_ANSWER_THEN_STRAY,
};

static void send_raw(int fd, const void *p, size_t n)
{
    CHECK(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n);
}

static int answer_frames(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__GetResult g = FLIP__GET_RESULT__INIT;
    struct buf two;
    uint8_t hdr[4];

    r.result_case = FLIP__RESPONSE__RESULT_GET;
    r.get = &g;
    /* send_get's requests carry their step: the next may be set before
     * the fake has read this one */
    switch (strncmp(req->get->key, "step", 4) == 0 ? atoi(req->get->key + 4)
                                                   : f->step) {
    case FR_SILENT:
        return 1;
    case FR_TWO_ANSWERS:
        reply(fd, req, &r);
        reply(fd, req, &r);
        return 1;
    case FR_GARBAGE:
        buf_put_u32be(hdr, 3);
        send_raw(fd, hdr, 4);
        send_raw(fd, "\xff\xff\xff", 3);
        return 1;
    case FR_OVERSIZE:
        buf_put_u32be(hdr, FRAME_MAX_DEFAULT + 1);
        send_raw(fd, hdr, 4);
        return 1;
    case FR_HANG_UP:
        return 0;
    case FR_ANSWER_THEN_CLOSE:
        reply(fd, req, &r);
        return 0;
    default: /* FR_ANSWER_THEN_STRAY: an answer nobody asked for, in
              * the same segment, so it is there before the next call */
        r.has_id = 1;
        r.id = req->id;
        buf_init(&two);
        CHECK_EQ_INT(codec_response_encode(&r, FRAME_MAX_DEFAULT, &two),
                     FLIP_OK);
        CHECK_EQ_INT(codec_response_encode(&r, FRAME_MAX_DEFAULT, &two),
                     FLIP_OK);
        send_raw(fd, buf_head(&two), buf_len(&two));
        buf_close(&two);
        return 1;
    }
}

/* A get request on w; the fake reacts to it as f->step says. */
static void send_get(struct fake *f, struct wire *w, int step)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__GetRequest get = FLIP__GET_REQUEST__INIT;
    char key[16];

    (void)f;
    snprintf(key, sizeof key, "step%d", step);
    get.key = key;
    req.op_case = FLIP__REQUEST__OP_GET;
    req.get = &get;
    if (w->fd < 0) {
        CHECK_EQ_INT(wire_open(w, NULL, clock_mono_ms() + 5000), FLIP_OK);
    }
    CHECK_EQ_INT(wire_send(w, &req, clock_mono_ms() + 5000), FLIP_OK);
}

/* wire_recv(WIRE_NO_WAIT) until it stops saying FLIP_AGAIN (bounded: 5 s). */
static int try_recv_wait(struct wire *w, Flip__Response **out)
{
    int64_t until = clock_mono_ms() + 5000;
    int rv;

    while ((rv = wire_recv(w, WIRE_NO_WAIT, out)) == FLIP_AGAIN &&
           clock_mono_ms() < until) {
        struct pollfd p = { w->fd, POLLIN, 0 };
        (void)poll(&p, 1, 50);
    }
    return rv;
}

/* The stream calls: on a closed connection they fail without touching a
 * socket; wire_recv(WIRE_NO_WAIT) says FLIP_AGAIN while no whole frame is there
 * and returns frames already buffered; a frame that does not decode or is over
 * the limit, and a server that hangs up, close the connection with their own
 * code and message. */
TEST(client_wire_stream_frames, 20)
{
    struct fake f;
    struct wire w;
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Response *resp = NULL;
    char want[200];

    fake_start(&f, answer_frames, NULL);
    CHECK_EQ_INT(wire_init(&w, f.addr), FLIP_OK);
    snprintf(want, sizeof want, "%s: not connected", f.addr);
    CHECK_EQ_INT(wire_send(&w, &req, clock_mono_ms() + 100), FLIP_CLOSED);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK_EQ_INT(wire_recv(&w, clock_mono_ms() + 100, &resp), FLIP_CLOSED);
    CHECK_EQ_INT(wire_recv(&w, WIRE_NO_WAIT, &resp), FLIP_CLOSED);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK(resp == NULL);
    send_get(&f, &w, FR_SILENT);
    CHECK_EQ_INT(wire_recv(&w, WIRE_NO_WAIT, &resp), FLIP_AGAIN);
    CHECK(w.fd >= 0);
    send_get(&f, &w, FR_TWO_ANSWERS);
    CHECK_EQ_INT(wire_recv(&w, clock_mono_ms() + 5000, &resp), FLIP_OK);
    CHECK(resp->id == 3 && resp->result_case == FLIP__RESPONSE__RESULT_GET);
    codec_response_free(resp);
    CHECK_EQ_INT(try_recv_wait(&w, &resp), FLIP_OK);
    CHECK(resp->id == 3);
    codec_response_free(resp);
    send_get(&f, &w, FR_GARBAGE);
    CHECK_EQ_INT(wire_recv(&w, clock_mono_ms() + 5000, &resp), FLIP_PROTO);
    snprintf(want, sizeof want, "%s: undecodable response: protocol error",
             f.addr);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK(w.fd < 0 && resp == NULL);
    send_get(&f, &w, FR_GARBAGE);
    CHECK_EQ_INT(try_recv_wait(&w, &resp), FLIP_PROTO);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK(w.fd < 0);
    send_get(&f, &w, FR_OVERSIZE);
    CHECK_EQ_INT(wire_recv(&w, clock_mono_ms() + 5000, &resp), FLIP_TOOBIG);
    snprintf(want, sizeof want, "%s: response frame over the %u-byte limit",
             f.addr, FRAME_MAX_DEFAULT);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK(w.fd < 0);
    send_get(&f, &w, FR_OVERSIZE);
    CHECK_EQ_INT(try_recv_wait(&w, &resp), FLIP_TOOBIG);
    CHECK(strcmp(w.errmsg, want) == 0);
    send_get(&f, &w, FR_HANG_UP);
    CHECK_EQ_INT(try_recv_wait(&w, &resp), FLIP_CLOSED);
    snprintf(want, sizeof want, "%s: connection closed by server", f.addr);
    CHECK(strcmp(w.errmsg, want) == 0);
    CHECK(w.fd < 0);
    wire_destroy(&w);
    fake_stop(&f);
}

/* A connection the server closed while idle, or on which it sent bytes
 * nobody asked for, is never used for the next request: the call opens a
 * new one and succeeds. */
TEST(client_wire_dead_idle_connection_is_replaced, 20)
{
    struct fake f;
    struct flip_client *c;

    fake_start(&f, answer_frames, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(get_with(&f, c, FR_ANSWER_THEN_CLOSE), FLIP_NOTFOUND);
    CHECK_EQ_INT(get_with(&f, c, FR_ANSWER_THEN_STRAY), FLIP_NOTFOUND);
    CHECK_EQ_INT(f.n_requests, 1);
    CHECK_EQ_INT(get_with(&f, c, FR_ANSWER_THEN_CLOSE), FLIP_NOTFOUND);
    CHECK_EQ_INT(f.n_requests, 1); /* not resent: the first one did it */
    flip_client_free(c);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_conns, 3);
}

/* ---- status and redirects ----------------------------------------------- */

enum
{
    SN_FULL = 1,
    SN_BARE,
    SN_ERROR,
    SN_WRONG_RESULT,
};

static int answer_node_status(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__StatusResult st = FLIP__STATUS_RESULT__INIT;
    Flip__Member m[2] = { FLIP__MEMBER__INIT, FLIP__MEMBER__INIT };
    Flip__Member *pm[2] = { &m[0], &m[1] };
    Flip__GetResult g = FLIP__GET_RESULT__INIT;
    Flip__Error e = FLIP__ERROR__INIT;

    if (req->op_case == FLIP__REQUEST__OP_GET) {
        r.result_case = FLIP__RESPONSE__RESULT_GET;
        r.get = &g;
        reply(fd, req, &r);
        return 1;
    }
    r.result_case = FLIP__RESPONSE__RESULT_STATUS;
    r.status = &st;
    switch (f->step) {
    case SN_FULL:
        st.has_node_id = 1;
        st.node_id = 2;
        st.role = "leader";
        st.has_term = 1;
        st.term = 4;
        st.leader_address = "127.0.0.1:7002";
        st.raft_address = "127.0.0.1:8002";
        st.client_address = "127.0.0.1:7002";
        st.cluster_id = "feed";
        st.has_state_hash = req->status->include_hash;
        st.state_hash = 0xabcdef;
        st.has_live = 1;
        st.live = 1;
        m[0].has_id = 1;
        m[0].id = 1;
        m[0].raft_address = "127.0.0.1:8001";
        m[0].client_address = "127.0.0.1:7001";
        m[0].has_voter = 1;
        m[0].voter = 1;
        m[1].has_id = 1;
        m[1].id = 2;
        m[1].has_joined = 1;
        m[1].joined = 1; /* no addresses: an old member record */
        st.members = pm;
        st.n_members = 2;
        break;
    case SN_BARE:
        break;
    case SN_ERROR:
        e.has_status = 1;
        e.status = FLIP__STATUS__UNAVAILABLE;
        e.message = "shutting down";
        r.error = &e;
        r.result_case = FLIP__RESPONSE__RESULT__NOT_SET;
        break;
    default: /* SN_WRONG_RESULT */
        r.result_case = FLIP__RESPONSE__RESULT_GET;
        r.get = &g;
        break;
    }
    reply(fd, req, &r);
    return 1;
}

/* A node's status comes back whole (members included, absent texts as
 * ""), on the handle's own connection when the endpoint is one of its
 * own; an error status is that status's code with its message; a result
 * of another kind is a protocol error; no endpoint is invalid; and no
 * memory for the copy gives FLIP_NOMEM and an empty status. */
TEST(client_wire_node_status, 20)
{
    struct fake f;
    struct flip_client *c;
    struct flip_node_status st;
    struct flip_flag fl;
    char want[200];
    int total;

    fake_start(&f, answer_node_status, NULL);
    c = client_for(&f, 5000);
    CHECK_EQ_INT(flip_get(c, "k", 0, &fl), FLIP_NOTFOUND);
    f.step = SN_FULL;
    CHECK_EQ_INT(flip_status_node(c, f.addr, FLIP_STATUS_HASH, &st), FLIP_OK);
    CHECK_EQ_INT(st.id, 2);
    CHECK_EQ_INT(st.term, 4);
    CHECK(strcmp(st.role, "leader") == 0);
    CHECK(strcmp(st.leader_address, "127.0.0.1:7002") == 0);
    CHECK(strcmp(st.raft_address, "127.0.0.1:8002") == 0);
    CHECK(strcmp(st.cluster_id, "feed") == 0);
    CHECK(st.has_state_hash && st.state_hash == 0xabcdef);
    CHECK(st.has_live && st.live);
    CHECK_EQ_INT(st.n_members, 2);
    CHECK(st.members[0].id == 1 && st.members[0].voter &&
          !st.members[0].joined);
    CHECK(strcmp(st.members[0].client_address, "127.0.0.1:7001") == 0);
    CHECK(st.members[1].id == 2 && !st.members[1].voter &&
          st.members[1].joined);
    CHECK(strcmp(st.members[1].raft_address, "") == 0);
    CHECK(strcmp(st.members[1].client_address, "") == 0);
    flip_node_status_clear(&st);
    CHECK(strcmp(f.seen[1], "status hash=1") == 0);
    f.step = SN_BARE;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_OK);
    CHECK(strcmp(st.role, "") == 0 && strcmp(st.cluster_id, "") == 0);
    CHECK(st.n_members == 0 && st.members == NULL && !st.has_state_hash);
    flip_node_status_clear(&st);
    CHECK(strcmp(f.seen[2], "status hash=0") == 0);
    CHECK_EQ_INT(f.n_conns, 1); /* the handle's connection, reused */
    f.step = SN_ERROR;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_UNAVAILABLE);
    snprintf(want, sizeof want, "%s: shutting down", f.addr);
    check_errmsg(c, want);
    CHECK(st.role == NULL);
    f.step = SN_WRONG_RESULT;
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_PROTO);
    CHECK(st.role == NULL);
    CHECK_EQ_INT(flip_status_node(c, NULL, 0, &st), FLIP_INVALID);
    check_errmsg(c, "(null): not a host:port address");
    /* The copy's allocations are the last ones of the call: 5 texts, the
     * member array, 2 texts per member. */
    f.step = SN_FULL;
    faultnth_start(0);
    CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_OK);
    total = faultnth_count();
    faultnth_stop();
    flip_node_status_clear(&st);
    for (int k = 0; k < 10; k++) {
        faultnth_start(total - k);
        CHECK_EQ_INT(flip_status_node(c, f.addr, 0, &st), FLIP_NOMEM);
        faultnth_stop();
        check_errmsg(c, "out of memory");
        CHECK(st.role == NULL && st.members == NULL && st.n_members == 0);
    }
    flip_client_free(c);
    fake_stop(&f);
    CHECK_EQ_INT(f.n_conns, 1);
}

/* The leader's address in NOT_LEADER, for every call. */
static char redirect_to[32];

static int answer_redirect(struct fake *f, int fd, Flip__Request *req)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Error e = FLIP__ERROR__INIT;

    (void)f;
    e.has_status = 1;
    e.status = FLIP__STATUS__NOT_LEADER;
    e.leader_address = redirect_to;
    r.error = &e;
    reply(fd, req, &r);
    return 1;
}

/* NOT_LEADER with an address sends the call there, learning the address
 * (once) and remembering it as the leader for the next call; a node that
 * names itself is not followed. */
TEST(client_wire_redirect_is_followed_and_learned, 20)
{
    struct fake follower;
    struct fake leader;
    struct flip_client *c;
    struct flip_flag fl;

    fake_start(&leader, answer_node_status, NULL);
    fake_start(&follower, answer_redirect, NULL);
    snprintf(redirect_to, sizeof redirect_to, "%s", leader.addr);
    c = client_for(&follower, 5000);
    CHECK_EQ_INT(flip_get(c, "k", 0, &fl), FLIP_NOTFOUND);
    CHECK_EQ_INT(c->n_eps, 2);
    CHECK(strcmp(c->eps[1].addr, leader.addr) == 0);
    CHECK_EQ_INT(c->leader, 1);
    CHECK_EQ_INT(flip_get(c, "k", 0, &fl), FLIP_NOTFOUND);
    CHECK_EQ_INT(follower.n_requests, 1);
    CHECK_EQ_INT(leader.n_requests, 2);
    CHECK_EQ_INT(c->n_eps, 2);
    /* A node naming itself: nobody else to ask, retried to the deadline. */
    flip_client_free(c);
    snprintf(redirect_to, sizeof redirect_to, "%s", follower.addr);
    c = client_for(&follower, 300);
    CHECK_EQ_INT(flip_get(c, "k", 0, &fl), FLIP_UNAVAILABLE);
    CHECK(strstr(flip_client_errmsg(c), "not leader, and no leader known") !=
          NULL);
    CHECK_EQ_INT(c->n_eps, 1);
    flip_client_free(c);
    fake_stop(&follower);
    fake_stop(&leader);
}
