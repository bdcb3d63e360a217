/* server/pubsub.c over real sockets and a real store (tests/lib/
 * fakeserver.h): the order and content of a subscription's events around
 * a snapshot, a resume, a restore and entries of several changes, with the
 * test choosing when each entry applies relative to the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* Subscribes c's client fd to every key, without running the pump: the
 * snapshot's view is pinned at the store's revision and nothing of it is
 * sent yet (only the answer is queued). */
static void subscribe_pinned(struct fakeserver *f, int fd, struct conn *c)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SubscribeRequest sr = FLIP__SUBSCRIBE_REQUEST__INIT;

    req.has_id = 1;
    req.id = 2;
    req.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
    req.subscribe = &sr;
    fs_send(fd, &req);
    for (int i = 0; i < 1000 && session_of(c)->sub == NULL; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    CHECK(session_of(c)->sub != NULL);
}

static void expect_subscribed(struct fakeserver *f, int fd, uint64_t applied)
{
    Flip__Response *r = fs_recv(f, fd);

    CHECK(r != NULL && r->error == NULL);
    CHECK_EQ_INT(r->result_case, FLIP__RESPONSE__RESULT_SUBSCRIBE);
    CHECK_EQ_INT(r->subscribe->applied_revision, applied);
    codec_response_free(r);
}

/* Entries applied while the snapshot streams are not sent live (the view
 * is older): the snapshot shows revision 5, and catch-up then sends 6 and
 * 7 from the change log, nothing twice, nothing skipped. */
TEST(pubsub_changes_during_snapshot_caught_up, 30)
{
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    subscribe_pinned(&f, fd, c);
    CHECK_EQ_INT(f.s.pubsub.n_readers, 1);
    fs_apply_one(&f, 6, "a.1", NULL); /* delete: written while pinned */
    fs_apply_one(&f, 7, "b.1", "z");
    CHECK(f.s.pubsub.written > 0);
    expect_subscribed(&f, fd, 5);
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

/* Resuming from a revision this node has not applied yet waits: entries
 * below it send nothing, the one that reaches it turns the subscriber LIVE
 * (nothing up to it is sent: the client has it) and the next is sent. */
TEST(pubsub_resume_ahead_waits_for_the_node, 30)
{
    struct fakeserver f;
    int fd;
    int fd9;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    fd = subscriber(&f, "a.", 1, 8, 5);
    fd9 = subscriber(&f, "a.", 1, 9, 5);
    CHECK_EQ_INT(f.s.pubsub.n_waiting, 2);
    fs_apply_one(&f, 6, "a.2", "y");
    CHECK(fs_quiet(&f, fd, 5));
    CHECK(fs_quiet(&f, fd9, 0));
    fs_apply_one(&f, 8, "a.3", "z");
    expect_live(&f, fd, 8);
    CHECK(fs_quiet(&f, fd9, 5));
    CHECK_EQ_INT(f.s.pubsub.n_waiting, 1);
    fs_apply_one(&f, 9, "a.4", "w");
    expect_one(&f, fd, 9, "a.4", "w");
    expect_live(&f, fd9, 9);
    CHECK_EQ_INT(f.s.pubsub.n_waiting, 0);
    fs_apply_one(&f, 10, "a.5", "v");
    expect_one(&f, fd, 10, "a.5", "v");
    expect_one(&f, fd9, 10, "a.5", "v");
    close(fd);
    close(fd9);
    fs_stop(&f);
}

/* After a restore moved the store forward without fan-out, a LIVE
 * subscriber is sent what it missed from the change log, a waiting one
 * the restore reached turns LIVE, and one it did not reach keeps
 * waiting. */
TEST(pubsub_restore_catches_subscribers_up, 30)
{
    struct fakeserver f;
    int live;
    int wait7;
    int wait9;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    live = subscriber(&f, "", 0, 0, 5);
    expect(&f, live, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5);
    expect_item(&f, live, 5, "a.1", "x");
    expect(&f, live, FLIP__EVENT_TYPE__SNAPSHOT_END, 5);
    expect_live(&f, live, 5);
    wait7 = subscriber(&f, "", 1, 7, 5);
    wait9 = subscriber(&f, "", 1, 9, 5);
    f.s.node.fsm.observer.on_applied = NULL; /* as a restore: no fan-out */
    fs_apply_one(&f, 6, "a.2", "y");
    fs_apply_one(&f, 7, "a.1", NULL);
    pubsub_on_restored(&f.s.pubsub, 7);
    expect_one(&f, live, 6, "a.2", "y");
    expect_one(&f, live, 7, "a.1", NULL);
    expect_live(&f, live, 7);
    expect_live(&f, wait7, 7);
    CHECK(fs_quiet(&f, wait9, 5));
    CHECK_EQ_INT(f.s.pubsub.n_waiting, 1);
    close(live);
    close(wait7);
    close(wait9);
    fs_stop(&f);
}

/* An entry of several changes: subscribers of every key get all of them
 * in one CHANGE, a prefix subscriber only its keys; changes that applied
 * nothing (a compare-and-set conflict, a request id applied before) send
 * nothing to anyone. */
TEST(pubsub_entry_of_several_changes, 30)
{
    static const char *const ab_keys[] = { "a.1", "b.1" };
    static const char *const ab_vals[] = { "1", "2" };
    struct cluster_change two[2] = { { .key = "a.1", .value = "1" },
                                     { .key = "b.1", .value = "2" } };
    struct cluster_change mixed[2] = {
        { .key = "a.2", .value = "3", .cas = 1, .expected = 99 },
        { .key = "b.2", .value = "4", .request_seq = 7 }
    };
    struct cluster_change again = { .key = "b.2",
                                    .value = "4",
                                    .request_seq = 7 };
    struct cluster_entry e2 = { .changes = two, .n = 2 };
    struct cluster_entry e3 = { .changes = mixed, .n = 2 };
    struct cluster_entry e4 = { .changes = &again, .n = 1 };
    struct fakeserver f;
    int all1;
    int pre;
    int preb;
    int all2;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 1, "x.0", "0");
    all1 = subscriber(&f, "", 1, 1, 1);
    pre = subscriber(&f, "a.", 1, 1, 1);
    preb = subscriber(&f, "b.", 1, 1, 1);
    all2 = subscriber(&f, "", 1, 1, 1);
    expect_live(&f, all1, 1);
    expect_live(&f, pre, 1);
    expect_live(&f, preb, 1);
    expect_live(&f, all2, 1);
    fs_apply(&f, 2, &e2);
    fs_apply(&f, 3, &e3);
    fs_apply(&f, 4, &e4);
    fs_apply_one(&f, 5, "a.3", "5");
    expect_change(&f, all1, 2, 2, ab_keys, ab_vals);
    expect_one(&f, all1, 3, "b.2", "4");
    expect_one(&f, all1, 5, "a.3", "5");
    expect_change(&f, all2, 2, 2, ab_keys, ab_vals);
    expect_one(&f, all2, 3, "b.2", "4");
    expect_one(&f, all2, 5, "a.3", "5");
    expect_one(&f, pre, 2, "a.1", "1");
    expect_one(&f, pre, 5, "a.3", "5");
    expect_one(&f, preb, 2, "b.1", "2");
    expect_one(&f, preb, 3, "b.2", "4");
    CHECK(fs_quiet(&f, all1, 2));
    CHECK(fs_quiet(&f, pre, 0));
    CHECK(fs_quiet(&f, preb, 0));
    CHECK(fs_quiet(&f, all2, 0));
    close(all1);
    close(pre);
    close(preb);
    close(all2);
    fs_stop(&f);
}

/* Catch-up replays an entry of many matching changes as one CHANGE with
 * every one of them, in the entry's order, and skips the others. */
TEST(pubsub_catch_up_of_a_large_entry, 30)
{
    struct cluster_change ch[16];
    const char *keys[16];
    const char *vals[16];
    char names[16][8];
    struct cluster_entry e = { .changes = ch, .n = 16 };
    struct fakeserver f;
    size_t n = 0;
    int fd;

    memset(ch, 0, sizeof ch);
    for (int i = 0; i < 16; i++) {
        snprintf(names[i], sizeof names[i], "%c.%02d", i % 4 == 3 ? 'h' : 'g',
                 15 - i);
        ch[i].key = names[i];
        ch[i].value = names[i];
        if (names[i][0] == 'g') {
            keys[n] = names[i];
            vals[n] = names[i];
            n++;
        }
    }
    CHECK_EQ_INT(n, 12);
    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 1, "g.x", "0");
    fs_apply(&f, 2, &e);
    fd = subscriber(&f, "g.", 1, 1, 2);
    expect_change(&f, fd, 2, n, keys, vals);
    expect_live(&f, fd, 2);
    close(fd);
    fs_stop(&f);
}

/* A snapshot of 300 flags (about 300 KB) to a client behind small socket
 * buffers, with --sub-buffer 64 KiB: it is streamed in parts as the client
 * reads, every flag exactly once and in key order, then the subscriber is
 * LIVE. */
TEST(pubsub_snapshot_streams_as_the_client_reads, 30)
{
    const char *args[] = { "--sub-buffer", "65536" };
    static char names[300][8];
    struct cluster_change ch[15];
    struct cluster_entry e = { .changes = ch, .n = 15 };
    struct fakeserver f;
    struct conn *c = NULL;
    char *value = malloc(1001);
    int small = 16384;
    uv_os_fd_t sfd;
    int fd;

    CHECK(value != NULL);
    memset(value, 'v', 1000);
    value[1000] = '\0';
    fs_start(&f, args, 2);
    for (int k = 0; k < 300; k++) {
        snprintf(names[k], sizeof names[k], "s.%03d", k);
    }
    for (int entry = 0; entry < 20; entry++) {
        memset(ch, 0, sizeof ch);
        for (int i = 0; i < 15; i++) {
            /* spread the keys over the entries */
            ch[i].key = names[i * 20 + entry];
            ch[i].value = value;
        }
        fs_apply(&f, (uint64_t)entry + 1, &e);
    }
    fd = fs_connect(&f, &c);
    CHECK_EQ_INT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
                 0);
    CHECK_EQ_INT(uv_fileno((uv_handle_t *)&c->tcp, &sfd), 0);
    CHECK_EQ_INT(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
                 0);
    fs_hello(&f, fd, 1);
    subscribe(&f, fd, "s.", 0, 0, 20);
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 20);
    for (int k = 0; k < 300; k++) {
        expect_item(&f, fd, 20, names[k], value);
    }
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_END, 20);
    expect_live(&f, fd, 20);
    CHECK_EQ_INT(f.s.pubsub.n_readers, 0);
    fs_apply_one(&f, 21, "s.000", "new");
    expect_one(&f, fd, 21, "s.000", "new");
    close(fd);
    fs_stop(&f);
    free(value);
}

/* An entry that does not decode (applied as a no-op) sends nothing, also
 * while a snapshot is pinned; the stream goes on with the next entry. A
 * subscriber's further requests are still read, also when they come in
 * pieces. */
TEST(pubsub_undecodable_entry_sends_nothing, 30)
{
    static const uint8_t junk[16] = { 0, 0, 0, 8, 0, 0, 0, 9 };
    struct fakeserver f;
    struct conn *c = NULL;
    uint8_t hello[64];
    struct buf b;
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Hello h = FLIP__HELLO__INIT;
    int fd;
    int pinned;
    int late;

    fs_start(&f, NULL, 0);
    fs_apply_one(&f, 5, "a.1", "x");
    fd = subscriber(&f, "a.", 1, 5, 5);
    expect_live(&f, fd, 5);
    pinned = fs_connect(&f, &c);
    fs_hello(&f, pinned, 1);
    subscribe_pinned(&f, pinned, c);
    CHECK_EQ_INT(f.s.pubsub.n_readers, 1);
    fs_apply_raw(&f, 6, junk, sizeof junk);
    CHECK_EQ_INT(f.s.node.fsm.n_invalid, 1);
    /* resumed from 5: nothing to send, LIVE at 6 */
    late = subscriber(&f, "a.", 1, 5, 6);
    expect_live(&f, late, 6);
    fs_apply_one(&f, 7, "a.2", "y");
    expect_one(&f, fd, 7, "a.2", "y");
    expect_subscribed(&f, pinned, 5);
    expect(&f, pinned, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5);
    expect_item(&f, pinned, 5, "a.1", "x");
    expect(&f, pinned, FLIP__EVENT_TYPE__SNAPSHOT_END, 5);
    expect_live(&f, pinned, 6); /* streamed while `late` subscribed */
    expect_one(&f, pinned, 7, "a.2", "y");
    expect_one(&f, late, 7, "a.2", "y");
    close(late);

    h.has_protocol_version = 1;
    h.protocol_version = CODEC_PROTOCOL_VERSION;
    req.has_id = 1;
    req.id = 8;
    req.op_case = FLIP__REQUEST__OP_HELLO;
    req.hello = &h;
    buf_init(&b);
    CHECK_EQ_INT(codec_request_encode(&req, sizeof hello, &b), FLIP_OK);
    CHECK(buf_len(&b) > 4);
    memcpy(hello, buf_head(&b), buf_len(&b));
    CHECK_EQ_INT(write(fd, hello, 3), 3);
    CHECK(fs_quiet(&f, fd, 5));
    CHECK_EQ_INT(write(fd, hello + 3, buf_len(&b) - 3),
                 (ssize_t)(buf_len(&b) - 3));
    fs_expect_hello(&f, fd, 8);
    buf_close(&b);
    close(fd);
    close(pinned);
    fs_stop(&f);
}

/* A snapshot of more flags than one store scan reads (256) goes on with
 * the next scan where the last one stopped: 300 small flags, each once, in
 * key order. */
TEST(pubsub_snapshot_longer_than_one_scan, 30)
{
    static char names[300][8];
    struct cluster_change ch[15];
    struct cluster_entry e = { .changes = ch, .n = 15 };
    struct fakeserver f;
    int fd;

    fs_start(&f, NULL, 0);
    for (int k = 0; k < 300; k++) {
        snprintf(names[k], sizeof names[k], "t.%03d", k);
    }
    for (int entry = 0; entry < 20; entry++) {
        memset(ch, 0, sizeof ch);
        for (int i = 0; i < 15; i++) {
            ch[i].key = names[entry * 15 + i];
            ch[i].value = names[entry * 15 + i];
        }
        fs_apply(&f, (uint64_t)entry + 1, &e);
    }
    fd = subscriber(&f, "t.", 0, 0, 20);
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 20);
    for (int k = 0; k < 300; k++) {
        expect_item(&f, fd, 20, names[k], names[k]);
    }
    expect(&f, fd, FLIP__EVENT_TYPE__SNAPSHOT_END, 20);
    expect_live(&f, fd, 20);
    close(fd);
    fs_stop(&f);
}

/* At most PUBSUB_MAX_SNAPSHOTS snapshots stream at once: one more
 * subscriber waits, then gets its whole snapshot once views are free;
 * every one of the others gets its own, complete. */
TEST(pubsub_snapshots_past_the_limit_wait, 120)
{
    enum
    {
        N = PUBSUB_MAX_SNAPSHOTS + 1
    };
    const rlim_t need = 2 * N + 64;
    struct rlimit rl;
    struct fakeserver f;
    struct conn **cs = calloc(N, sizeof *cs);
    int *fds = calloc(N, sizeof *fds);

    CHECK(fds != NULL && cs != NULL);
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < need) {
            runner_skip("too few file descriptors");
        }
    }
    fs_start(&f, NULL, 0);
    f.s.clients.max_conns = N + 8;
    fs_apply_one(&f, 5, "a.1", "x");
    for (int i = 0; i < N; i++) {
        fds[i] = fs_connect(&f, &cs[i]);
        fs_hello(&f, fds[i], 1);
    }
    /* no pump runs from here until every one subscribed */
    for (int i = 0; i < N; i++) {
        subscribe_pinned(&f, fds[i], cs[i]);
    }
    CHECK_EQ_INT(f.s.pubsub.n_readers, PUBSUB_MAX_SNAPSHOTS);
    CHECK_EQ_INT(session_of(cs[N - 2])->sub->sub_state, SUB_SNAPSHOT);
    CHECK_EQ_INT(session_of(cs[N - 1])->sub->sub_state, SUB_SNAPSHOT_WAIT);
    for (int k = 0; k < N; k++) {
        int i = N - 1 - k; /* the waiting one first */
        expect_subscribed(&f, fds[i], 5);
        expect(&f, fds[i], FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5);
        expect_item(&f, fds[i], 5, "a.1", "x");
        expect(&f, fds[i], FLIP__EVENT_TYPE__SNAPSHOT_END, 5);
        expect_live(&f, fds[i], 5);
    }
    CHECK_EQ_INT(f.s.pubsub.n_readers, 0);
    for (int i = 0; i < N; i++) {
        close(fds[i]);
    }
    fs_stop(&f);
    free(fds);
    free(cs);
}
