/* flip_watch against fake nodes: threads with a listening socket that
 * speak the subscription frames from a script, so each test can stage a
 * failover, a silent node, a leaderless node, a resync, a slow-consumer
 * cut, a history reset or a cluster that is down.
 *
 * Through client/watch.h; the unit binary links the library's objects. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fakewire.h"
#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "client/lkg.h"
#include "client/text.h"
#include "client/watch.h"
#include "lib/clock.h"
#include "lib/heap.h"
#include "proto/codec.h"

/* ---- time --------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

#define WAIT_FOR(cond, ms)                                            \
    do {                                                              \
        int64_t until_ = clock_mono_ms() + (ms);                      \
        while (!(cond) && clock_mono_ms() < until_) {                 \
            sleep_ms(5);                                              \
        }                                                             \
        if (!(cond)) {                                                \
            fprintf(stderr, "  waited %d ms for: %s\n", (ms), #cond); \
        }                                                             \
        CHECK(cond);                                                  \
    } while (0)

/* ---- what the watch told the application -------------------------------- */

#define REC_MAX 1024

struct rec
{
    pthread_mutex_t mu;
    char lines[REC_MAX][200];
    int n;
};

static struct rec rec = { PTHREAD_MUTEX_INITIALIZER, { { 0 } }, 0 };

static void rec_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rec_add(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&rec.mu);
    if (rec.n < REC_MAX) {
        va_start(ap, fmt);
        vsnprintf(rec.lines[rec.n], sizeof rec.lines[0], fmt, ap);
        va_end(ap);
        if (getenv("FLIP_TEST_VERBOSE") != NULL) {
            fprintf(stderr, "  event: %s\n", rec.lines[rec.n]);
        }
        rec.n++;
    }
    pthread_mutex_unlock(&rec.mu);
}

/* Index of the first line at or after `from` containing needle, or -1. */
static int rec_find(const char *needle, int from)
{
    int found = -1;

    pthread_mutex_lock(&rec.mu);
    for (int i = from < 0 ? 0 : from; i < rec.n && found < 0; i++) {
        if (strstr(rec.lines[i], needle) != NULL) {
            found = i;
        }
    }
    pthread_mutex_unlock(&rec.mu);
    return found;
}

static int rec_count(const char *needle)
{
    int n = 0;

    for (int i = rec_find(needle, 0); i >= 0; i = rec_find(needle, i + 1)) {
        n++;
    }
    return n;
}

static void rec_on_event(void *data, const struct flip_watch_event *ev)
{
    char *text = NULL;

    (void)data;
    switch (ev->type) {
    case FLIP_EV_SNAPSHOT_BEGIN:
        rec_add("begin %llu%s", (unsigned long long)ev->revision,
                ev->resync ? " resync" : "");
        break;
    case FLIP_EV_SNAPSHOT_ITEM:
    case FLIP_EV_CHANGE:
        CHECK_EQ_INT(flip_value_format(&ev->flag->value, 0, &text), FLIP_OK);
        rec_add("%s %s=%s @%llu",
                ev->type == FLIP_EV_CHANGE ? "change" : "item", ev->flag->key,
                text, (unsigned long long)ev->revision);
        flip_text_free(text);
        break;
    case FLIP_EV_SNAPSHOT_END:
        rec_add("end %llu", (unsigned long long)ev->revision);
        break;
    case FLIP_EV_DELETE:
        rec_add("delete %s @%llu%s", ev->flag->key,
                (unsigned long long)ev->revision, ev->resync ? " resync" : "");
        break;
    case FLIP_EV_STATE:
        rec_add("state %s: %s", flip_watch_state_name(ev->state), ev->detail);
        break;
    case FLIP_EV_NOTICE:
        rec_add("notice %s", ev->detail);
        break;
    }
}

/* ---- fake nodes -----------------------------------------------------------
 */

struct scenario;

/* One subscription session, after SubscribeResult was sent. */
typedef void (*session_fn)(struct scenario *s, int fd, int nth);

/* Shared by the fake nodes of a test: sessions are numbered in the order
 * they subscribe, whichever node they reach. */
struct scenario
{
    pthread_mutex_t mu;
    int sessions;
    int has_from[32];
    uint64_t from[32];
    int64_t at[32];    /* when each session subscribed */
    uint64_t node[32]; /* to which fake node */
    /* SubscribeResult.applied_revision to answer */
    _Atomic uint64_t applied;
    atomic_int stop;
    atomic_int step; /* the test's progress, for sessions that wait on it */
    session_fn fn;
};

struct fake
{
    struct scenario *s;
    int lfd;
    uint16_t port;
    char addr[32];
    pthread_t th;
    uint64_t node_id;
    atomic_int has_leader; /* Status answer */
    atomic_int blackhole;  /* accept and never answer */
    atomic_int subscribes; /* Subscribe requests it got */
    char cluster_id[40];   /* Hello/Subscribe answer; "" = none */
    atomic_int not_live;   /* Status: live = false (catching up) */
    /* How to answer the n-th Subscribe: 0 as usual; SUB_REFUSE,
     * SUB_NOT_SUBSCRIBE_RESULT, SUB_BARE (no heartbeat period, node id or
     * revision) */
    int sub_script[4];
};

enum
{
    SUB_REFUSE = 1,
    SUB_NOT_SUBSCRIBE_RESULT,
    SUB_BARE,
};

static Flip__Request *fk_recv(int fd)
{
    return fakewire_recv(fd);
}

/* The frame limit the fake nodes announce, and what fk_send allows. */
#define FK_MAX_FRAME (1u << 24)

static void fk_send(int fd, const Flip__Response *r)
{
    /* fakewire_send allows frames up to FK_MAX_FRAME */
    fakewire_send(fd, r);
}

static void fk_event(int fd,
                     Flip__EventType type,
                     uint64_t rev,
                     Flip__Flag **flags,
                     size_t n,
                     int resync,
                     Flip__Heartbeat *hb)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Event ev = FLIP__EVENT__INIT;

    ev.has_type = 1;
    ev.type = type;
    ev.has_revision = 1;
    ev.revision = rev;
    ev.flags = flags;
    ev.n_flags = n;
    if (resync) {
        ev.has_resync = 1;
        ev.resync = 1;
        ev.reason = (char *)"the change log no longer reaches back";
    }
    ev.heartbeat = hb;
    r.result_case = FLIP__RESPONSE__RESULT_EVENT;
    r.event = &ev;
    fk_send(fd, &r);
}

static void fk_begin(int fd, uint64_t rev, int resync)
{
    fk_event(fd, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, rev, NULL, 0, resync, NULL);
}

static void fk_end(int fd, uint64_t rev)
{
    fk_event(fd, FLIP__EVENT_TYPE__SNAPSHOT_END, rev, NULL, 0, 0, NULL);
}

/* Fills a wire flag (and its value, which text points into) from a value
 * given as text, typed like `flipctl set`; text NULL: a deletion. */
static void fk_fill(Flip__Flag *f,
                    Flip__Value *v,
                    uint64_t rev,
                    const char *key,
                    const char *text)
{
    struct flip_value val;

    flip__flag__init(f);
    flip__value__init(v);
    f->key = (char *)key;
    f->has_revision = 1;
    f->revision = rev;
    f->actor = (char *)"fake";
    if (text == NULL) {
        f->has_deleted = 1;
        f->deleted = 1;
        return;
    }
    CHECK_EQ_INT(flip_value_parse(text, FLIP_TYPE_AUTO, &val), FLIP_OK);
    switch (val.type) {
    case FLIP_TYPE_BOOL:
        v->kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        v->bool_value = val.u.b;
        break;
    case FLIP_TYPE_INT:
        v->kind_case = FLIP__VALUE__KIND_INT_VALUE;
        v->int_value = val.u.i;
        break;
    case FLIP_TYPE_DOUBLE:
        v->kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
        v->double_value = val.u.d;
        break;
    case FLIP_TYPE_JSON:
        v->kind_case = FLIP__VALUE__KIND_JSON_VALUE;
        v->json_value = (char *)val.u.s;
        break;
    default:
        v->kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        v->string_value = (char *)val.u.s;
        break;
    }
    f->value = v;
}

/* One flag with a value given as text, typed like `flipctl set`. */
static void fk_flag(int fd,
                    Flip__EventType type,
                    uint64_t rev,
                    const char *key,
                    const char *text)
{
    Flip__Flag f;
    Flip__Value v;
    Flip__Flag *fl[1] = { &f };

    fk_fill(&f, &v, rev, key, text);
    fk_event(fd, type, rev, fl, 1, 0, NULL);
}

/* One CHANGE of n keys at one revision (group commit); texts[i] NULL
 * deletes keys[i]. */
static void fk_changes(int fd,
                       uint64_t rev,
                       const char *const *keys,
                       const char *const *texts,
                       size_t n)
{
    Flip__Flag f[8];
    Flip__Value v[8];
    Flip__Flag *fl[8];

    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++) {
        fk_fill(&f[i], &v[i], rev, keys[i], texts[i]);
        fl[i] = &f[i];
    }
    fk_event(fd, FLIP__EVENT_TYPE__CHANGE, rev, fl, n, 0, NULL);
}

static void fk_item(int fd, uint64_t rev, const char *key, const char *text)
{
    fk_flag(fd, FLIP__EVENT_TYPE__SNAPSHOT_ITEM, rev, key, text);
}

/* A CHANGE of one key; text NULL deletes it. */
static void fk_change(int fd, uint64_t rev, const char *key, const char *text)
{
    fk_flag(fd, FLIP__EVENT_TYPE__CHANGE, rev, key, text);
}

/* A heartbeat with the stale flag and the leader given apart. */
static void fk_heartbeat_as(int fd,
                            uint64_t applied,
                            int stale,
                            uint64_t leader)
{
    Flip__Heartbeat hb = FLIP__HEARTBEAT__INIT;

    hb.has_applied_revision = 1;
    hb.applied_revision = applied;
    hb.has_stale = 1;
    hb.stale = stale;
    hb.has_leader_id = 1;
    hb.leader_id = leader;
    hb.has_leaderless_ms = 1;
    hb.leaderless_ms = stale ? 900 : 0;
    fk_event(fd, FLIP__EVENT_TYPE__HEARTBEAT, 0, NULL, 0, 0, &hb);
}

static void fk_heartbeat(int fd, uint64_t applied, int stale)
{
    fk_heartbeat_as(fd, applied, stale, stale ? 0 : 1);
}

/* 1 once the watch closed the connection (or the test ends). */
static int fk_gone(struct scenario *s, int fd, int wait_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char junk[256];

    if (s->stop) {
        return 1;
    }
    return poll(&p, 1, wait_ms) > 0 && recv(fd, junk, sizeof junk, 0) <= 0;
}

/* Waits until the test reaches step n (0: it ended or the watch left). */
static int fk_wait_step(struct scenario *s, int fd, int n)
{
    while (s->step < n) {
        if (fk_gone(s, fd, 5)) {
            return 0;
        }
    }
    return 1;
}

/* A frame that is not an event: a SetResult. */
static void fk_not_event(int fd)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__SetResult sr = FLIP__SET_RESULT__INIT;

    r.result_case = FLIP__RESPONSE__RESULT_SET;
    r.set = &sr;
    fk_send(fd, &r);
}

static void fk_error(int fd, Flip__Status st, uint64_t resume)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Error e = FLIP__ERROR__INIT;

    e.has_status = 1;
    e.status = st;
    e.message = (char *)"fake error";
    if (resume != 0) {
        e.has_resume_revision = 1;
        e.resume_revision = resume;
    }
    r.error = &e;
    fk_send(fd, &r);
}

/* Keeps the session open for up to ms, sending a heartbeat every 100 ms
 * when applied != 0; returns early when the watch closes the connection
 * or the test ends. */
static void fk_hold(struct scenario *s, int fd, int ms, uint64_t applied)
{
    int64_t until = clock_mono_ms() + ms;
    struct pollfd p;
    char junk[256];

    while (clock_mono_ms() < until && !s->stop) {
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 100) > 0 && recv(fd, junk, sizeof junk, 0) <= 0) {
            return;
        }
        if (applied != 0) {
            fk_heartbeat(fd, applied, 0);
        }
    }
}

static void fk_reply(int fd, uint64_t id, Flip__Response *r)
{
    r->has_id = 1;
    r->id = id;
    fk_send(fd, r);
}

/* Serves one connection: Hello, any Status, then a Subscribe, which
 * starts the scenario's next session. */
static void fk_serve(struct fake *f, int fd)
{
    struct scenario *s = f->s;
    Flip__Request *req;
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__HelloResult h = FLIP__HELLO_RESULT__INIT;
    Flip__StatusResult st = FLIP__STATUS_RESULT__INIT;
    Flip__SubscribeResult sr = FLIP__SUBSCRIBE_RESULT__INIT;
    int nth;

    while ((req = fk_recv(fd)) != NULL) {
        flip__response__init(&r);
        if (f->blackhole) {
            codec_request_free(req);
            fk_hold(s, fd, 10000, 0);
            return;
        }
        switch (req->op_case) {
        case FLIP__REQUEST__OP_HELLO:
            h.has_protocol_version = 1;
            h.protocol_version = 1;
            h.has_node_id = 1;
            h.node_id = f->node_id;
            h.has_max_frame = 1;
            h.max_frame = FK_MAX_FRAME;
            h.cluster_id = f->cluster_id[0] ? f->cluster_id : NULL;
            r.result_case = FLIP__RESPONSE__RESULT_HELLO;
            r.hello = &h;
            fk_reply(fd, req->id, &r);
            break;
        case FLIP__REQUEST__OP_STATUS:
            st.has_leader_id = 1;
            st.leader_id = f->has_leader ? f->node_id : 0;
            st.role = (char *)(f->has_leader ? "leader" : "follower");
            st.has_last_contact_ms = 1;
            st.last_contact_ms = f->has_leader ? 0 : 5000;
            st.has_live = f->not_live != 0;
            st.live = 0;
            r.result_case = FLIP__RESPONSE__RESULT_STATUS;
            r.status = &st;
            fk_reply(fd, req->id, &r);
            break;
        case FLIP__REQUEST__OP_SUBSCRIBE:
            if (f->subscribes < 4 && f->sub_script[f->subscribes] != 0 &&
                f->sub_script[f->subscribes] != SUB_BARE) {
                if (f->sub_script[f->subscribes++] == SUB_REFUSE) {
                    fk_error(fd, FLIP__STATUS__UNAVAILABLE, 0);
                } else {
                    fk_not_event(fd);
                }
                break;
            }
            pthread_mutex_lock(&s->mu);
            nth = s->sessions++;
            f->subscribes++;
            if (nth < 32) {
                s->has_from[nth] = req->subscribe->has_from_revision;
                s->from[nth] = req->subscribe->from_revision;
                s->at[nth] = clock_mono_ms();
                s->node[nth] = f->node_id;
            }
            pthread_mutex_unlock(&s->mu);
            if (nth >= 4 || f->sub_script[f->subscribes - 1] != SUB_BARE) {
                sr.has_node_id = 1;
                sr.node_id = f->node_id;
                sr.has_applied_revision = 1;
                sr.applied_revision = s->applied;
                sr.has_heartbeat_ms = 1;
                sr.heartbeat_ms = 100;
            }
            sr.cluster_id = f->cluster_id[0] ? f->cluster_id : NULL;
            r.result_case = FLIP__RESPONSE__RESULT_SUBSCRIBE;
            r.subscribe = &sr;
            fk_reply(fd, req->id, &r);
            codec_request_free(req);
            s->fn(s, fd, nth);
            return;
        default:
            fk_error(fd, FLIP__STATUS__UNKNOWN_TYPE, 0);
            break;
        }
        codec_request_free(req);
    }
}

static void *fk_main(void *arg)
{
    struct fake *f = arg;
    struct timeval tv = { 5, 0 };
    struct pollfd p;
    int fd;

    while (!f->s->stop) {
        p.fd = f->lfd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 20) <= 0) {
            continue;
        }
        fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        fk_serve(f, fd);
        close(fd);
    }
    return NULL;
}

/* Binds 127.0.0.1:port (0: any) and serves it from a thread. */
static void fake_start(struct fake *f,
                       struct scenario *s,
                       uint64_t node_id,
                       uint16_t port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1;

    memset(f, 0, sizeof *f);
    f->s = s;
    f->node_id = node_id;
    f->has_leader = 1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(f->lfd >= 0);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(f->lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(f->lfd, 16) == 0);
    CHECK(getsockname(f->lfd, (struct sockaddr *)&a, &len) == 0);
    f->port = ntohs(a.sin_port);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", (unsigned)f->port);
    CHECK(pthread_create(&f->th, NULL, fk_main, f) == 0);
}

static void fakes_stop(struct scenario *s, struct fake *f, int n)
{
    s->stop = 1;
    for (int i = 0; i < n; i++) {
        pthread_join(f[i].th, NULL);
        close(f[i].lfd);
    }
}

/* A port nothing listens on (bound then released). */
static uint16_t free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void scenario_init(struct scenario *s, session_fn fn, uint64_t applied)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fn = fn;
    s->applied = applied;
}

static int sessions(struct scenario *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->sessions;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static struct flip_watch *start_watch(const char *endpoints,
                                      const char *cache,
                                      unsigned stale_after_ms,
                                      uint64_t from)
{
    struct flip_watch_options o;
    struct flip_watch *w = NULL;

    memset(&o, 0, sizeof o);
    o.endpoints = endpoints;
    o.cache_path = cache;
    o.stale_after_ms = stale_after_ms;
    o.from_revision = from;
    o.on_event = rec_on_event;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    return w;
}

/* ---- a snapshot, changes, and typed reads ---------------------------------
 */

static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void session_typed(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_begin(fd, 10, 0);
    fk_item(fd, 10, "b.bool", "true");
    fk_item(fd, 10, "d.double", "2.5");
    fk_item(fd, 10, "i.big", "1152921504606846976");
    fk_item(fd, 10, "i.int", "42");
    fk_item(fd, 10, "j.json", "{\"a\":1}");
    fk_item(fd, 10, "s.str", "hello");
    fk_item(fd, 10, "x.gone", "1");
    fk_end(fd, 10);
    fk_heartbeat(fd, 10, 0);
    fk_change(fd, 11, "i.int", "43");
    fk_change(fd, 12, "x.gone", NULL);
    fk_hold(s, fd, 10000, 12);
}

/* The snapshot then the changes reach the application in order, the copy
 * follows them, and reads answer LIVE for the right type and the caller's
 * default (DEFAULT) for anything else, never a converted or cut value. */
TEST(watch_snapshot_changes_and_typed_reads, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    struct flip_flag flag;
    enum flip_reason why;
    struct pollfd p;
    char buf[64];

    scenario_init(&s, session_typed, 10);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 12, 3000);
    CHECK(flip_watch_state(w) == FLIP_WATCH_LIVE);
    /* the copy changes first, then the application hears of it */
    WAIT_FOR(rec_find("delete x.gone", 0) >= 0, 1000);
    CHECK(s.has_from[0] == 0);
    /* order of events */
    CHECK(rec_find("begin 10", 0) >= 0);
    CHECK(rec_find("item b.bool=true @10", 0) > rec_find("begin 10", 0));
    CHECK(rec_find("end 10", 0) > rec_find("item x.gone=1", 0));
    CHECK(rec_find("state live", 0) > rec_find("end 10", 0));
    CHECK(rec_find("change i.int=43 @11", 0) > rec_find("end 10", 0));
    CHECK(rec_find("delete x.gone @12", 0) > rec_find("change i.int=43", 0));
    /* typed reads */
    CHECK_EQ_INT(flip_watch_bool(w, "b.bool", 0, &why), 1);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    CHECK_EQ_INT(flip_watch_int(w, "i.int", 0, &why), 43);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    CHECK(same(flip_watch_double(w, "d.double", 0, &why), 2.5));
    CHECK(same(flip_watch_double(w, "i.int", 0, &why), 43.0)); /* widens */
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    CHECK(same(flip_watch_double(w, "i.big", -1, &why), -1)); /* inexact */
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_bool(w, "i.int", 0, &why), 0); /* wrong type */
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_int(w, "b.bool", 7, &why), 7);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_int(w, "d.double", 7, &why), 7);
    CHECK_EQ_INT(flip_watch_int(w, "no.such", 7, &why), 7);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_int(w, NULL, 8, NULL), 8);
    CHECK_EQ_INT(flip_watch_bool(w, "x.gone", 0, &why), 0); /* deleted */
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_string(w, "s.str", "d", buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "hello") == 0 && why == FLIP_REASON_LIVE);
    CHECK_EQ_INT(flip_watch_string(w, "j.json", "d", buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "{\"a\":1}") == 0);
    CHECK_EQ_INT(flip_watch_string(w, "i.int", "dflt", buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "dflt") == 0 && why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_string(w, "s.str", "dflt", buf, 3, &why),
                 FLIP_TOOBIG); /* "hello" does not fit: the default, cut */
    CHECK(strcmp(buf, "df") == 0 && why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_string(w, "s.str", NULL, buf, 0, &why),
                 FLIP_INVALID);
    CHECK_EQ_INT(flip_watch_get(w, "i.int", &flag, &why), FLIP_OK);
    CHECK(flag.value.type == FLIP_TYPE_INT && flag.value.u.i == 43);
    CHECK(flag.revision == 11 && strcmp(flag.actor, "fake") == 0);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    flip_flag_clear(&flag);
    CHECK_EQ_INT(flip_watch_get(w, "x.gone", &flag, &why), FLIP_NOTFOUND);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    /* the descriptor says something changed */
    p.fd = flip_watch_fd(w);
    p.events = POLLIN;
    p.revents = 0;
    CHECK_EQ_INT(poll(&p, 1, 2000), 1); /* the notify follows the store */
    while (read(p.fd, buf, sizeof buf) > 0) {
    }
    CHECK_EQ_INT(poll(&p, 1, 0), 0);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* ---- failover -------------------------------------------------------------
 */

static void session_failover(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
        fk_heartbeat(fd, 5, 0);
        fk_change(fd, 6, "a", "2");
        fk_change(fd, 7, "a", "3");
        fk_hold(s, fd, 1200, 7); /* a good session, then the node dies */
        s->applied = 9;
        return;
    }
    fk_change(fd, 8, "a", "4");
    fk_change(fd, 9, "a", "5");
    fk_hold(s, fd, 10000, 9);
}

/* When the node dies, the watch resumes on the other one from the last
 * revision it applied: every change exactly once, in order. */
TEST(watch_failover_resumes_without_gap_or_duplicate, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_failover, 5);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 9, 5000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 2000);
    CHECK_EQ_INT(sessions(&s), 2);
    CHECK(s.has_from[1] && s.from[1] == 7);
    for (int v = 2; v <= 5; v++) {
        char needle[32];
        snprintf(needle, sizeof needle, "change a=%d @%d", v, v + 4);
        CHECK_EQ_INT(rec_count(needle), 1);
    }
    WAIT_FOR(rec_find("state live", rec_find("state connecting", 0)) >= 0,
             1000);
    CHECK(rec_find("state connecting: failing over", 0) >
          rec_find("change a=3 @7", 0));
    CHECK(rec_find("state live", rec_find("state connecting", 0)) >
          rec_find("change a=5", 0)); /* live once caught up */
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, NULL), 5);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

static void session_duplicate(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "a", "1");
        fk_end(fd, 10);
        fk_change(fd, 11, "a", "2");
        fk_change(fd, 11, "a", "3"); /* a revision already applied */
        fk_change(fd, 12, "a", "9");
        fk_hold(s, fd, 10000, 12);
        return;
    }
    fk_change(fd, 12, "a", "4");
    fk_hold(s, fd, 10000, 12);
}

/* A CHANGE at or below the revision applied is a protocol error: never
 * applied; the watch leaves the node and resumes elsewhere from its own
 * revision. */
TEST(watch_change_at_old_revision_is_refused, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_duplicate, 10);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 12 && sessions(&s) == 2, 5000);
    CHECK(s.from[1] == 11);
    CHECK_EQ_INT(rec_count("change a=3"), 0);
    CHECK_EQ_INT(rec_count("change a=9"), 0);
    CHECK(rec_find("protocol error", 0) >= 0);
    WAIT_FOR(flip_watch_int(w, "a", 0, NULL) == 4, 2000);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

static void session_silent(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 3, 0);
        fk_item(fd, 3, "a", "1");
        fk_end(fd, 3);
        fk_hold(s, fd, 10000, 0); /* open, but not a word more */
        return;
    }
    fk_change(fd, 4, "a", "2");
    fk_hold(s, fd, 10000, 4);
}

/* A node that goes quiet (no event, no heartbeat) for stale_after_ms is
 * left, although its connection is still open. */
TEST(watch_silent_node_is_left, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];
    int64_t t0;

    scenario_init(&s, session_silent, 3);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 300, 0);
    WAIT_FOR(flip_watch_revision(w) == 3, 3000);
    t0 = clock_mono_ms();
    WAIT_FOR(flip_watch_revision(w) == 4, 3000);
    CHECK(clock_mono_ms() - t0 >= 200);
    CHECK(rec_find("no event or heartbeat for 300 ms", 0) >= 0);
    CHECK(s.from[1] == 3);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

static void session_slow(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
        fk_change(fd, 6, "a", "2");
        /* the node had queued up to 9, but what it queued after 6 never
         * reached the client (protocol.md section 5) */
        fk_error(fd, FLIP__STATUS__SLOW_CONSUMER, 9);
        return;
    }
    fk_change(fd, 7, "a", "3");
    fk_hold(s, fd, 10000, 7);
}

/* Cut off as a slow consumer, the watch resumes from its own revision,
 * the last one it received, not from Error.resume_revision (the last one
 * the node queued, which may be ahead: resuming there skips changes). */
TEST(watch_slow_consumer_resumes, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;

    scenario_init(&s, session_slow, 5);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 7, 5000);
    CHECK(s.has_from[1] && s.from[1] == 6);
    CHECK(rec_find("SLOW_CONSUMER", 0) >= 0);
    CHECK_EQ_INT(rec_count("change a=2"), 1);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* ---- resync ---------------------------------------------------------------
 */

static void session_resync(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "a", "1");
        fk_item(fd, 10, "b", "2");
        fk_item(fd, 10, "c", "3");
        fk_end(fd, 10);
        fk_hold(s, fd, 1100, 10);
        s->applied = 20;
        return;
    }
    fk_begin(fd, 20, 1);
    fk_item(fd, 20, "a", "10");
    fk_item(fd, 20, "d", "4");
    fk_end(fd, 20);
    fk_hold(s, fd, 10000, 20);
}

/* A resync snapshot replaces the whole state at once; the keys it lacks
 * are reported deleted and read as the default from then on. */
TEST(watch_resync_replaces_state, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;

    scenario_init(&s, session_resync, 10);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 20, 5000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 2000);
    CHECK(s.from[1] == 10);
    CHECK(rec_find("begin 20 resync", 0) >= 0);
    CHECK(rec_find("delete b @20 resync", 0) > rec_find("begin 20", 0));
    CHECK(rec_find("delete c @20 resync", 0) > rec_find("begin 20", 0));
    CHECK(rec_find("end 20", 0) > rec_find("delete c", 0));
    CHECK_EQ_INT(rec_count("delete a"), 0);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 10);
    CHECK_EQ_INT(flip_watch_int(w, "b", -1, &why), -1);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_int(w, "d", 0, &why), 4);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* ---- leaderless nodes -----------------------------------------------------
 */

static void session_plain(struct scenario *s, int fd, int nth)
{
    if (!s->has_from[nth < 32 ? nth : 31]) {
        fk_begin(fd, s->applied, 0);
        fk_item(fd, s->applied, "a", "1");
        fk_end(fd, s->applied);
    }
    fk_hold(s, fd, 10000, s->applied);
}

/* A node that knows no leader is skipped at connect time while another
 * node is worth trying. */
TEST(watch_leaderless_node_is_skipped, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_plain, 5);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    f[0].has_leader = 0;
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    CHECK_EQ_INT(f[0].subscribes, 0);
    CHECK_EQ_INT(f[1].subscribes, 1);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* The only node knows no leader: it is still used, and the watch says
 * STALE, serving its values as CACHED, until the node has a leader. */
static void session_stale_then_fine(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_begin(fd, 5, 0);
    fk_item(fd, 5, "a", "1");
    fk_end(fd, 5);
    for (int i = 0; i < 5; i++) {
        fk_heartbeat(fd, 5, 1);
        sleep_ms(100);
    }
    fk_hold(s, fd, 10000, 5);
}

TEST(watch_only_node_leaderless_is_stale_then_live, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;

    scenario_init(&s, session_stale_then_fine, 5);
    fake_start(&f, &s, 1, 0);
    f.has_leader = 0;
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_STALE, 3000);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 1);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    CHECK(rec_count("state live") == 0); /* never claimed live meanwhile */
    f.has_leader = 1;
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 1);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

static void session_goes_stale(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
        fk_heartbeat(fd, 5, 0);
        sleep_ms(200);
        for (int i = 0; i < 40 && !s->stop; i++) { /* stale from now on */
            fk_heartbeat(fd, 5, 1);
            if (poll(&(struct pollfd){ fd, POLLIN, 0 }, 1, 100) > 0) {
                return; /* the watch left */
            }
        }
        return;
    }
    fk_change(fd, 6, "a", "2");
    fk_hold(s, fd, 10000, 6);
}

/* When its node reports itself stale, the watch says STALE, asks the other
 * node, and moves there since that one has a leader. */
TEST(watch_stale_node_is_replaced, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_goes_stale, 5);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 6, 5000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 2000);
    WAIT_FOR(rec_find("state live", rec_find("state stale", 0)) >= 0, 1000);
    CHECK(rec_find("state stale", 0) >= 0);
    CHECK(rec_find("notice leaving", 0) > rec_find("state stale", 0));
    CHECK(rec_find("state live", rec_find("state stale", 0)) >= 0);
    CHECK(s.from[1] == 5);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* ---- revisions from another history -------------------------------------- */

static void session_behind(struct scenario *s, int fd, int nth)
{
    if (s->has_from[nth < 32 ? nth : 31]) {
        fk_heartbeat(fd, 50, 0); /* the node waits a little... */
        fk_error(fd, FLIP__STATUS__AHEAD_OF_NODE, 0);
        return;
    }
    fk_begin(fd, 50, 0);
    fk_item(fd, 50, "a", "1");
    fk_end(fd, 50);
    fk_hold(s, fd, 10000, 50);
}

/* A revision that every node is behind, round after round (the cluster
 * was rebuilt), is given up for a fresh snapshot rather than wedging the
 * watch forever; a node merely behind is never taken as caught up. */
TEST(watch_behind_everywhere_takes_fresh_snapshot, 20)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_behind, 50);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 1000);
    WAIT_FOR(flip_watch_revision(w) == 50, 10000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 2000);
    WAIT_FOR(rec_find("state live", 0) >= 0, 1000);
    CHECK(rec_find("notice every node is behind revision 1000", 0) >= 0);
    CHECK(rec_find("state live", 0) > rec_find("notice every node", 0));
    CHECK(sessions(&s) >= 5); /* two full rounds of AHEAD_OF_NODE first */
    CHECK(!s.has_from[sessions(&s) - 1]);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, NULL), 1);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* ---- fail static ----------------------------------------------------------
 */

/* A last-known-good file holding flag "a" (JSON text), written for
 * `prefix` (NULL: every flag). */
static void write_lkg_cid(const char *path,
                          uint64_t rev,
                          const char *flag_json,
                          const char *prefix,
                          const char *cluster_id)
{
    struct wcache c;
    struct wprefixes ps;
    struct flip_flag *f = wcache_flag_new();
    struct flip_flag *old = NULL;
    struct buf img;
    const char *why = NULL;
    char msg[LKG_MSG_MAX];

    wcache_init(&c);
    CHECK_EQ_INT(wprefixes_make(&ps, &prefix, prefix != NULL, &why), FLIP_OK);
    f->key = flip_strdup("a");
    f->actor = flip_strdup("");
    f->reason = flip_strdup("");
    f->value.type = FLIP_TYPE_JSON;
    f->value.u.s = flip_strdup(flag_json);
    f->revision = rev;
    CHECK_EQ_INT(wcache_put(&c, f, &old), FLIP_OK);
    c.revision = rev;
    snprintf(c.cluster_id, sizeof c.cluster_id, "%s", cluster_id);
    buf_init(&img);
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_store(path, buf_head(&img), buf_len(&img), msg, sizeof msg),
        FLIP_OK);
    buf_close(&img);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

static void write_lkg_for(const char *path,
                          uint64_t rev,
                          const char *flag_json,
                          const char *prefix)
{
    write_lkg_cid(path, rev, flag_json, prefix, "");
}

static void write_lkg(const char *path, uint64_t rev, const char *flag_json)
{
    write_lkg_for(path, rev, flag_json, NULL);
}

/* The cluster id recorded in the file at path into out ("" if none). */
static void lkg_cluster(const char *path, char *out, size_t len)
{
    struct wcache c;
    struct wprefixes ps;
    const char *why = NULL;
    char msg[LKG_MSG_MAX];
    int resumable = 0;

    wcache_init(&c);
    out[0] = '\0';
    CHECK_EQ_INT(wprefixes_make(&ps, NULL, 0, &why), FLIP_OK);
    if (lkg_load(path, &ps, &c, &resumable, msg, sizeof msg) == FLIP_OK) {
        snprintf(out, len, "%s", c.cluster_id);
    }
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

static uint64_t lkg_revision(const char *path, char *json, size_t len)
{
    struct wcache c;
    struct wprefixes ps;
    const struct flip_flag *f;
    const char *why = NULL;
    char msg[LKG_MSG_MAX];
    int resumable = 0;
    uint64_t rev = 0;

    wcache_init(&c);
    CHECK_EQ_INT(wprefixes_make(&ps, NULL, 0, &why), FLIP_OK);
    if (lkg_load(path, &ps, &c, &resumable, msg, sizeof msg) == FLIP_OK) {
        rev = c.revision;
        f = wcache_get(&c, "a");
        snprintf(
            json, len, "%s",
            f != NULL && f->value.type == FLIP_TYPE_JSON ? f->value.u.s : "");
    }
    wcache_clear(&c);
    wprefixes_clear(&ps);
    return rev;
}

static void session_after_outage(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_change(fd, 8, "a", "{\"v\":2}");
    fk_hold(s, fd, 10000, 8);
}

/* With the whole cluster down, start returns at once and reads give the
 * last-known-good values (CACHED) or the defaults; when a node comes
 * back the watch resumes from the file's revision, goes LIVE, and the
 * file follows the changes. */
TEST(watch_cluster_down_serves_lkg_then_goes_live, 20)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;
    char dir[256];
    char path[300];
    char eps[80];
    char buf[64];
    uint16_t p1 = free_port();
    uint16_t p2 = free_port();

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg(path, 7, "{\"v\":1}");
    snprintf(eps, sizeof eps, "127.0.0.1:%u,127.0.0.1:%u", (unsigned)p1,
             (unsigned)p2);
    scenario_init(&s, session_after_outage, 8);
    /* "at once" is a time promise: `make bench` measures it (fail-static
     * start). Here: the file's values, before any node answered. */
    w = start_watch(eps, path, 0, 0);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK(strcmp(buf, "{\"v\":1}") == 0);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    CHECK_EQ_INT(flip_watch_revision(w), 7);
    CHECK_EQ_INT(flip_watch_int(w, "b", 3, &why), 3);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_DISCONNECTED, 3000);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    fake_start(&f, &s, 1, p2); /* a node comes back */
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK(s.has_from[0] && s.from[0] == 7);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK(strcmp(buf, "{\"v\":2}") == 0);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    /* the file follows, debounced, while running */
    WAIT_FOR(lkg_revision(path, buf, sizeof buf) == 8, 2000);
    CHECK(strcmp(buf, "{\"v\":2}") == 0);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* A corrupt last-known-good file is ignored whole, with a notice, and
 * reads fall back to the defaults. */
TEST(watch_corrupt_lkg_is_ignored_with_notice, 10)
{
    struct flip_watch *w;
    enum flip_reason why;
    char dir[256];
    char path[300];
    char eps[40];
    FILE *fp;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg(path, 7, "{\"v\":1}");
    fp = fopen(path, "r+");
    CHECK(fp != NULL);
    fseek(fp, 60, SEEK_SET);
    fputc('#', fp);
    fclose(fp);
    snprintf(eps, sizeof eps, "127.0.0.1:%u", (unsigned)free_port());
    w = start_watch(eps, path, 0, 0);
    CHECK_EQ_INT(flip_watch_revision(w), 0);
    CHECK_EQ_INT(flip_watch_bool(w, "a", 1, &why), 1);
    CHECK_EQ_INT(why, FLIP_REASON_DEFAULT);
    WAIT_FOR(rec_find("checksum mismatch", 0) >= 0, 2000);
    CHECK(rec_find("notice last-known-good file", 0) >= 0);
    flip_watch_stop(w);
    tmpdir_remove(dir);
}

/* ---- catching up ----------------------------------------------------------
 */

static void session_catchup(struct scenario *s, int fd, int nth)
{
    (void)nth;
    sleep_ms(400); /* the catch-up is slow to come */
    fk_change(fd, 12, "a", "{\"v\":3}");
    if (fk_wait_step(s, fd, 1)) {
        fk_hold(s, fd, 10000, 12); /* live: heartbeats from now on */
    }
}

/* Resuming, the watch is not LIVE before it has the changes the node had
 * when it accepted the subscription: a read never says LIVE for a value
 * that was already overwritten. Reaching the node's revision of then
 * (12) is not enough either: only the node's first heartbeat, sent once
 * the catch-up is over, says so. */
TEST(watch_resume_is_live_only_once_caught_up, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;
    char dir[256];
    char path[300];
    char buf[64];

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg(path, 10, "{\"v\":1}");
    scenario_init(&s, session_catchup, 12);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, path, 2000, 0); /* the pause is not silence */
    WAIT_FOR(sessions(&s) == 1, 3000);
    sleep_ms(150);
    CHECK(flip_watch_state(w) != FLIP_WATCH_LIVE);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    WAIT_FOR(flip_watch_revision(w) == 12, 3000);
    sleep_ms(100);
    CHECK(flip_watch_state(w) != FLIP_WATCH_LIVE);
    s.step = 1;
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK(strcmp(buf, "{\"v\":3}") == 0);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* ---- lifecycle ------------------------------------------------------------
 */

/* Stop does not wait out a node that never answers. */
TEST(watch_stop_is_prompt, 10)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    int64_t t0;

    scenario_init(&s, session_plain, 5);
    fake_start(&f, &s, 1, 0);
    f.blackhole = 1;
    t0 = clock_mono_ms();
    w = start_watch(f.addr, NULL, 0, 0);
    sleep_ms(150); /* inside the Hello wait */
    flip_watch_stop(w);
    /* Order: the stop returned before the Hello wait it interrupted could
     * have ended by itself (its deadline is WATCH_CONNECT_MS after the
     * connect, which came after t0); a stop that waited it out would
     * return after that deadline. */
    CHECK(clock_mono_ms() < t0 + WATCH_CONNECT_MS);
    fakes_stop(&s, &f, 1);
}

/* Bad options are refused up front, before any thread exists. */
TEST(watch_start_rejects_bad_options, 10)
{
    static const char *const bad_prefix[] = { "ok.", "not ok" };
    const char *lots[WCACHE_MAX_PREFIXES + 1];
    struct flip_watch_options o;
    struct flip_watch *w = (struct flip_watch *)&o;

    CHECK_EQ_INT(flip_watch_start(&w, NULL), FLIP_INVALID);
    CHECK(w == NULL);
    memset(&o, 0, sizeof o);
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.endpoints = "";
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.endpoints = "no-port";
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.endpoints = "127.0.0.1:1";
    o.prefixes = bad_prefix;
    o.n_prefixes = 2;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    for (size_t i = 0; i <= WCACHE_MAX_PREFIXES; i++) {
        lots[i] = "p";
    }
    o.prefixes = lots;
    o.n_prefixes = WCACHE_MAX_PREFIXES + 1;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.n_prefixes = WCACHE_MAX_PREFIXES;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    CHECK(flip_watch_state(w) == FLIP_WATCH_CONNECTING ||
          flip_watch_state(w) == FLIP_WATCH_DISCONNECTED); /* refused */
    flip_watch_stop(w);
    flip_watch_stop(NULL);
}

/* ---- last-known-good files of other watches --------------------------------
 */

static void session_fresh(struct scenario *s, int fd, int nth)
{
    if (s->has_from[nth < 32 ? nth : 31]) {
        fk_error(fd, FLIP__STATUS__INTERNAL, 0); /* not expected */
        return;
    }
    fk_begin(fd, 30, 0);
    fk_item(fd, 30, "z", "1");
    fk_end(fd, 30);
    fk_hold(s, fd, 10000, 30);
}

/* A file written for narrower prefixes is served (CACHED), but its
 * revision is no resume point: the watch takes a full snapshot, which
 * replaces the values and is then written back. */
TEST(watch_lkg_for_other_prefixes_is_values_only, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;
    char dir[256];
    char path[300];
    char buf[64];

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg_for(path, 7, "{\"v\":1}", "a");
    scenario_init(&s, session_fresh, 30);
    fake_start(&f, &s, 1, free_port());
    f.blackhole = 1; /* not yet: look at the loaded state first */
    w = start_watch(f.addr, path, 0, 0);
    CHECK_EQ_INT(flip_watch_revision(w), 0);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK(strcmp(buf, "{\"v\":1}") == 0 && why == FLIP_REASON_CACHED);
    WAIT_FOR(rec_find("notice last-known-good file", 0) >= 0, 2000);
    CHECK(rec_find("other prefixes", 0) >= 0);
    f.blackhole = 0;
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK(!s.has_from[sessions(&s) - 1]);
    CHECK_EQ_INT(flip_watch_revision(w), 30);
    CHECK(rec_find("delete a @30", 0) >= 0);
    CHECK_EQ_INT(flip_watch_string(w, "a", "dflt", buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "dflt") == 0 && why == FLIP_REASON_DEFAULT);
    flip_watch_stop(w);
    CHECK_EQ_INT(lkg_revision(path, buf, sizeof buf), 30);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* cache_readonly: the file is loaded and resumed from, never written. */
TEST(watch_lkg_readonly_is_never_written, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch_options o;
    struct flip_watch *w = NULL;
    char dir[256];
    char path[300];
    char buf[64];

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg(path, 7, "{\"v\":1}");
    scenario_init(&s, session_after_outage, 8);
    fake_start(&f, &s, 1, 0);
    memset(&o, 0, sizeof o);
    o.endpoints = f.addr;
    o.cache_path = path;
    o.cache_readonly = 1;
    o.on_event = rec_on_event;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    WAIT_FOR(flip_watch_revision(w) == 8, 5000);
    CHECK(s.from[0] == 7);
    sleep_ms(300);
    flip_watch_stop(w);
    CHECK_EQ_INT(lkg_revision(path, buf, sizeof buf), 7);
    CHECK(strcmp(buf, "{\"v\":1}") == 0);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* ---- heartbeats: progress, LIVE, and the resume point ---------------------
 */

static void session_quiet(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "q.a", "1");
        fk_end(fd, 10);
        /* live; then only writes to other prefixes happen */
        for (uint64_t rev = 10; rev <= 90 && !fk_gone(s, fd, 30); rev += 10) {
            fk_heartbeat(fd, rev, 0);
        }
        fk_wait_step(s, fd, 1);
        s->applied = 95;
        return; /* the node dies */
    }
    fk_heartbeat(fd, 95, 0); /* nothing to catch up: live at once */
    fk_hold(s, fd, 10000, 95);
}

/* On a quiet prefix the heartbeats move the copy's revision (the resume
 * point, and the last-known-good file's revision) up to the node's, so a
 * failover resumes from the last heartbeat, not from the snapshot's
 * revision, without a snapshot. */
TEST(watch_heartbeats_advance_resume_point, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char dir[256];
    char path[300];
    char eps[80];
    char buf[64];

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    scenario_init(&s, session_quiet, 10);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, path, 2000, 0);
    WAIT_FOR(flip_watch_revision(w) == 90, 5000);
    CHECK(flip_watch_state(w) == FLIP_WATCH_LIVE);
    CHECK_EQ_INT(lkg_revision(path, buf, sizeof buf), 10); /* debounced */
    s.step = 1;
    WAIT_FOR(sessions(&s) == 2, 3000);
    CHECK(s.has_from[1] && s.from[1] == 90);
    /* the file was brought up to date when the session ended */
    WAIT_FOR(lkg_revision(path, buf, sizeof buf) == 90, 2000);
    WAIT_FOR(flip_watch_revision(w) == 95, 3000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 2000);
    CHECK_EQ_INT(rec_count("begin"), 1);
    CHECK_EQ_INT(rec_count("change"), 0);
    CHECK_EQ_INT(flip_watch_int(w, "q.a", 0, NULL), 1);
    flip_watch_stop(w);
    CHECK_EQ_INT(lkg_revision(path, buf, sizeof buf), 95);
    fakes_stop(&s, f, 2);
    tmpdir_remove(dir);
}

static void session_first_heartbeat(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_begin(fd, 10, 0);
    fk_item(fd, 10, "a", "1");
    fk_end(fd, 10);
    fk_change(fd, 11, "a", "2"); /* the catch-up after the snapshot */
    if (!fk_wait_step(s, fd, 1)) {
        return;
    }
    fk_heartbeat(fd, 11, 0); /* caught up: live */
    if (!fk_wait_step(s, fd, 2)) {
        return;
    }
    fk_heartbeat(fd, 20, 0); /* writes elsewhere */
    if (!fk_wait_step(s, fd, 3)) {
        return;
    }
    fk_heartbeat(fd, 15, 0); /* nonsense from a node: ignored */
    fk_change(fd, 21, "a", "3");
    fk_hold(s, fd, 10000, 21);
}

/* A snapshot is LIVE only at the node's first heartbeat (after the
 * changes made while it was sent); heartbeats move the revision up (and
 * wake flip_watch_fd), never down. */
TEST(watch_live_at_first_heartbeat_revision_never_backwards, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;
    struct pollfd p;
    char buf[64];

    scenario_init(&s, session_first_heartbeat, 10);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 5000, 0);
    WAIT_FOR(flip_watch_revision(w) == 11, 3000);
    sleep_ms(100);
    CHECK(flip_watch_state(w) == FLIP_WATCH_CONNECTING);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 2);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    s.step = 1;
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    WAIT_FOR(rec_find("state live", 0) >= 0, 1000); /* reported just after */
    CHECK_EQ_INT(flip_watch_revision(w), 11);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 2);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    CHECK(rec_find("state live", 0) > rec_find("change a=2 @11", 0));
    CHECK(rec_find("caught up to revision 11", 0) >= 0);
    p.fd = flip_watch_fd(w);
    p.events = POLLIN;
    p.revents = 0;
    while (read(p.fd, buf, sizeof buf) > 0) {
    }
    s.step = 2;
    WAIT_FOR(flip_watch_revision(w) == 20, 3000);
    CHECK_EQ_INT(poll(&p, 1, 2000),
                 1); /* the revision moved; the wake follows it */
    s.step = 3;
    WAIT_FOR(flip_watch_int(w, "a", 0, NULL) == 3, 3000);
    CHECK_EQ_INT(flip_watch_revision(w), 21);
    CHECK_EQ_INT(rec_count("protocol error"), 0);
    CHECK_EQ_INT(sessions(&s), 1);
    CHECK_EQ_INT(rec_count("state "), 1); /* live once, and stayed */
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* The second session answers the resume from 10 with a snapshot at 5 (a
 * node that lost data, or a bug): older than the copy, so refused as a
 * protocol error; the copy keeps revision 10 and its values. Later
 * sessions are a good node at 10. */
static void session_old_snapshot(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "a", "1");
        fk_end(fd, 10);
        fk_heartbeat(fd, 10, 0);
        fk_hold(s, fd, 300, 10);
        return;
    }
    if (nth == 1) {
        fk_begin(fd, 5, 1);
        fk_item(fd, 5, "a", "0");
        fk_end(fd, 5);
        fk_heartbeat(fd, 5, 0);
        fk_hold(s, fd, 2000, 5);
        return;
    }
    fk_hold(s, fd, 10000, 10);
}

TEST(watch_older_snapshot_is_refused, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;

    scenario_init(&s, session_old_snapshot, 10);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(rec_find("snapshot older than the revision", 0) >= 0, 10000);
    CHECK_EQ_INT(flip_watch_revision(w), 10);
    CHECK_EQ_INT(flip_watch_int(w, "a", 7, NULL), 1);
    CHECK(s.has_from[1] && s.from[1] == 10);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* ---- switching nodes: never on a heartbeat that names a leader, and
 * never in a tight loop ------------------------------------------------- */

/* Every heartbeat says stale, but names a leader (what a node sent when
 * its stale flag came from an older tick). */
static void session_stale_with_leader(struct scenario *s, int fd, int nth)
{
    if (!s->has_from[nth < 32 ? nth : 31]) {
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
    }
    while (!fk_gone(s, fd, 10)) {
        fk_heartbeat_as(fd, 5, 1, 2);
    }
}

TEST(watch_stale_heartbeat_naming_a_leader_is_not_left, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_stale_with_leader, 5);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    sleep_ms(700);
    CHECK(flip_watch_state(w) == FLIP_WATCH_LIVE);
    CHECK_EQ_INT(sessions(&s), 1);
    CHECK_EQ_INT(rec_count("leaving"), 0);
    CHECK_EQ_INT(rec_count("state stale"), 0);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* Every node's heartbeats say stale (and name no leader), while every
 * node's Status claims a leader: a contradiction the watch cannot settle.
 * It may move, but spaced out: 50 ms, then doubling. */
static void session_stale_everywhere(struct scenario *s, int fd, int nth)
{
    if (!s->has_from[nth < 32 ? nth : 31]) {
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
    }
    while (!fk_gone(s, fd, 5)) {
        fk_heartbeat(fd, 5, 1);
    }
}

TEST(watch_switches_between_nodes_are_spaced, 30)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];
    int n;

    scenario_init(&s, session_stale_everywhere, 5);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 0, 0);
    /* at once, then +50, +100, +200, +400 ms: each switch waits at least
     * twice the one before (hundreds a second without the spacing). Lower
     * bounds only: a slow machine stretches them, never shortens them. */
    WAIT_FOR(sessions(&s) >= 5, 15000);
    n = sessions(&s);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
    if (getenv("FLIP_TEST_VERBOSE") != NULL) {
        for (int i = 1; i < n && i < 32; i++) {
            fprintf(stderr, "  session %d after %lld ms\n", i,
                    (long long)(s.at[i] - s.at[i - 1]));
        }
    }
    CHECK(s.at[2] - s.at[1] >= 40);
    CHECK(s.at[3] - s.at[2] >= 85);
    CHECK(s.at[4] - s.at[3] >= 170);
    CHECK(rec_find("leaving", 0) >= 0);
}

/* ---- group commit: several flags at one revision ---------------------------
 */

static struct flip_watch *_Atomic g_watch;

/* Records, at the first event of the grouped change, what a reader sees
 * of the other keys of the same change. */
static void group_on_event(void *data, const struct flip_watch_event *ev)
{
    struct flip_watch *w = g_watch;

    rec_on_event(data, ev);
    if (w != NULL && ev->type == FLIP_EV_CHANGE &&
        strcmp(ev->flag->key, "m.a") == 0 && ev->revision == 11) {
        rec_add("seen m.b=%lld m.d=%lld rev=%llu",
                (long long)flip_watch_int(w, "m.b", -1, NULL),
                (long long)flip_watch_int(w, "m.d", -1, NULL),
                (unsigned long long)flip_watch_revision(w));
    }
}

static void session_group(struct scenario *s, int fd, int nth)
{
    static const char *const keys[] = { "m.a", "m.b", "m.d" };
    static const char *const texts[] = { "10", NULL, "4" };

    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "m.a", "1");
        fk_item(fd, 10, "m.b", "2");
        fk_item(fd, 10, "m.c", "3");
        fk_end(fd, 10);
        fk_heartbeat(fd, 10, 0);
        if (!fk_wait_step(s, fd, 1)) {
            return;
        }
        fk_changes(fd, 11, keys, texts, 3);
        fk_change(fd, 11, "m.c", "99"); /* a second CHANGE at 11: refused */
        fk_hold(s, fd, 10000, 11);
        return;
    }
    fk_change(fd, 12, "m.c", "5");
    fk_hold(s, fd, 10000, 12);
}

/* One CHANGE with several flags (group commit) is applied as one step and
 * reported as one event per flag, in order, all at its revision; a reader
 * sees all of it from the first event on. Another CHANGE at the same
 * revision is a protocol error: the node is left, and the watch resumes
 * elsewhere from that revision. */
TEST(watch_group_change_is_atomic_and_shares_revision, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch_options o;
    struct flip_watch *w = NULL;
    char eps[80];
    int a;

    scenario_init(&s, session_group, 10);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    memset(&o, 0, sizeof o);
    o.endpoints = eps;
    o.on_event = group_on_event;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    g_watch = w;
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 3000);
    s.step = 1;
    WAIT_FOR(flip_watch_int(w, "m.c", 0, NULL) == 5, 5000);
    a = rec_find("change m.a=10 @11", 0);
    CHECK(a >= 0);
    CHECK_EQ_INT(rec_find("seen m.b=-1 m.d=4 rev=11", 0), a + 1);
    CHECK_EQ_INT(rec_find("delete m.b @11", 0), a + 2);
    CHECK_EQ_INT(rec_find("change m.d=4 @11", 0), a + 3);
    CHECK_EQ_INT(rec_count("m.c=99"), 0);
    CHECK(rec_find("protocol error", 0) > a);
    CHECK(s.has_from[1] && s.from[1] == 11);
    CHECK_EQ_INT(rec_count("change m.c=5 @12"), 1);
    CHECK_EQ_INT(flip_watch_int(w, "m.a", 0, NULL), 10);
    CHECK_EQ_INT(flip_watch_int(w, "m.b", -1, NULL), -1);
    CHECK_EQ_INT(flip_watch_int(w, "m.d", 0, NULL), 4);
    g_watch = NULL;
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* ---- resuming on a node behind the heartbeat's revision -------------------
 */

static void session_behind_heartbeat(struct scenario *s, int fd, int nth)
{
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_item(fd, 10, "a", "1");
        fk_end(fd, 10);
        fk_heartbeat(fd, 10, 0);
        fk_heartbeat(fd, 15, 0); /* entries that changed nothing here */
        fk_wait_step(s, fd, 1);
        s->applied = 12; /* what the next node has applied */
        return;
    }
    if (s->from[nth < 32 ? nth : 31] > s->applied) {
        fk_hold(s, fd, 10000, 0); /* a real node would wait, silent */
        return;
    }
    fk_heartbeat(fd, 16, 0);
    fk_hold(s, fd, 10000, 16);
}

/* The copy is the state at every revision from its last change (10) to
 * its last heartbeat (15). A node that has applied only 12 would make a
 * subscription from 15 wait (then AHEAD_OF_NODE): the watch subscribes
 * again at once from 12, and is LIVE without a snapshot. */
TEST(watch_resumes_from_node_revision_between_change_and_heartbeat, 30)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    char eps[80];

    scenario_init(&s, session_behind_heartbeat, 10);
    fake_start(&f[0], &s, 1, 0);
    fake_start(&f[1], &s, 2, 0);
    snprintf(eps, sizeof eps, "%s,%s", f[0].addr, f[1].addr);
    w = start_watch(eps, NULL, 5000, 0);
    WAIT_FOR(flip_watch_revision(w) == 15, 3000);
    s.step = 1;
    WAIT_FOR(flip_watch_revision(w) == 16, 15000);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK_EQ_INT(sessions(&s), 3);
    CHECK(s.has_from[1] && s.from[1] == 15);
    CHECK(s.has_from[2] && s.from[2] == 12);
    /* at once, not after waiting out the silent node: no silence bound
     * ran out, no subscribe answer was awaited in vain */
    CHECK_EQ_INT(rec_count("no event or heartbeat"), 0);
    CHECK_EQ_INT(rec_count("no answer within the deadline"), 0);
    CHECK(s.node[2] == s.node[1] && s.node[1] != s.node[0]); /* again */
    CHECK_EQ_INT(rec_count("begin"), 1);
    CHECK_EQ_INT(rec_count("AHEAD_OF_NODE"), 0);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, NULL), 1);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* ---- a hostile server's huge CHANGE ---------------------------------------
 */

/* 200000 flags; 20000 under valgrind, where the point is memory checking
 * and the full size outlasts the watch's silence bound */
#define HUGE_N (runner_under_valgrind() ? 20000 : 200000)

/* One CHANGE at 11 of HUGE_N distinct keys (about 6 MB, within the 16 MiB
 * the fake announced); in session 0 its first and last key are the same
 * (a protocol error), in session 1 they are all distinct. */
static void session_huge(struct scenario *s, int fd, int nth)
{
    Flip__Flag *f = flip_calloc(HUGE_N, sizeof *f);
    Flip__Value *v = flip_calloc(HUGE_N, sizeof *v);
    Flip__Flag **fl = flip_calloc(HUGE_N, sizeof *fl);
    char(*keys)[16] = flip_calloc(HUGE_N, sizeof *keys);
    int bad;

    CHECK(f != NULL && v != NULL && fl != NULL && keys != NULL);
    if (nth > 1 && s->from[nth < 32 ? nth : 31] >= 11) {
        /* a later session (a slow sanitizer build may go stale while
         * applying): the watch has 11 already */
        flip_free(f);
        flip_free(v);
        flip_free(fl);
        flip_free(keys);
        fk_hold(s, fd, 20000, 11);
        return;
    }
    if (nth == 0) {
        fk_begin(fd, 10, 0);
        fk_end(fd, 10);
        fk_heartbeat(fd, 10, 0);
    }
    for (size_t i = 0; i < HUGE_N; i++) {
        snprintf(keys[i], sizeof keys[i], "h.%07zu", i);
        fk_fill(&f[i], &v[i], 11, keys[i], "true");
        fl[i] = &f[i];
    }
    /* The bad CHANGE until the watch has refused one: under valgrind on a
     * loaded machine the first session can be left (silent while this
     * CHANGE is built) before the watch ever reads it. */
    bad = rec_find("names a key twice", 0) < 0;
    if (bad) {
        f[HUGE_N - 1].key = keys[0];
    } else {
        atomic_store(&s->step, 100 + nth); /* who sent the good one */
    }
    fk_event(fd, FLIP__EVENT_TYPE__CHANGE, 11, fl, HUGE_N, 0, NULL);
    flip_free(f);
    flip_free(v);
    flip_free(fl);
    flip_free(keys);
    fk_hold(s, fd, 20000, bad ? 10 : 11);
}

/* A CHANGE of 200000 flags is checked for repeated keys in O(n log n):
 * the one that names a key twice (first and last, so every pair would be
 * compared before) is refused as a protocol error and the watch resumes
 * from 10; the next, all distinct, is applied whole. Comparing every
 * pair took minutes here, with the watch reporting LIVE meanwhile (F14 of
 * the robustness review); the test's timeout is what catches that. */
TEST(watch_huge_change_checked_in_n_log_n, 60)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    char last[16];
    int good;

    scenario_init(&s, session_huge, 10);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_revision(w) == 11, 40000);
    CHECK(rec_find("names a key twice", 0) >= 0);
    good = atomic_load(&s.step) - 100;
    CHECK(good >= 1 && good < 32);
    CHECK(s.has_from[good] && s.from[good] == 10);
    CHECK_EQ_INT(flip_watch_bool(w, "h.0000000", 0, NULL), 1);
    snprintf(last, sizeof last, "h.%07d", HUGE_N - 1);
    CHECK_EQ_INT(flip_watch_bool(w, last, 0, NULL), 1);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

/* ---- cluster identity ------------------------------------------------------
 */

#define CID_OLD "0123456789abcdef0123456789abcdef"
#define CID_NEW "fedcba9876543210fedcba9876543210"

/* A rebuilt cluster: a resume from the old history's revision would be
 * answered with that history's numbers, so it answers it with a change
 * the test must never see; a fresh subscription gets a snapshot. */
static void session_rebuilt(struct scenario *s, int fd, int nth)
{
    if (s->has_from[nth < 32 ? nth : 31]) {
        fk_change(fd, 18, "a", "{\"v\":\"mixed\"}");
        fk_hold(s, fd, 10000, 22);
        return;
    }
    fk_begin(fd, 22, 0);
    fk_item(fd, 22, "a", "{\"v\":2}");
    fk_end(fd, 22);
    fk_hold(s, fd, 10000, 22);
}

/* A last-known-good file from another cluster (the cluster was rebuilt
 * and its revisions passed the file's): the watch never resumes from the
 * file's revision, says why in its state detail, keeps the file's value
 * CACHED (never LIVE) until a resync snapshot replaces it, then records
 * the new cluster in the file. */
TEST(watch_other_cluster_drops_resume_point, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    enum flip_reason why;
    char dir[256];
    char path[300];
    char buf[64];
    int told;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg_cid(path, 17, "{\"v\":1}", NULL, CID_OLD);
    scenario_init(&s, session_rebuilt, 22);
    fake_start(&f, &s, 1, 0);
    snprintf(f.cluster_id, sizeof f.cluster_id, "%s", CID_NEW);
    w = start_watch(f.addr, path, 0, 0);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK_EQ_INT(why, FLIP_REASON_CACHED);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK(sessions(&s) >= 1);
    for (int i = 0; i < sessions(&s) && i < 32; i++) {
        CHECK(!s.has_from[i]); /* never resumed by the old revision */
    }
    told = rec_find("belongs to cluster " CID_NEW, 0);
    CHECK(told >= 0);
    CHECK(rec_find("came from cluster " CID_OLD, 0) == told);
    CHECK(rec_find("begin 22 resync", told) > told);
    /* the state is set before its event reaches the callback */
    WAIT_FOR(rec_find("state live", told) >= 0, 5000);
    CHECK(rec_find("state live", told) > rec_find("begin 22 resync", told));
    CHECK_EQ_INT(rec_count("mixed"), 0);
    CHECK_EQ_INT(flip_watch_string(w, "a", "", buf, sizeof buf, &why), FLIP_OK);
    CHECK(strcmp(buf, "{\"v\":2}") == 0);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    CHECK_EQ_INT(flip_watch_revision(w), 22);
    flip_watch_stop(w);
    lkg_cluster(path, buf, sizeof buf);
    CHECK(strcmp(buf, CID_NEW) == 0);
    CHECK_EQ_INT(lkg_revision(path, buf, sizeof buf), 22);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* The same cluster resumes by revision as before, and a file without a
 * cluster id (format 1, or written before the node had one) learns it. */
static void session_same_cluster(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_change(fd, 18, "a", "{\"v\":3}");
    fk_hold(s, fd, 10000, 18);
}

TEST(watch_same_cluster_resumes_and_learns_id, 15)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    char dir[256];
    char path[300];
    char buf[64];

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flags.lkg", dir);
    write_lkg_cid(path, 17, "{\"v\":1}", NULL, "");
    scenario_init(&s, session_same_cluster, 18);
    fake_start(&f, &s, 1, 0);
    snprintf(f.cluster_id, sizeof f.cluster_id, "%s", CID_NEW);
    w = start_watch(f.addr, path, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK(s.has_from[0] && s.from[0] == 17);
    CHECK_EQ_INT(rec_count("belongs to cluster"), 0);
    flip_watch_stop(w);
    lkg_cluster(path, buf, sizeof buf);
    CHECK(strcmp(buf, CID_NEW) == 0);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}

/* A node that knows a leader but is catching up (its heartbeat says so:
 * stuck, restoring, far behind) is not live: the watch says so and moves
 * to a node whose status says it is live. */
static void session_catching_up(struct scenario *s, int fd, int nth)
{
    Flip__Heartbeat hb = FLIP__HEARTBEAT__INIT;

    if (s->node[nth < 32 ? nth : 31] == 2) {
        fk_change(fd, 6, "a", "2");
        fk_hold(s, fd, 10000, 6);
        return;
    }
    fk_begin(fd, 5, 0);
    fk_item(fd, 5, "a", "1");
    fk_end(fd, 5);
    fk_heartbeat(fd, 5, 0); /* live at first */
    fk_wait_step(s, fd, 1);
    hb.has_applied_revision = 1;
    hb.applied_revision = 5;
    hb.has_stale = 1;
    hb.stale = 1;
    hb.has_leader_id = 1;
    hb.leader_id = 2;
    hb.has_catching_up = 1;
    hb.catching_up = 1;
    hb.has_lag = 1;
    hb.lag = 40;
    while (!fk_gone(s, fd, 50)) {
        fk_event(fd, FLIP__EVENT_TYPE__HEARTBEAT, 0, NULL, 0, 0, &hb);
    }
}

TEST(watch_catching_up_node_is_left_for_a_live_one, 15)
{
    struct scenario s;
    struct fake f[2];
    struct flip_watch *w;
    enum flip_reason why;
    char eps[80];
    uint16_t p2 = free_port();
    int stale;

    scenario_init(&s, session_catching_up, 5);
    fake_start(&f[0], &s, 1, 0);
    f[0].not_live = 1;
    snprintf(eps, sizeof eps, "%s,127.0.0.1:%u", f[0].addr, (unsigned)p2);
    w = start_watch(eps, NULL, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 5000);
    CHECK_EQ_INT(s.node[0], 1);
    fake_start(&f[1], &s, 2, p2); /* a live node to move to */
    s.step = 1;
    WAIT_FOR(rec_find("is catching up (40 behind", 0) >= 0, 3000);
    stale = rec_find("state stale", 0);
    CHECK(stale >= 0);
    WAIT_FOR(rec_find("state live", stale) > stale, 5000);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, &why), 2);
    CHECK_EQ_INT(why, FLIP_REASON_LIVE);
    flip_watch_stop(w);
    fakes_stop(&s, f, 2);
}

/* ---- frames a node must not send ------------------------------------------
 */

static void fk_error_status(int fd, int status, const char *message)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Error e = FLIP__ERROR__INIT;

    e.has_status = 1;
    e.status = (Flip__Status)status;
    e.message = (char *)message;
    r.error = &e;
    fk_send(fd, &r);
}

static void session_violations(struct scenario *s, int fd, int nth)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Event ev = FLIP__EVENT__INIT;

    switch (nth) {
    case 0:
        fk_end(fd, 5);
        break;
    case 1:
        fk_change(fd, 6, "a", "1");
        break;
    case 2: /* an event without a type is skipped; then a SetResult */
        r.result_case = FLIP__RESPONSE__RESULT_EVENT;
        r.event = &ev;
        fk_send(fd, &r);
        fk_not_event(fd);
        break;
    case 3: /* a newer server's event type is skipped */
        fk_event(fd, (Flip__EventType)99, 5, NULL, 0, 0, NULL);
        fk_error_status(fd, FLIP__STATUS__INTERNAL, "");
        break;
    case 4:
        fk_error_status(fd, 99, "from the future");
        break;
    default:
        fk_begin(fd, 5, 0);
        fk_item(fd, 5, "a", "1");
        fk_end(fd, 5);
        fk_heartbeat(fd, 5, 0);
        break;
    }
    fk_hold(s, fd, 10000, 0);
}

/* Each frame a node must not send ends the session with a notice that
 * names it (a snapshot end outside a snapshot, a change before any
 * snapshot, a frame that is not an event, an error status, known or not),
 * and nothing of it is applied; events without a type or of a type this
 * library does not know are skipped. The session after them goes live.
 * A cluster id that is not letters and digits is not taken. */
TEST(watch_stream_violations_are_named, 20)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    char want[200];
    int at;

    scenario_init(&s, session_violations, 5);
    fake_start(&f, &s, 1, 0);
    snprintf(f.cluster_id, sizeof f.cluster_id, "not-an-id!");
    w = start_watch(f.addr, NULL, 0, 0);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 10000);
    CHECK_EQ_INT(sessions(&s), 6);
    CHECK_EQ_INT(flip_watch_int(w, "a", 0, NULL), 1);
    CHECK_EQ_INT(rec_count("change a=1"), 0);
    snprintf(want, sizeof want,
             "%s: protocol error at revision 5: snapshot end outside a "
             "snapshot",
             f.addr);
    at = rec_find(want, 0);
    CHECK(at >= 0);
    snprintf(want, sizeof want,
             "%s: protocol error at revision 6: change before any snapshot",
             f.addr);
    CHECK(rec_find(want, at) > at);
    at = rec_find(want, at);
    snprintf(want, sizeof want,
             "%s: unexpected frame (result 11) in the stream", f.addr);
    CHECK(rec_find(want, at) > at);
    at = rec_find(want, at);
    snprintf(want, sizeof want, "%s: INTERNAL: -", f.addr);
    CHECK(rec_find(want, at) > at);
    at = rec_find(want, at);
    snprintf(want, sizeof want, "%s: unknown status: from the future", f.addr);
    CHECK(rec_find(want, at) > at);
    pthread_rwlock_rdlock(&w->lock);
    CHECK_EQ_INT(w->live.cluster_id[0], '\0');
    pthread_rwlock_unlock(&w->lock);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

static void session_prefixed(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_begin(fd, 5, 0);
    fk_item(fd, 5, "a.x", "1");
    fk_end(fd, 5);
    fk_heartbeat(fd, 5, 0);
    fk_hold(s, fd, 10000, 0);
}

/* A refused Subscribe and an answer that is not a SubscribeResult each
 * end the attempt with a notice naming them; a SubscribeResult without
 * heartbeat period, node id or revision is enough to go on with. */
TEST(watch_subscribe_answers, 20)
{
    static const char *const a_only[] = { "a." };
    struct flip_watch_options o;
    struct scenario s;
    struct fake f;
    struct flip_watch *w = NULL;
    char want[200];
    int at;

    scenario_init(&s, session_prefixed, 5);
    fake_start(&f, &s, 1, 0);
    f.sub_script[0] = SUB_REFUSE;
    f.sub_script[1] = SUB_NOT_SUBSCRIBE_RESULT;
    f.sub_script[2] = SUB_BARE;
    memset(&o, 0, sizeof o);
    o.endpoints = f.addr;
    o.prefixes = a_only;
    o.n_prefixes = 1;
    o.on_event = rec_on_event;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    WAIT_FOR(flip_watch_state(w) == FLIP_WATCH_LIVE, 10000);
    CHECK_EQ_INT(sessions(&s), 1);
    CHECK_EQ_INT(f.subscribes, 3);
    CHECK_EQ_INT(flip_watch_int(w, "a.x", 0, NULL), 1);
    snprintf(want, sizeof want,
             "%s: subscribe refused: UNAVAILABLE: fake error", f.addr);
    at = rec_find(want, 0);
    CHECK(at >= 0);
    snprintf(want, sizeof want, "%s: unexpected answer to subscribe", f.addr);
    CHECK(rec_find(want, at) > at);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
}

static void session_unwritable(struct scenario *s, int fd, int nth)
{
    (void)nth;
    fk_begin(fd, 5, 0);
    fk_item(fd, 5, "a", "1");
    fk_end(fd, 5);
    fk_heartbeat(fd, 5, 0);
    if (fk_wait_step(s, fd, 1)) {
        fk_change(fd, 6, "a", "2");
        fk_hold(s, fd, 10000, 6);
    }
}

/* A last-known-good file that cannot be written is reported in a notice
 * naming the file and the error; once it can be written again the next
 * save says so, and the file holds the copy. */
TEST(watch_lkg_unwritable_then_written_again, 20)
{
    struct scenario s;
    struct fake f;
    struct flip_watch *w;
    char dir[256];
    char sub[300];
    char path[320];
    char want[400];
    char json[16];

    tmpdir_make(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/later", dir);
    snprintf(path, sizeof path, "%s/app.lkg", sub);
    scenario_init(&s, session_unwritable, 5);
    fake_start(&f, &s, 1, 0);
    w = start_watch(f.addr, path, 0, 0);
    snprintf(want, sizeof want, "notice creating %s: %s", path,
             strerror(ENOENT));
    WAIT_FOR(rec_find(want, 0) >= 0, 5000);
    CHECK(mkdir(sub, 0755) == 0);
    s.step = 1;
    snprintf(want, sizeof want, "notice last-known-good file %s written again",
             path);
    WAIT_FOR(rec_find(want, 0) >= 0, 5000);
    snprintf(want, sizeof want, "notice creating %s", path);
    CHECK_EQ_INT(rec_count(want), 1);
    WAIT_FOR(lkg_revision(path, json, sizeof json) == 6, 5000);
    flip_watch_stop(w);
    fakes_stop(&s, &f, 1);
    tmpdir_remove(dir);
}
