/* server/pubsub.c over real sockets and a real store (tests/lib/
 * fakeserver.h): the order and content of a subscription's events around
 * a snapshot, a resume, a restore and entries of several changes, with the
 * test choosing when each entry applies relative to the stream. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fakeserver.h"
#include "../lib/runner.h"
#include "lib/err.h"
#include "proto/codec.h"

/* Sends Subscribe (id 2) for `prefix` ("" = every key), from `from` when
 * has_from; checks its OK answer reports `applied`. */
static void subscribe(struct fakeserver *f,
                      int fd,
                      const char *prefix,
                      int has_from,
                      uint64_t from,
                      uint64_t applied)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SubscribeRequest sr = FLIP__SUBSCRIBE_REQUEST__INIT;
    char *prefixes[1] = { (char *)(uintptr_t)prefix };
    Flip__Response *r;

    if (prefix[0] != '\0') {
        sr.n_prefixes = 1;
        sr.prefixes = prefixes;
    }
    sr.has_from_revision = has_from;
    sr.from_revision = from;
    req.has_id = 1;
    req.id = 2;
    req.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
    req.subscribe = &sr;
    fs_send(fd, &req);
    r = fs_recv(f, fd);
    CHECK(r != NULL);
    CHECK(r->error == NULL);
    CHECK_EQ_INT(r->id, 2);
    CHECK_EQ_INT(r->result_case, FLIP__RESPONSE__RESULT_SUBSCRIBE);
    CHECK_EQ_INT(r->subscribe->applied_revision, applied);
    codec_response_free(r);
}

/* A connected, Hello'd client subscribed to `prefix`. */
static int subscriber(struct fakeserver *f,
                      const char *prefix,
                      int has_from,
                      uint64_t from,
                      uint64_t applied)
{
    int fd = fs_connect(f, NULL);

    fs_hello(f, fd, 1);
    subscribe(f, fd, prefix, has_from, from, applied);
    return fd;
}

static void expect(struct fakeserver *f,
                   int fd,
                   Flip__EventType type,
                   uint64_t revision)
{
    codec_response_free(fs_expect_event(f, fd, type, revision));
}

/* The next event is a CHANGE at `revision` of exactly `n` flags, keys[i]
 * holding values[i] (NULL: deleted). */
static void expect_change(struct fakeserver *f,
                          int fd,
                          uint64_t revision,
                          size_t n,
                          const char *const *keys,
                          const char *const *values)
{
    Flip__Response *r =
        fs_expect_event(f, fd, FLIP__EVENT_TYPE__CHANGE, revision);
    const Flip__Event *ev = r->event;

    CHECK_EQ_INT(ev->n_flags, n);
    for (size_t i = 0; i < n; i++) {
        const Flip__Flag *fl = ev->flags[i];
        CHECK(strcmp(fl->key, keys[i]) == 0);
        CHECK_EQ_INT(fl->revision, revision);
        if (values[i] == NULL) {
            CHECK(fl->deleted);
            CHECK(fl->value == NULL);
        } else {
            CHECK(!fl->deleted);
            CHECK(fl->value != NULL);
            CHECK(strcmp(fl->value->string_value, values[i]) == 0);
        }
    }
    codec_response_free(r);
}

static void expect_one(struct fakeserver *f,
                       int fd,
                       uint64_t revision,
                       const char *key,
                       const char *value)
{
    expect_change(f, fd, revision, 1, &key, &value);
}

/* The next event is the heartbeat a subscriber gets on turning LIVE,
 * saying the node applied `applied`. */
static void expect_live(struct fakeserver *f, int fd, uint64_t applied)
{
    Flip__Response *r = fs_recv(f, fd);
    const Flip__Event *ev = fs_event(r);

    CHECK_EQ_INT(ev->type, FLIP__EVENT_TYPE__HEARTBEAT);
    CHECK(ev->heartbeat != NULL);
    CHECK_EQ_INT(ev->heartbeat->applied_revision, applied);
    codec_response_free(r);
}

static void expect_item(struct fakeserver *f,
                        int fd,
                        uint64_t revision,
                        const char *key,
                        const char *value)
{
    Flip__Response *r =
        fs_expect_event(f, fd, FLIP__EVENT_TYPE__SNAPSHOT_ITEM, revision);

    CHECK_EQ_INT(r->event->n_flags, 1);
    CHECK(strcmp(r->event->flags[0]->key, key) == 0);
    CHECK(strcmp(r->event->flags[0]->value->string_value, value) == 0);
    codec_response_free(r);
}

/* After the snapshot at S the stream goes on with revision S + 1: the
 * first entry applied once the subscriber is LIVE is sent. */
TEST(pubsub_first_revision_after_snapshot, 30)
{
    struct fakeserver f;
    int fd;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    fd = subscriber(&f, "a.", 0, 0, 5);
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5);
    expect_item(&f, fd, 5, "a.1", "x");
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_END, 5);
    expect_live(&f, fd, 5);
    fs_apply_one(&f, 6, "a.2", "y");
    expect_one(&f, fd, 6, "a.2", "y");
    fs_apply_one(&f, 7, "b.1", "z"); /* not watched: nothing */
    fs_apply_one(&f, 8, "a.1", NULL);
    expect_one(&f, fd, 8, "a.1", NULL);
    CHECK(fs_quiet(&f, fd, 5));
    close(fd);
    fs_stop(&f);
}

/* Entries applied while the snapshot streams are not sent live (the view
 * is older): the snapshot shows revision 5, and catch-up then sends 6 and
 * 7 from the change log, nothing twice, nothing skipped. */
TEST(pubsub_changes_during_snapshot_caught_up, 30)
{
    struct fakeserver f;
    struct conn *c = NULL;
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SubscribeRequest sr = FLIP__SUBSCRIBE_REQUEST__INIT;
    Flip__Response *r;
    int fd;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    req.has_id = 1;
    req.id = 2;
    req.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
    req.subscribe = &sr;
    fs_send(fd, &req);
    /* the request is read and the view pinned at 5; no pump yet */
    for (int i = 0; i < 1000 && c->sub == NULL; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    CHECK(c->sub != NULL);
    CHECK_EQ_INT(f.s.pubsub.n_readers, 1);
    fs_apply_one(&f, 6, "a.1", NULL); /* delete: written while pinned */
    fs_apply_one(&f, 7, "b.1", "z");
    CHECK(f.s.pubsub.written > 0);
    r = fs_recv(&f, fd);
    CHECK(r != NULL && r->error == NULL);
    CHECK_EQ_INT(r->result_case, FLIP__RESPONSE__RESULT_SUBSCRIBE);
    CHECK_EQ_INT(r->subscribe->applied_revision, 5);
    codec_response_free(r);
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5);
    expect_item(&f, fd, 5, "a.1", "x");
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_END, 5);
    expect_one(&f, fd, 6, "a.1", NULL);
    expect_one(&f, fd, 7, "b.1", "z");
    expect_live(&f, fd, 7);
    CHECK_EQ_INT(f.s.pubsub.n_readers, 0);
    fs_apply_one(&f, 8, "c.1", "w");
    expect_one(&f, fd, 8, "c.1", "w");
    close(fd);
    fs_stop(&f);
}
