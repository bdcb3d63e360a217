/* flip_set against a fake leader that loses the first answer: the client
 * resends the write with the same request id until it gets a certain
 * answer (exactly-once writes, docs/protocol.md section 6), and reports
 * "outcome unknown" only when the deadline passes. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fakelisten.h"
#include "../lib/fakewire.h"
#include "../lib/runner.h"
#include "client/client.h"
#include "client/flip.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"

/* ---- the retry loop's pauses ------------------------------------------ */

/* client.c's back_off is the only caller of nanosleep in the client
 * library. This definition stands in for libc's in the unit binary: while
 * `pauses.on` it records each requested pause and returns at once, so a
 * test sees the exact pause sequence without waiting for it (and without
 * timing anything); otherwise it sleeps as libc's does. */
#define PAUSES_MAX 32

static struct
{
    int on;
    int n;
    long ms[PAUSES_MAX];
} pauses;

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    int err;

    if (pauses.on) {
        if (pauses.n < PAUSES_MAX) {
            pauses.ms[pauses.n] =
                (long)req->tv_sec * 1000L + req->tv_nsec / 1000000L;
        }
        pauses.n++;
        return 0;
    }
    err = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* What the fake does with the n-th write it receives. */
enum reaction
{
    ANSWER_OK,
    DROP_CONNECTION,
    LEADERSHIP_LOST,
    UNAVAILABLE,
    REDIRECT, /* NOT_LEADER naming redirect_to[n] */
    SILENCE   /* never answers that attempt */
};

#define WRITES_MAX 16

struct leader
{
    int lfd;
    char addr[32];
    pthread_t th;
    volatile int stop;
    enum reaction plan[WRITES_MAX];
    int n_writes;
    uint8_t client_id[WRITES_MAX][16];
    size_t client_len[WRITES_MAX];
    uint64_t seq[WRITES_MAX];
    /* the first n_redirects writes are answered REDIRECT */
    int n_redirects;
    char (*redirect_to)[32];
};

static void answer(int fd, uint64_t id, Flip__Response *r)
{
    r->has_id = 1;
    r->id = id;
    fakewire_send(fd, r);
}

/* Records the write's request id; returns what to do with it. */
static enum reaction note_write(struct leader *l, const Flip__RequestId *rid)
{
    int n = l->n_writes++;

    if (n < l->n_redirects) {
        return REDIRECT;
    }
    n -= l->n_redirects; /* the plan starts after the redirects */
    if (n >= WRITES_MAX) {
        return SILENCE;
    }
    if (rid != NULL && rid->has_client_id) {
        l->client_len[n] = rid->client_id.len;
        memcpy(l->client_id[n], rid->client_id.data,
               rid->client_id.len < 16 ? rid->client_id.len : 16);
        l->seq[n] = rid->seq;
    }
    return l->plan[n];
}

/* One connection; returns when the client or the plan closes it. */
static void serve(struct leader *l, int fd)
{
    Flip__Request *req;

    while (!l->stop && (req = fakewire_recv(fd)) != NULL) {
        Flip__Response r = FLIP__RESPONSE__INIT;
        Flip__HelloResult h = FLIP__HELLO_RESULT__INIT;
        Flip__SetResult set = FLIP__SET_RESULT__INIT;
        Flip__Error e = FLIP__ERROR__INIT;
        enum reaction what;

        if (req->op_case == FLIP__REQUEST__OP_HELLO) {
            h.has_protocol_version = 1;
            h.protocol_version = 1;
            r.result_case = FLIP__RESPONSE__RESULT_HELLO;
            r.hello = &h;
            answer(fd, req->id, &r);
            codec_request_free(req);
            continue;
        }
        what = req->op_case == FLIP__REQUEST__OP_SET
                   ? note_write(l, req->set->request_id)
                   : SILENCE;
        if (what == ANSWER_OK) {
            set.has_revision = 1;
            set.revision = 7;
            r.result_case = FLIP__RESPONSE__RESULT_SET;
            r.set = &set;
            answer(fd, req->id, &r);
        } else if (what == REDIRECT) {
            e.has_status = 1;
            e.status = FLIP__STATUS__NOT_LEADER;
            e.leader_address = l->redirect_to[l->n_writes - 1];
            r.error = &e;
            answer(fd, req->id, &r);
        } else if (what == LEADERSHIP_LOST || what == UNAVAILABLE) {
            e.has_status = 1;
            e.status = what == UNAVAILABLE ? FLIP__STATUS__UNAVAILABLE
                                           : FLIP__STATUS__LEADERSHIP_LOST;
            r.error = &e;
            answer(fd, req->id, &r);
        }
        codec_request_free(req);
        if (what == DROP_CONNECTION) {
            return;
        }
    }
}

static void *leader_main(void *arg)
{
    struct leader *l = arg;
    int fd;

    while (!l->stop) {
        fd = fakelisten_accept(l->lfd, 20);
        if (fd >= 0) {
            serve(l, fd);
            close(fd);
        }
    }
    return NULL;
}

static void leader_start(struct leader *l, const enum reaction *plan, int n)
{
    memset(l, 0, sizeof *l);
    for (int i = 0; i < WRITES_MAX; i++) {
        l->plan[i] = i < n ? plan[i] : ANSWER_OK;
    }
    l->lfd = fakelisten_open(l->addr, sizeof l->addr);
    CHECK(pthread_create(&l->th, NULL, leader_main, l) == 0);
}

static void leader_stop(struct leader *l)
{
    l->stop = 1;
    pthread_join(l->th, NULL);
    close(l->lfd);
}

/* Every attempt carried one 16-byte client id and one sequence number. */
static void check_same_id(const struct leader *l)
{
    CHECK(l->n_writes >= 2);
    for (int i = 0; i < l->n_writes && i < WRITES_MAX; i++) {
        CHECK_EQ_INT(l->client_len[i], 16);
        CHECK(memcmp(l->client_id[i], l->client_id[0], 16) == 0);
        CHECK(l->seq[i] == l->seq[0] && l->seq[0] >= 1);
    }
}

static int set_once(struct leader *l, unsigned timeout_ms, uint64_t *rev)
{
    struct flip_client *c = NULL;
    struct flip_value v = { 0 };
    int rv;

    CHECK_EQ_INT(flip_client_new(&c, l->addr, "retry-test"), FLIP_OK);
    flip_client_set_timeout(c, timeout_ms);
    v.type = FLIP_TYPE_BOOL;
    v.u.b = 1;
    rv = flip_set(c, "pay.kill", &v, NULL, rev);
    flip_client_free(c);
    return rv;
}

/* The answer is lost with the connection: the same write is resent with
 * the same id and its answer returned. */
TEST(client_write_resent_after_lost_connection, 15)
{
    static const enum reaction plan[] = { DROP_CONNECTION, ANSWER_OK };
    struct leader l;
    uint64_t rev = 0;

    leader_start(&l, plan, 2);
    CHECK_EQ_INT(set_once(&l, 5000, &rev), FLIP_OK);
    CHECK(rev == 7);
    CHECK_EQ_INT(l.n_writes, 2);
    check_same_id(&l);
    leader_stop(&l);
}

/* LEADERSHIP_LOST, and an attempt that is never answered, are resent too
 * (the latter after the per-attempt wait). */
TEST(client_write_resent_after_unknown_outcomes, 20)
{
    static const enum reaction plan[] = { LEADERSHIP_LOST, SILENCE, ANSWER_OK };
    struct leader l;
    uint64_t rev = 0;

    leader_start(&l, plan, 3);
    CHECK_EQ_INT(set_once(&l, 8000, &rev), FLIP_OK);
    CHECK(rev == 7);
    CHECK_EQ_INT(l.n_writes, 3);
    check_same_id(&l);
    leader_stop(&l);
}

static const enum reaction all_lost[WRITES_MAX] = {
    LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST,
    LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST,
    LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST,
    LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST, LEADERSHIP_LOST
};

/* When every attempt is answered LEADERSHIP_LOST until the deadline, the
 * caller is told the outcome is unknown (FLIP_LEADERSHIPLOST, the first
 * unknown outcome seen; client/flip.h), never "not applied". */
TEST(client_write_unknown_at_deadline, 20)
{
    struct leader l;
    uint64_t rev = 0;
    int rv;

    leader_start(&l, all_lost, WRITES_MAX);
    rv = set_once(&l, 1000, &rev);
    CHECK_EQ_INT(rv, FLIP_LEADERSHIPLOST); /* the first outcome seen */
    check_same_id(&l);
    leader_stop(&l);
}

/* Retries back off exponentially (docs/protocol.md section 6): each pause
 * is drawn from [b/2, b] with b = 10, 20, 40, ... ms, capped at 50, so
 * two nodes answering UNAVAILABLE cannot make clients spin; the next
 * call starts again from 10 ms. */
TEST(client_retry_pauses_double_up_to_the_cap, 15)
{
    static const enum reaction plan[] = { UNAVAILABLE, UNAVAILABLE, UNAVAILABLE,
                                          UNAVAILABLE, UNAVAILABLE, UNAVAILABLE,
                                          UNAVAILABLE, UNAVAILABLE, ANSWER_OK,
                                          UNAVAILABLE, ANSWER_OK };
    static const long cap[] = { 10, 20, 40, 50, 50, 50, 50, 50 };
    struct leader l;
    struct flip_client *c = NULL;
    struct flip_value v = { 0 };
    uint64_t rev = 0;

    leader_start(&l, plan, 11);
    CHECK_EQ_INT(flip_client_new(&c, l.addr, "backoff-test"), FLIP_OK);
    flip_client_set_timeout(c, 60000); /* no pause is cut by the deadline */
    v.type = FLIP_TYPE_BOOL;
    v.u.b = 1;
    pauses.on = 1;
    CHECK_EQ_INT(flip_set(c, "pay.kill", &v, NULL, &rev), FLIP_OK);
    CHECK(rev == 7);
    CHECK_EQ_INT(l.n_writes, 9);
    CHECK_EQ_INT(pauses.n, 8);
    for (int k = 0; k < 8; k++) {
        if (pauses.ms[k] < cap[k] / 2 || pauses.ms[k] > cap[k]) {
            fprintf(stderr, "  pause %d: %ld ms, want %ld..%ld\n", k,
                    pauses.ms[k], cap[k] / 2, cap[k]);
        }
        CHECK(pauses.ms[k] >= cap[k] / 2 && pauses.ms[k] <= cap[k]);
    }
    /* A new call does not inherit the last one's pause. */
    pauses.n = 0;
    CHECK_EQ_INT(flip_set(c, "pay.kill", &v, NULL, &rev), FLIP_OK);
    CHECK_EQ_INT(l.n_writes, 11);
    CHECK_EQ_INT(pauses.n, 1);
    CHECK(pauses.ms[0] >= 5 && pauses.ms[0] <= 10);
    pauses.on = 0;
    flip_client_free(c);
    leader_stop(&l);
}

/* Redirects to REDIRECTS addresses where nothing listens, one new address
 * per attempt, then an answer. */
#define REDIRECTS 70
static char redirect_addrs[REDIRECTS][32];

/* Leader addresses learned from redirects take at most the table's free
 * slots: past them the oldest learned address is recycled round the
 * learned slots only, the given endpoints are kept, and the write still
 * gets its answer (the pauses are recorded, not slept). */
TEST(client_learned_addresses_are_bounded, 20)
{
    static const enum reaction plan[] = { ANSWER_OK };
    struct leader l;
    struct flip_client *c = NULL;
    struct flip_value v = { .type = FLIP_TYPE_BOOL };
    char eps[80];
    char given[32];
    int holds[REDIRECTS];
    int given_hold;
    int learned = CLIENT_MAX_EPS - 2;

    for (int k = 0; k < REDIRECTS; k++) {
        holds[k] =
            fakelisten_refusing(redirect_addrs[k], sizeof redirect_addrs[k]);
    }
    given_hold = fakelisten_refusing(given, sizeof given);
    leader_start(&l, plan, 1);
    l.n_redirects = REDIRECTS;
    l.redirect_to = redirect_addrs;
    snprintf(eps, sizeof eps, "%s,%s", given, l.addr);
    CHECK_EQ_INT(flip_client_new(&c, eps, "learn-test"), FLIP_OK);
    flip_client_set_timeout(c, 60000);
    pauses.on = 1;
    CHECK_EQ_INT(flip_set(c, "k", &v, NULL, NULL), FLIP_OK);
    pauses.on = 0;
    CHECK_EQ_INT(l.n_writes, REDIRECTS + 1);
    CHECK_EQ_INT(c->n_eps, CLIENT_MAX_EPS);
    CHECK(strcmp(c->eps[0].addr, given) == 0);
    CHECK(strcmp(c->eps[1].addr, l.addr) == 0);
    /* the 30 most recent, each once */
    for (int k = 0; k < REDIRECTS; k++) {
        CHECK((client_find_endpoint(c, redirect_addrs[k]) != CLIENT_NONE) ==
              (k >= REDIRECTS - learned));
    }
    flip_client_free(c);
    leader_stop(&l);
    close(given_hold);
    for (int k = 0; k < REDIRECTS; k++) {
        close(holds[k]);
    }
}

/* A fork()ed child gets its own request ids: sharing the parent's would
 * have its writes answered with the parent's outcomes. */
TEST(client_request_id_per_process, 10)
{
    struct flip_client *c = NULL;
    Flip__RequestId a;
    Flip__RequestId b;
    uint8_t parent[16];
    uint8_t child[16] = { 0 };
    uint64_t child_seq = 0;
    int fds[2];
    pid_t pid;
    int st = 0;

    CHECK_EQ_INT(flip_client_new(&c, "127.0.0.1:1", "fork-test"), FLIP_OK);
    client_next_request_id(c, &a);
    memcpy(parent, a.client_id.data, sizeof parent);
    client_next_request_id(c, &b);
    CHECK(b.seq == a.seq + 1);
    CHECK(memcmp(b.client_id.data, parent, sizeof parent) == 0);
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        client_next_request_id(c, &b);
        (void)!write(fds[1], b.client_id.data, 16);
        (void)!write(fds[1], &b.seq, sizeof b.seq);
        _exit(0);
    }
    CHECK(read(fds[0], child, sizeof child) == (ssize_t)sizeof child);
    CHECK(read(fds[0], &child_seq, sizeof child_seq) ==
          (ssize_t)sizeof child_seq);
    CHECK(waitpid(pid, &st, 0) == pid);
    close(fds[0]);
    close(fds[1]);
    CHECK(memcmp(child, parent, sizeof parent) != 0);
    CHECK(child_seq == 1);
    flip_client_free(c);
}
