/* kvbench: one client model, two systems. Writes ("flips") to flipd over
 * its raw protocol, or to etcd over its v3 JSON gateway (keep-alive
 * HTTP/1.1), with the same event loop, the same timing and the same
 * failure rules, so that the two sets of figures compare.
 *
 *   kvbench --system flipd|etcd --endpoints H:P,... --mode seq|load|writer
 *           [options]
 *
 * The result is one JSON object on stdout (every caller reads it so).
 *
 * Modes:
 *
 *   seq     one connection, one flip at a time: --warmup untimed flips,
 *           then --n timed ones, --idle-ms apart (0: back to back). Every
 *           flip alternates one key between true and false.
 *   load    --inflight K flips in flight at all times over --conns C
 *           connections (default C = K, one flip in flight per
 *           connection), spread round-robin over the endpoints; keys
 *           PREFIX0..PREFIX{--keys - 1} in turn. --warmup-seconds, then
 *           --seconds measured: flips/s = acks in the window / window;
 *           latency over the acks in the window. With --count N the run
 *           instead stops once N flips were acked (used to write a known
 *           number of flips; figures are then over the whole run).
 *   writer  one connection, a flip every --interval-ms (the next flip
 *           starts at the first tick after the previous one ended). With
 *           --signal-pid, sends --signal to that process --signal-after-ms
 *           into the run, then runs until --after-ms past the first flip
 *           that was started after the signal and acknowledged. Reports
 *           the recovery time (signal -> that ack), failed flips, and the
 *           longest gap between two consecutive acks.
 *
 * Client model (both systems):
 *   - A flip is one request: flipd SetRequest{key, bool value} with a
 *     request id (a random client id per run and the flip's number, as the
 *     client library sends: the deduplication table is on the measured
 *     path; a redirected flip keeps its id); etcd
 *     POST /v3/kv/put {"key", "value": "true"|"false"} (writer mode: the
 *     flip's number instead, as an int / decimal text, so that a flip
 *     applied twice can be found in the key's history). Latency runs from
 *     when the flip is started (request queued) to when its answer has been
 *     parsed here.
 *   - flipd answers writes on the leader only: a NOT_LEADER answer with the
 *     leader's address sends the flip again to that address (the
 *     connection moves there once its other flips have been answered), as
 *     the client library does; at most 5 redirects per flip. etcd members
 *     forward writes to their leader themselves. Redirects are counted.
 *   - Safe retries, within the flip's deadline (--timeout ms from its
 *     start), as each system's own client library does them: when the
 *     request was not (completely) written because the connection failed
 *     or could not be opened, and when the server answered that it did
 *     nothing (flipd: UNAVAILABLE, NO_SPACE, NOT_LEADER without an
 *     address, per docs/protocol.md section 6; etcd: "no leader", "too
 *     many requests", and the gateway's "grpc: the client connection is
 *     closing", which a stopping member answers to requests it never
 *     passed on: more than etcd's own clientv3 retries), the flip is sent
 *     again on the next endpoint of the list. A whole round of endpoints
 *     without success, or such an answer, costs a 10 ms pause first.
 *   - Anything else fails the flip: another error answer, losing the
 *     connection after the request was written (outcome unknown), or no
 *     answer by the deadline (the connection is then closed, as an
 *     HTTP/1.1 stream cannot skip an answer, and moves to the next
 *     endpoint). In writer mode the next tick's flip is the only retry;
 *     in load mode the slot waits 10 ms.
 *   - etcd over HTTP/1.1 cannot have two requests in progress on one
 *     connection, so etcd needs --conns equal to --inflight. flipd
 *     pipelines with request ids, so it can use fewer connections.
 *
 * Layering: bench/ may include lib/, client/ and bench/. The generated
 * flip.pb-c.h types come through client/wire.h; frames (u32 big-endian
 * length + protobuf, docs/protocol.md section 1) are packed and read by
 * bench/lib/bflip, as in bench/fanout.c.
 *
 * Bounded: every run stops at --max-seconds (reported as truncated);
 * sizes are capped (see usage).
 *
 * Exit status: 0 ok (load/seq: no failed flip; writer: recovered, if a
 * signal was sent), 1 failures or truncated, 2 usage or setup error. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "bench/httpmini.h"
#include "bench/lib/baddr.h"
#include "bench/lib/bflip.h"
#include "bench/lib/bopt.h"
#include "bench/lib/breport.h"
#include "bench/lib/bstat.h"
#include "client/flip.h"
#include "client/text.h"
#include "client/wire.h"
#include "lib/buf.h"

#define EP_MAX        16
#define INFLIGHT_MAX  4096u
#define N_MAX         1000000u
#define COUNT_MAX     10000000u
#define KEYS_MAX      1000000u
#define SECONDS_MAX   3600u
#define TIMEOUT_MAX   600000u
#define INTERVAL_MAX  60000u
#define LAT_CAP_MAX   (64u * 1024u * 1024u)
#define ERR_KINDS     24
#define REDIRECTS_MAX 5u
#define BACKOFF_NS    10000000u /* an idle load slot after a failure */
#define DRAIN_NS      5000000000u
#define READ_CHUNK    65536u
#define REQ_MAX       2048u
#define EVENTS_MAX    256
#define PROG          "kvbench"
#define CLIENT_NAME   PROG
#define EXIT_FAILED   1
#define EXIT_USAGE    2

enum sysk
{
    SYS_FLIPD,
    SYS_ETCD
};

enum modek
{
    MODE_SEQ,
    MODE_LOAD,
    MODE_WRITER
};

struct opts
{
    enum sysk sys;
    enum modek mode;
    const char *sys_name;
    const char *mode_name;
    const char *endpoints;
    const char *prefix;
    unsigned n;
    unsigned idle_ms;
    unsigned warmup;
    unsigned inflight;
    unsigned conns;
    unsigned seconds;
    unsigned warmup_seconds;
    unsigned count;
    unsigned keys;
    unsigned timeout_ms;
    unsigned interval_ms;
    unsigned after_ms;
    unsigned max_seconds;
    unsigned errors;
    unsigned signal_no;
    unsigned signal_after_ms;
    unsigned signal_pid; /* 0: none */
};

struct endpoint
{
    struct bench_addr a;
};

struct slot
{
    uint8_t busy; /* a flip is in progress in this slot */
    uint8_t sent; /* its request is queued on the connection */
    uint8_t redirects;
    uint8_t hops;        /* attempts since the last pause */
    uint64_t id;         /* flipd request id */
    uint64_t t_start;    /* the flip started (client's view) */
    uint64_t out_end;    /* its request is written once c->w_bytes >= this */
    uint64_t retry_at;   /* not sent: (re)send it from then on */
    uint64_t not_before; /* idle (load): next flip from then on */
    uint64_t seq;        /* flip number: key and value */
};

enum cstate
{
    C_CLOSED = 0,
    C_CONNECTING,
    C_OPEN
};

struct conn
{
    int fd;
    int state;
    int want_out; /* EPOLLOUT registered */
    size_t ep;    /* endpoint it talks to (or will) */
    size_t rot;   /* position in the configured list */
    long move_to; /* redirect target, -1 if none */
    uint64_t reconnect_at;
    uint64_t next_id;
    uint64_t hello_id;
    uint64_t q_bytes; /* bytes queued on this socket */
    uint64_t w_bytes; /* bytes written to it */
    struct buf in;
    struct buf out;
    struct slot *slots;
    unsigned depth;
};

struct errkind
{
    char name[64];
    uint64_t count;
};

struct flip_rec
{
    uint64_t t_start;
    uint64_t t_done;
    int ok;
};

struct ctx
{
    const struct opts *o;
    struct endpoint ep[EP_MAX];
    size_t n_ep;  /* known endpoints (configured + redirect targets) */
    size_t n_cfg; /* configured ones */
    struct conn *conns;
    unsigned n_conns;
    int epfd;
    uint64_t t0;
    uint64_t deadline;
    int stopping;
    int truncated;
    uint64_t next_seq;
    uint8_t client_id[16]; /* request ids: this run's client */

    uint64_t *lat;
    size_t n_lat;
    size_t cap_lat;
    uint64_t n_ok;    /* measured acks */
    uint64_t n_fail;  /* measured failures */
    uint64_t n_acked; /* every ack, warmup included */
    uint64_t n_redirects;
    uint64_t n_retries;
    uint64_t n_reconnects;
    uint64_t n_timeouts;
    uint64_t first_rev;
    uint64_t last_rev;
    struct errkind errs[ERR_KINDS];
    size_t n_errs;
    struct bench_problems pr;

    /* load */
    uint64_t w0;
    uint64_t w1;
    uint64_t w_end; /* when the window was closed (count mode: last ack) */

    /* seq */
    unsigned seq_done;
    uint64_t seq_next_at;

    /* writer */
    struct flip_rec *flips;
    size_t n_flips;
    size_t cap_flips;
    uint64_t next_tick;
    uint64_t t_signal;
    int signalled;
    int signal_errno;
    uint64_t t_recovered;
    int recovered;

    char body[65536]; /* etcd: one de-chunked response body */
};

/* ---- small things -------------------------------------------------------- */

static const char usage_text[] =
    "usage: kvbench --system flipd|etcd --endpoints H:P,... --mode MODE "
    "[options]\n"
    "\n"
    "  --mode seq           one flip at a time: --n N (1000), --idle-ms MS\n"
    "                       (0), --warmup N (5)\n"
    "  --mode load          --inflight K (32) over --conns C (K) for\n"
    "                       --seconds S (10) after --warmup-seconds W (1);\n"
    "                       or --count N acked flips; --keys N (1000)\n"
    "  --mode writer        a flip every --interval-ms (10); --signal-pid P\n"
    "                       --signal N (9) --signal-after-ms T (1000);\n"
    "                       --after-ms A (2000) past recovery\n"
    "  --prefix P           key prefix (default bench.kv.)\n"
    "  --timeout MS         no answer within MS fails the flip (default\n"
    "                       5000; writer 1000)\n"
    "  --max-seconds S      bound on the whole run (default 120)\n"
    "  --errors N           failures described on stderr (default 5)\n"
    "\n"
    "exit status: 0 ok, 1 failures or truncated, 2 usage/setup error\n";

static int usage_error(const char *what, const char *arg)
{
    bench_usage_error(PROG, usage_text, what, arg);
    return EXIT_USAGE;
}

#define O(name, min, max, member) \
    BENCH_UINT(struct opts, name, min, max, member)
static const struct bench_opt optab[] = {
    BENCH_STR(struct opts, "system", sys_name),
    BENCH_STR(struct opts, "mode", mode_name),
    BENCH_STR(struct opts, "endpoints", endpoints),
    BENCH_STR(struct opts, "prefix", prefix),
    O("n", 1, N_MAX, n),
    O("idle-ms", 0, INTERVAL_MAX, idle_ms),
    O("warmup", 0, 10000, warmup),
    O("inflight", 1, INFLIGHT_MAX, inflight),
    O("conns", 1, INFLIGHT_MAX, conns),
    O("seconds", 1, SECONDS_MAX, seconds),
    O("warmup-seconds", 0, SECONDS_MAX, warmup_seconds),
    O("count", 1, COUNT_MAX, count),
    O("keys", 1, KEYS_MAX, keys),
    O("timeout", 1, TIMEOUT_MAX, timeout_ms),
    O("interval-ms", 1, INTERVAL_MAX, interval_ms),
    O("after-ms", 0, TIMEOUT_MAX, after_ms),
    O("max-seconds", 1, SECONDS_MAX, max_seconds),
    O("errors", 0, 1000, errors),
    O("signal", 1, 64, signal_no),
    O("signal-after-ms", 0, TIMEOUT_MAX, signal_after_ms),
    O("signal-pid", 2, 4194304, signal_pid), /* PID_MAX_LIMIT */
};
#undef O

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->sys_name = "flipd";
    o->mode_name = "seq";
    o->prefix = "bench.kv.";
    o->n = 1000;
    o->warmup = 5;
    o->inflight = 32;
    o->seconds = 10;
    o->warmup_seconds = 1;
    o->keys = 1000;
    o->interval_ms = 10;
    o->after_ms = 2000;
    o->max_seconds = 120;
    o->errors = 5;
    o->signal_no = SIGKILL;
    o->signal_after_ms = 1000;
    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (strcmp(o->sys_name, "flipd") == 0) {
        o->sys = SYS_FLIPD;
    } else if (strcmp(o->sys_name, "etcd") == 0) {
        o->sys = SYS_ETCD;
    } else {
        return usage_error("--system wants flipd or etcd", o->sys_name);
    }
    if (strcmp(o->mode_name, "seq") == 0) {
        o->mode = MODE_SEQ;
    } else if (strcmp(o->mode_name, "load") == 0) {
        o->mode = MODE_LOAD;
    } else if (strcmp(o->mode_name, "writer") == 0) {
        o->mode = MODE_WRITER;
    } else {
        return usage_error("--mode wants seq, load or writer", o->mode_name);
    }
    if (o->endpoints == NULL || o->endpoints[0] == '\0') {
        return usage_error("--endpoints is required", NULL);
    }
    if (strlen(o->prefix) > 200) {
        return usage_error("--prefix too long", NULL);
    }
    if (o->timeout_ms == 0) { /* not given */
        o->timeout_ms = o->mode == MODE_WRITER ? 1000 : 5000;
    }
    if (o->mode != MODE_LOAD) {
        o->inflight = 1;
        o->conns = 1;
    } else if (o->conns == 0 || o->conns > o->inflight) {
        o->conns = o->inflight;
    }
    if (o->sys == SYS_ETCD && o->conns != o->inflight) {
        return usage_error(
            "etcd (HTTP/1.1) needs --conns equal to "
            "--inflight",
            NULL);
    }
    return 0;
}

static void count_err(struct ctx *x, const char *name)
{
    size_t i;

    for (i = 0; i < x->n_errs; i++) {
        if (strcmp(x->errs[i].name, name) == 0) {
            x->errs[i].count++;
            return;
        }
    }
    if (x->n_errs < ERR_KINDS) {
        snprintf(x->errs[x->n_errs].name, sizeof x->errs[0].name, "%s", name);
        x->errs[x->n_errs++].count = 1;
    }
}

/* ---- endpoints ----------------------------------------------------------- */

static long ep_add(struct ctx *x, const char *addr, size_t len)
{
    for (size_t i = 0; i < x->n_ep; i++) {
        if (strlen(x->ep[i].a.name) == len &&
            memcmp(x->ep[i].a.name, addr, len) == 0) {
            return (long)i;
        }
    }
    if (x->n_ep == EP_MAX ||
        bench_addr_resolve(addr, len, &x->ep[x->n_ep].a) != 0) {
        return -1;
    }
    return (long)x->n_ep++;
}

static int parse_endpoints(struct ctx *x, const char *csv)
{
    const char *p = csv;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (ep_add(x, p, len) < 0) {
            fprintf(stderr, "kvbench: bad or unresolvable endpoint in '%s'\n",
                    csv);
            return -1;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    x->n_cfg = x->n_ep;
    return x->n_ep > 0 ? 0 : -1;
}

/* ---- recording ----------------------------------------------------------- */

static void lat_add(struct ctx *x, uint64_t ns)
{
    if (x->n_lat == x->cap_lat) {
        size_t cap = x->cap_lat ? x->cap_lat * 2 : 4096;
        uint64_t *p;

        if (cap > LAT_CAP_MAX) {
            return;
        }
        p = realloc(x->lat, cap * sizeof *p);
        if (p == NULL) {
            return;
        }
        x->lat = p;
        x->cap_lat = cap;
    }
    x->lat[x->n_lat++] = ns;
}

static void flip_add(struct ctx *x, const struct slot *s, uint64_t now, int ok)
{
    if (x->n_flips < x->cap_flips) {
        struct flip_rec *r = &x->flips[x->n_flips++];

        r->t_start = s->t_start;
        r->t_done = now;
        r->ok = ok;
    }
}

/* In the measured part of the run? (seq: past the warmup; load: acked in
 * the window, or any flip in count mode; writer: always) */
static int measured(struct ctx *x, uint64_t now)
{
    switch (x->o->mode) {
    case MODE_SEQ:
        return x->seq_done >= x->o->warmup;
    case MODE_LOAD:
        return x->o->count > 0 || (now >= x->w0 && now < x->w1);
    case MODE_WRITER:
        return 1;
    }
    return 0;
}

static void op_end(struct ctx *x, struct slot *s, uint64_t now)
{
    s->busy = 0;
    s->sent = 0;
    if (x->o->mode == MODE_SEQ) {
        x->seq_done++;
        x->seq_next_at = now + (uint64_t)x->o->idle_ms * 1000000u;
    }
}

static void op_ok(struct ctx *x, struct slot *s, uint64_t rev)
{
    uint64_t now = bench_mono_ns();

    x->n_acked++;
    if (measured(x, now)) {
        x->n_ok++;
        lat_add(x, now - s->t_start);
        if (x->first_rev == 0) {
            x->first_rev = rev;
        }
        x->last_rev = rev;
    }
    if (x->o->mode == MODE_WRITER) {
        flip_add(x, s, now, 1);
        if (x->signalled && !x->recovered && s->t_start >= x->t_signal) {
            x->recovered = 1;
            x->t_recovered = now;
        }
    }
    if (x->o->mode == MODE_LOAD && x->o->count > 0 &&
        x->n_acked >= x->o->count && !x->stopping) {
        x->stopping = 1;
        x->w_end = now;
    }
    op_end(x, s, now);
}

static void op_fail(struct ctx *x, struct slot *s, const char *why)
{
    uint64_t now = bench_mono_ns();

    if (measured(x, now)) {
        x->n_fail++;
        count_err(x, why);
        bench_problem(&x->pr, "flip %" PRIu64 " failed after %.3f ms: %s",
                      s->seq, (double)(now - s->t_start) / 1e6, why);
    }
    if (x->o->mode == MODE_WRITER) {
        flip_add(x, s, now, 0);
    }
    s->not_before = now + BACKOFF_NS;
    op_end(x, s, now);
}

/* ---- connections --------------------------------------------------------- */

static void conn_epoll(struct ctx *x, struct conn *c, int want_out)
{
    struct epoll_event ev;

    if (c->fd < 0 || c->want_out == want_out) {
        return;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    ev.data.u32 = (uint32_t)(c - x->conns);
    (void)epoll_ctl(x->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        /* A reset: no TIME_WAIT left behind by the many reconnects. */
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_CLOSED;
    c->want_out = 0;
    buf_reset(&c->in);
    buf_reset(&c->out);
}

/* The flip in s was not applied (not written, or the server said it did
 * nothing): send it again, on whatever endpoint its connection goes to,
 * after a pause if `answered` or after a whole round of endpoints. */
static void slot_retry(struct ctx *x, struct slot *s, int answered)
{
    uint64_t now = bench_mono_ns();

    s->sent = 0;
    s->hops++;
    x->n_retries++;
    s->retry_at = now;
    if (answered || s->hops > x->n_cfg) {
        s->retry_at = now + BACKOFF_NS;
        s->hops = 0;
    }
}

static int slot_written(const struct conn *c, const struct slot *s)
{
    return s->sent && c->w_bytes >= s->out_end;
}

/* c closes and moves to the next configured endpoint. Its flips whose
 * request was written fail with `why` (outcome unknown) unless
 * `nothing_done` (the server said so); the others are sent again. */
static void conn_fail_how(struct ctx *x,
                          struct conn *c,
                          const char *why,
                          int nothing_done)
{
    conn_close(c);
    for (unsigned i = 0; i < c->depth; i++) {
        struct slot *s = &c->slots[i];

        if (!s->busy) {
            continue;
        }
        if (slot_written(c, s) && !nothing_done) {
            op_fail(x, s, why);
        } else {
            slot_retry(x, s, nothing_done);
        }
    }
    c->rot = (c->rot + 1) % x->n_cfg;
    c->ep = c->rot;
    c->move_to = -1;
    c->reconnect_at = bench_mono_ns();
    x->n_reconnects++;
}

static void conn_fail(struct ctx *x, struct conn *c, const char *why)
{
    conn_fail_how(x, c, why, 0);
}

static void key_of(const struct ctx *x,
                   const struct slot *s,
                   char *key,
                   size_t cap)
{
    if (x->o->mode == MODE_LOAD) {
        snprintf(key, cap, "%s%" PRIu64, x->o->prefix, s->seq % x->o->keys);
    } else {
        snprintf(key, cap, "%s%s", x->o->prefix,
                 x->o->mode == MODE_SEQ ? "seq" : "writer");
    }
}

/* Queues the request of the flip in slot s on c (its value alternates). */
static int queue_flip(struct ctx *x, struct conn *c, struct slot *s)
{
    char key[300];
    int value = (int)(s->seq & 1u);

    key_of(x, s, key, sizeof key);
    if (x->o->sys == SYS_FLIPD) {
        Flip__Request req = FLIP__REQUEST__INIT;
        Flip__SetRequest set = FLIP__SET_REQUEST__INIT;
        Flip__Value v = FLIP__VALUE__INIT;
        Flip__RequestId rid;

        if (x->o->mode == MODE_WRITER) {
            /* Unique values: a flip applied twice shows in the history. */
            v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
            v.int_value = (int64_t)s->seq;
        } else {
            v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
            v.bool_value = value;
        }
        set.key = key;
        set.value = &v;
        flip__request_id__init(&rid);
        rid.has_client_id = 1;
        rid.client_id.data = x->client_id;
        rid.client_id.len = sizeof x->client_id;
        rid.has_seq = 1;
        rid.seq = s->seq + 1;
        set.request_id = &rid;
        req.has_id = 1;
        req.id = s->id = c->next_id++;
        req.op_case = FLIP__REQUEST__OP_SET;
        req.set = &set;
        if (bflip_put(&c->out, &req) != 0) {
            return -1;
        }
    } else {
        char req[REQ_MAX];
        char num[24];
        size_t n;

        snprintf(num, sizeof num, "%" PRIu64, s->seq);
        n = http_put_request(req, sizeof req, x->ep[c->ep].a.name, key,
                             x->o->mode == MODE_WRITER ? num
                             : value                   ? "true"
                                                       : "false");

        if (n == 0 || buf_append(&c->out, req, n) != 0) {
            return -1;
        }
    }
    s->sent = 1;
    s->out_end = c->w_bytes + buf_len(&c->out);
    return 0;
}

static void conn_flush(struct ctx *x, struct conn *c)
{
    while (c->state == C_OPEN && buf_len(&c->out) > 0) {
        ssize_t n =
            send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            conn_fail(x, c, "connection lost (send)");
            return;
        }
        buf_consume(&c->out, (size_t)n);
        c->w_bytes += (uint64_t)n;
    }
    if (c->state == C_OPEN) {
        conn_epoll(x, c, buf_len(&c->out) > 0);
    }
}

/* Opens c to its endpoint: non-blocking connect; flipd's Hello is queued
 * at once (requests may follow it before the answer). */
static int conn_open(struct ctx *x, struct conn *c)
{
    const struct endpoint *e = &x->ep[c->ep];
    struct epoll_event ev;
    int one = 1;
    int fd;

    fd = socket(e->a.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        bench_problem(&x->pr, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = C_CONNECTING;
    c->want_out = 1;
    c->next_id = 1;
    c->w_bytes = 0;
    buf_reset(&c->in);
    buf_reset(&c->out);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = (uint32_t)(c - x->conns);
    if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        bench_problem(&x->pr, "epoll_ctl: %s", strerror(errno));
        conn_close(c);
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&e->a.sa, e->a.salen) != 0 &&
        errno != EINPROGRESS) {
        return -1;
    }
    c->hello_id = c->next_id++;
    if (x->o->sys == SYS_FLIPD &&
        bflip_put_hello(&c->out, c->hello_id, CLIENT_NAME) != 0) {
        return -1;
    }
    return 0;
}

/* Sends the flip in s on c, opening c if needed; it waits while c is
 * about to move to another node. */
static void slot_send(struct ctx *x, struct conn *c, struct slot *s)
{
    if (c->state == C_CLOSED && conn_open(x, c) != 0) {
        conn_fail(x, c, "connect failed");
        return;
    }
    if (c->move_to >= 0) {
        return;
    }
    if (queue_flip(x, c, s) != 0) {
        op_fail(x, s, "cannot encode the request");
        return;
    }
    conn_flush(x, c);
}

/* Starts a new flip in slot s of c. */
static void op_start(struct ctx *x, struct conn *c, struct slot *s)
{
    s->busy = 1;
    s->sent = 0;
    s->redirects = 0;
    s->hops = 0;
    s->seq = x->next_seq++;
    s->t_start = bench_mono_ns();
    s->retry_at = s->t_start;
    slot_send(x, c, s);
}

/* A move (redirect, or away from a node that answered UNAVAILABLE) is
 * made once no answer is outstanding on c; the flips waiting for it are
 * sent by pump(). */
static void conn_maybe_move(struct ctx *x, struct conn *c)
{
    (void)x;
    if (c->move_to < 0) {
        return;
    }
    for (unsigned i = 0; i < c->depth; i++) {
        if (c->slots[i].busy && c->slots[i].sent) {
            return;
        }
    }
    conn_close(c);
    c->ep = (size_t)c->move_to;
    c->move_to = -1;
}

/* Moves c to the next configured endpoint once it is idle. */
static void conn_rotate(struct ctx *x, struct conn *c)
{
    c->rot = (c->rot + 1) % x->n_cfg;
    c->move_to = (long)c->rot;
    if ((size_t)c->move_to == c->ep) {
        c->move_to = -1;
    }
}

/* ---- answers ------------------------------------------------------------- */

static void on_flipd(struct ctx *x, struct conn *c, const struct bflip_view *r)
{
    struct slot *s = NULL;
    char why[96];

    if (r->id == c->hello_id) {
        if (r->has_error) {
            snprintf(why, sizeof why, "hello refused: %s",
                     bflip_status_name(r->status));
            conn_fail(x, c, why);
        }
        return;
    }
    if (r->id == 0 && r->has_error) {
        /* The node closes the connection. UNAVAILABLE (connection limit,
         * shutting down) says nothing was done: the library retries. */
        snprintf(why, sizeof why, "connection error %s",
                 bflip_status_name(r->status));
        conn_fail_how(x, c, why, r->status == FLIP__STATUS__UNAVAILABLE);
        return;
    }
    for (unsigned i = 0; i < c->depth; i++) {
        if (c->slots[i].busy && c->slots[i].sent && c->slots[i].id == r->id) {
            s = &c->slots[i];
            break;
        }
    }
    if (s == NULL) {
        return; /* a flip that already failed */
    }
    if (!r->has_error) {
        op_ok(x, s, r->set_rev);
        return;
    }
    if (r->status == FLIP__STATUS__NOT_LEADER && r->leader_len > 0 &&
        s->redirects < REDIRECTS_MAX) {
        long to = ep_add(x, (const char *)r->leader, r->leader_len);

        if (to >= 0 && (size_t)to != c->ep) {
            s->redirects++;
            x->n_redirects++;
            slot_retry(x, s, 0);
            c->move_to = to;
            conn_maybe_move(x, c);
            return;
        }
    }
    if (r->status == FLIP__STATUS__NOT_LEADER ||
        r->status == FLIP__STATUS__UNAVAILABLE ||
        r->status == FLIP__STATUS__NO_SPACE) {
        char what[96];

        snprintf(what, sizeof what, "retried: %s",
                 bflip_status_name(r->status));
        count_err(x, what);
        slot_retry(x, s, 1);
        conn_rotate(x, c);
        conn_maybe_move(x, c);
        return;
    }
    op_fail(x, s, bflip_status_name(r->status));
}

static void on_etcd(struct ctx *x,
                    struct conn *c,
                    const struct http_head *h,
                    const char *body)
{
    struct slot *s = &c->slots[0];
    char why[96];
    char msg[80];
    uint64_t rev = 0;

    if (!s->busy || !s->sent) {
        return;
    }
    if (h->status == 200 && strstr(body, "\"header\"") != NULL &&
        strstr(body, "\"error\"") == NULL) {
        (void)json_u64(body, "revision", &rev);
        op_ok(x, s, rev);
        return;
    }
    if (json_str(body, "error", msg, sizeof msg) ||
        json_str(body, "message", msg, sizeof msg)) {
        snprintf(why, sizeof why, "%s", msg);
    } else {
        snprintf(why, sizeof why, "http %d", h->status);
    }
    /* "client connection is closing": the gateway's own gRPC connection
     * is shut (the member is stopping) and the request never left it. */
    if (strstr(why, "no leader") != NULL ||
        strstr(why, "too many requests") != NULL ||
        strstr(why, "client connection is closing") != NULL) {
        char what[128];

        snprintf(what, sizeof what, "retried: %s", why);
        count_err(x, what);
        slot_retry(x, s, 1);
        conn_rotate(x, c);
        conn_maybe_move(x, c);
        return;
    }
    op_fail(x, s, why);
}

/* Parses every whole answer in c->in. */
static void conn_parse(struct ctx *x, struct conn *c)
{
    while (c->state != C_CLOSED && buf_len(&c->in) > 0) {
        if (x->o->sys == SYS_FLIPD) {
            struct bflip_view v;
            size_t len = 0;
            int whole = bflip_frame(buf_head(&c->in), buf_len(&c->in), &len);

            if (whole < 0) {
                conn_fail(x, c, "frame over the limit");
                return;
            }
            if (whole == 0) {
                return;
            }
            if (bflip_scan(buf_head(&c->in) + BFLIP_HDR, len, &v) != 0) {
                conn_fail(x, c, "malformed response");
                return;
            }
            /* v points into c->in: consumed after, unless c was closed
             * (its buffers reset) meanwhile. */
            on_flipd(x, c, &v);
            if (c->state == C_CLOSED) {
                return;
            }
            buf_consume(&c->in, BFLIP_HDR + len);
        } else {
            struct http_head h;
            size_t blen = 0;
            long n =
                http_response((const char *)buf_head(&c->in), buf_len(&c->in),
                              &h, x->body, sizeof x->body, &blen);

            if (n == 0) {
                return;
            }
            if (n < 0) {
                conn_fail(x, c, "malformed HTTP response");
                return;
            }
            buf_consume(&c->in, (size_t)n);
            on_etcd(x, c, &h, x->body);
            if (h.close) {
                conn_close(c); /* nothing is outstanding: depth 1 */
            }
        }
    }
}

static void conn_readable(struct ctx *x, struct conn *c)
{
    for (int round = 0; round < 8 && c->state != C_CLOSED; round++) {
        ssize_t n;

        if (buf_reserve(&c->in, READ_CHUNK) != 0) {
            conn_fail(x, c, "out of memory");
            return;
        }
        n = recv(c->fd, buf_tail(&c->in), READ_CHUNK, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_fail(x, c, "connection lost (recv)");
            }
            break;
        }
        if (n == 0) {
            int fd = c->fd;

            conn_parse(x, c);
            /* Unless the answers moved c to another node meanwhile. */
            if (c->state != C_CLOSED && c->fd == fd) {
                conn_fail(x, c, "connection closed by the server");
            }
            return;
        }
        buf_commit(&c->in, (size_t)n);
        if ((size_t)n < READ_CHUNK) {
            break;
        }
    }
    conn_parse(x, c);
}

static void conn_event(struct ctx *x, struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;

        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            conn_fail(x, c, "connect failed");
            return;
        }
        c->state = C_OPEN;
        conn_flush(x, c);
        if (c->state != C_OPEN) {
            return;
        }
    }
    if (c->state == C_OPEN && (events & EPOLLOUT)) {
        conn_flush(x, c);
    }
    if (c->state == C_OPEN && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        conn_readable(x, c);
    }
    if (c->state != C_CLOSED) {
        conn_maybe_move(x, c);
    }
}

/* ---- the loop ------------------------------------------------------------ */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Fails flips not acked within --timeout of their start (retries
 * included); returns the earliest future deadline. A flip whose answer is
 * still due closes its connection (the stream cannot skip it). */
static uint64_t check_timeouts(struct ctx *x, uint64_t now)
{
    uint64_t tmo = (uint64_t)x->o->timeout_ms * 1000000u;
    uint64_t next = UINT64_MAX;

    for (unsigned k = 0; k < x->n_conns; k++) {
        struct conn *c = &x->conns[k];

        for (unsigned i = 0; i < c->depth; i++) {
            struct slot *s = &c->slots[i];

            if (!s->busy) {
                continue;
            }
            if (now - s->t_start >= tmo) {
                int pending = s->sent;

                x->n_timeouts++;
                op_fail(x, s, "timeout");
                if (pending) {
                    conn_fail(x, c, "connection closed after a timeout");
                    break;
                }
                continue;
            }
            next = min_u64(next, s->t_start + tmo);
        }
    }
    return next;
}

/* Sends the flips waiting for a (re)send whose time has come. */
static uint64_t resend_due(struct ctx *x, uint64_t now)
{
    uint64_t next = UINT64_MAX;

    for (unsigned k = 0; k < x->n_conns; k++) {
        struct conn *c = &x->conns[k];

        if (c->move_to >= 0) {
            continue;
        }
        for (unsigned i = 0; i < c->depth; i++) {
            struct slot *s = &c->slots[i];

            if (!s->busy || s->sent) {
                continue;
            }
            if (now >= s->retry_at) {
                slot_send(x, c, s);
                if (c->move_to >= 0) {
                    break;
                }
            } else {
                next = min_u64(next, s->retry_at);
            }
        }
    }
    return next;
}

/* Starts what is due; returns the time of the next scheduled start. */
static uint64_t pump(struct ctx *x, uint64_t now)
{
    const struct opts *o = x->o;
    uint64_t next = UINT64_MAX;

    if (x->stopping) {
        return next;
    }
    switch (o->mode) {
    case MODE_SEQ: {
        struct conn *c = &x->conns[0];

        if (x->seq_done >= o->n + o->warmup) {
            x->stopping = 1;
        } else if (!c->slots[0].busy) {
            if (now >= x->seq_next_at && now >= c->reconnect_at) {
                op_start(x, c, &c->slots[0]);
            } else {
                next = x->seq_next_at > c->reconnect_at ? x->seq_next_at
                                                        : c->reconnect_at;
            }
        }
        break;
    }
    case MODE_LOAD:
        if (o->count == 0 && now >= x->w1) {
            x->stopping = 1;
            x->w_end = x->w1;
            break;
        }
        for (unsigned k = 0; k < x->n_conns; k++) {
            struct conn *c = &x->conns[k];

            if (c->state == C_CLOSED && now < c->reconnect_at) {
                next = min_u64(next, c->reconnect_at);
                continue;
            }
            for (unsigned i = 0; i < c->depth && !x->stopping; i++) {
                struct slot *s = &c->slots[i];

                if (s->busy) {
                    continue;
                }
                if (now < s->not_before) {
                    next = min_u64(next, s->not_before);
                    continue;
                }
                op_start(x, c, s);
            }
        }
        if (o->count == 0) {
            next = min_u64(next, x->w1);
        }
        break;
    case MODE_WRITER: {
        struct conn *c = &x->conns[0];

        if (o->signal_pid > 0 && !x->signalled &&
            now >= x->t0 + (uint64_t)o->signal_after_ms * 1000000u) {
            x->t_signal = bench_mono_ns();
            x->signalled = 1;
            if (kill((pid_t)o->signal_pid, (int)o->signal_no) != 0) {
                x->signal_errno = errno;
                bench_problem(&x->pr, "kill(%u, %u): %s", o->signal_pid,
                              o->signal_no, strerror(errno));
            }
        } else if (o->signal_pid > 0 && !x->signalled) {
            next = x->t0 + (uint64_t)o->signal_after_ms * 1000000u;
        }
        if ((o->signal_pid > 0 && x->recovered &&
             now >= x->t_recovered + (uint64_t)o->after_ms * 1000000u) ||
            (o->signal_pid <= 0 &&
             now >= x->t0 + (uint64_t)o->after_ms * 1000000u) ||
            (x->signalled && x->signal_errno != 0)) {
            x->stopping = 1;
            break;
        }
        if (!c->slots[0].busy) {
            if (now >= x->next_tick) {
                uint64_t iv = (uint64_t)o->interval_ms * 1000000u;

                while (x->next_tick <= now) {
                    x->next_tick += iv;
                }
                op_start(x, c, &c->slots[0]);
            }
            next = min_u64(next, x->next_tick);
        }
        break;
    }
    }
    return next;
}

static int any_busy(const struct ctx *x)
{
    for (unsigned k = 0; k < x->n_conns; k++) {
        for (unsigned i = 0; i < x->conns[k].depth; i++) {
            if (x->conns[k].slots[i].busy) {
                return 1;
            }
        }
    }
    return 0;
}

static void run(struct ctx *x)
{
    struct epoll_event evs[EVENTS_MAX];
    uint64_t drain_until = 0;

    for (;;) {
        uint64_t now = bench_mono_ns();
        uint64_t next;
        int timeout_ms;
        int n;

        if (now >= x->deadline) {
            x->truncated = 1;
            if (x->o->mode == MODE_LOAD && x->w_end == 0) {
                x->w_end = now < x->w1 ? now : x->w1;
            }
            break;
        }
        next = pump(x, now);
        next = min_u64(next, resend_due(x, bench_mono_ns()));
        if (x->stopping) {
            if (drain_until == 0) {
                drain_until = now + DRAIN_NS;
            }
            if (!any_busy(x) || now >= drain_until) {
                break;
            }
        }
        next = min_u64(next, check_timeouts(x, bench_mono_ns()));
        next = min_u64(next, x->deadline);
        if (drain_until != 0) {
            next = min_u64(next, drain_until);
        }
        now = bench_mono_ns();
        timeout_ms = next <= now ? 0 : (int)((next - now + 999999u) / 1000000u);
        if (timeout_ms > 100) {
            timeout_ms = 100;
        }
        n = epoll_wait(x->epfd, evs, EVENTS_MAX, timeout_ms);
        if (n < 0 && errno != EINTR) {
            bench_problem(&x->pr, "epoll_wait: %s", strerror(errno));
            x->truncated = 1;
            break;
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = &x->conns[evs[k].data.u32];

            if (c->fd >= 0) {
                conn_event(x, c, evs[k].events);
            }
        }
    }
}

/* ---- output -------------------------------------------------------------- */

static void json_errors(const struct ctx *x)
{
    printf(",\"errors\":{");
    for (size_t i = 0; i < x->n_errs; i++) {
        printf("%s", i ? "," : "");
        bench_json_str(x->errs[i].name);
        printf(":%" PRIu64, x->errs[i].count);
    }
    printf("},\"first_error\":");
    if (x->pr.first[0] != '\0') {
        bench_json_str(x->pr.first);
    } else {
        fputs("null", stdout);
    }
}

struct wsum
{
    size_t ok;
    size_t failed;
    size_t failed_after;
    double recovery_ms; /* -1: none */
    double outage_ms;   /* last ack before the signal -> first after */
    double gap_ms;      /* longest gap between consecutive acks */
    double max_flip_ms; /* slowest acked flip */
};

static struct wsum writer_summary(const struct ctx *x)
{
    struct wsum w;
    uint64_t prev_ack = 0;
    uint64_t last_before = 0;
    uint64_t first_after = 0;

    memset(&w, 0, sizeof w);
    w.recovery_ms = -1;
    w.outage_ms = -1;
    for (size_t i = 0; i < x->n_flips; i++) {
        const struct flip_rec *r = &x->flips[i];

        if (!r->ok) {
            w.failed++;
            if (x->signalled && r->t_done >= x->t_signal) {
                w.failed_after++;
            }
            continue;
        }
        w.ok++;
        if ((double)(r->t_done - r->t_start) / 1e6 > w.max_flip_ms) {
            w.max_flip_ms = (double)(r->t_done - r->t_start) / 1e6;
        }
        if (prev_ack != 0 && (double)(r->t_done - prev_ack) / 1e6 > w.gap_ms) {
            w.gap_ms = (double)(r->t_done - prev_ack) / 1e6;
        }
        prev_ack = r->t_done;
        if (x->signalled) {
            if (r->t_done < x->t_signal) {
                last_before = r->t_done;
            } else if (first_after == 0) {
                first_after = r->t_done;
            }
        }
    }
    if (x->recovered) {
        w.recovery_ms = (double)(x->t_recovered - x->t_signal) / 1e6;
    }
    if (last_before != 0 && first_after != 0) {
        w.outage_ms = (double)(first_after - last_before) / 1e6;
    }
    return w;
}

static const char *sys_name(const struct opts *o)
{
    return o->sys == SYS_FLIPD ? "flipd" : "etcd";
}

static void print_result(struct ctx *x)
{
    const struct opts *o = x->o;
    double min = x->n_lat ? (double)x->lat[0] / 1e6 : 0.0;
    double max = x->n_lat ? (double)x->lat[x->n_lat - 1] / 1e6 : 0.0;
    double sum = 0;
    double secs;

    for (size_t i = 0; i < x->n_lat; i++) {
        sum += (double)x->lat[i];
    }
    if (o->mode == MODE_LOAD) {
        secs = o->count > 0
                   ? (double)((x->w_end ? x->w_end : bench_mono_ns()) - x->t0) /
                         1e9
                   : (double)(x->w_end - x->w0) / 1e9;
    } else {
        secs = (double)(bench_mono_ns() - x->t0) / 1e9;
    }
    printf("{\"system\":\"%s\",\"mode\":\"%s\"", sys_name(o),
           o->mode == MODE_SEQ    ? "seq"
           : o->mode == MODE_LOAD ? "load"
                                  : "writer");
    printf(",\"inflight\":%u,\"conns\":%u,\"idle_ms\":%u,\"timeout_ms\":%u",
           o->inflight, o->conns, o->idle_ms, o->timeout_ms);
    printf(",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"acked_total\":%" PRIu64
           ",\"redirects\":%" PRIu64 ",\"retries\":%" PRIu64
           ",\"reconnects\":%" PRIu64 ",\"timeouts\":%" PRIu64
           ",\"truncated\":%s",
           x->n_ok, x->n_fail, x->n_acked, x->n_redirects, x->n_retries,
           x->n_reconnects, x->n_timeouts, x->truncated ? "true" : "false");
    printf(
        ",\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f"
        ",\"max_ms\":%.3f,\"mean_ms\":%.3f",
        min, bench_pct_ms_u64(x->lat, x->n_lat, 50),
        bench_pct_ms_u64(x->lat, x->n_lat, 90),
        bench_pct_ms_u64(x->lat, x->n_lat, 99), max,
        x->n_lat ? sum / (double)x->n_lat / 1e6 : 0.0);
    printf(",\"seconds\":%.3f,\"throughput_ops_s\":%.1f", secs,
           secs > 0 ? (double)x->n_ok / secs : 0.0);
    printf(",\"first_revision\":%" PRIu64 ",\"last_revision\":%" PRIu64,
           x->first_rev, x->last_rev);
    if (o->mode == MODE_WRITER) {
        struct wsum w = writer_summary(x);

        printf(
            ",\"interval_ms\":%u,\"signal\":%u,\"signal_pid\":%u"
            ",\"signalled\":%s,\"flips\":%zu,\"flips_ok\":%zu"
            ",\"flips_failed\":%zu,\"failed_after_signal\":%zu",
            o->interval_ms, o->signal_pid > 0 ? o->signal_no : 0, o->signal_pid,
            x->signalled ? "true" : "false", x->n_flips, w.ok, w.failed,
            w.failed_after);
        if (w.recovery_ms >= 0) {
            printf(",\"recovery_ms\":%.3f", w.recovery_ms);
        } else {
            printf(",\"recovery_ms\":null");
        }
        if (w.outage_ms >= 0) {
            printf(",\"outage_ms\":%.3f", w.outage_ms);
        } else {
            printf(",\"outage_ms\":null");
        }
        printf(",\"longest_gap_ms\":%.3f,\"max_flip_ms\":%.3f", w.gap_ms,
               w.max_flip_ms);
    }
    json_errors(x);
    printf("}\n");
}

/* ---- main ---------------------------------------------------------------- */

static int setup(struct ctx *x, const struct opts *o)
{
    unsigned per;
    unsigned extra;
    struct rlimit rl;

    memset(x, 0, sizeof *x);
    x->o = o;
    x->epfd = -1;
    x->pr.prog = PROG;
    if (getrandom(x->client_id, sizeof x->client_id, 0) !=
        (ssize_t)sizeof x->client_id) {
        /* distinct from another run's is all that matters here */
        uint64_t t = bench_mono_ns() ^ ((uint64_t)getpid() << 40);
        memcpy(x->client_id, &t, sizeof t);
    }
    x->pr.limit = o->errors;
    if (parse_endpoints(x, o->endpoints) != 0) {
        return -1;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
        rl.rlim_cur < (rlim_t)o->conns + 64) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    x->n_conns = o->conns;
    x->conns = calloc(x->n_conns, sizeof *x->conns);
    if (x->conns == NULL) {
        return -1;
    }
    per = o->inflight / o->conns;
    extra = o->inflight % o->conns;
    for (unsigned k = 0; k < x->n_conns; k++) {
        struct conn *c = &x->conns[k];

        c->fd = -1;
        c->move_to = -1;
        c->rot = k % x->n_cfg;
        c->ep = c->rot;
        c->depth = per + (k < extra ? 1u : 0u);
        buf_init(&c->in);
        buf_init(&c->out);
        c->slots = calloc(c->depth, sizeof *c->slots);
        if (c->slots == NULL) {
            return -1;
        }
    }
    if (o->mode == MODE_WRITER) {
        x->cap_flips = (size_t)o->max_seconds * 1000u / o->interval_ms + 16u;
        x->flips = calloc(x->cap_flips, sizeof *x->flips);
        if (x->flips == NULL) {
            return -1;
        }
    }
    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        return -1;
    }
    x->t0 = bench_mono_ns();
    x->deadline = x->t0 + (uint64_t)o->max_seconds * 1000000000u;
    x->w0 = x->t0 + (uint64_t)o->warmup_seconds * 1000000000u;
    x->w1 = x->w0 + (uint64_t)o->seconds * 1000000000u;
    x->next_tick = x->t0;
    return 0;
}

static void teardown(struct ctx *x)
{
    if (x->conns != NULL) {
        for (unsigned k = 0; k < x->n_conns; k++) {
            conn_close(&x->conns[k]);
            buf_close(&x->conns[k].in);
            buf_close(&x->conns[k].out);
            free(x->conns[k].slots);
        }
    }
    if (x->epfd >= 0) {
        close(x->epfd);
    }
    free(x->conns);
    free(x->lat);
    free(x->flips);
}

int main(int argc, char **argv)
{
    struct opts o;
    static struct ctx x;
    int code;
    int rv = parse_args(argc, argv, &o);

    if (rv != 0) {
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup(&x, &o) != 0) {
        fprintf(stderr, "kvbench: setup failed\n");
        teardown(&x);
        return EXIT_USAGE;
    }
    run(&x);
    bench_sort_u64(x.lat, x.n_lat);
    print_result(&x);
    fflush(stdout);
    if (o.mode == MODE_WRITER) {
        code =
            x.truncated || (o.signal_pid > 0 && !x.recovered) ? EXIT_FAILED : 0;
    } else {
        code = x.n_fail > 0 || x.truncated || x.n_ok == 0 ? EXIT_FAILED : 0;
    }
    teardown(&x);
    return code;
}
