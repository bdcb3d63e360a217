/* fanout: subscription fan-out of a flipd cluster, or watch fan-out of an
 * etcd cluster, seen by N subscribers: one measurement for both systems.
 *
 *   fanout [--system flipd|etcd] --endpoints H:P,... [--n 1000]
 *          [--flips 50] [--gap-ms 20] [--gap-jitter-ms 0]
 *          [--prefix bench.fan.] [--key bench.fan.k] [--warmup 1]
 *          [--timeout 5000] [--attach-seconds 60] [--window 32]
 *          [--max-seconds 120] [--rss-pids PID,...] [--source ADDR]
 *          [--errors 5]
 *
 * One process, one thread. N raw TCP subscriber connections, spread
 * round-robin over the endpoints, live in one epoll loop. Each sends Hello
 * (protocol version 1) and Subscribe{prefixes: [PREFIX]} pipelined in one
 * write, then reads Response frames (u32 big-endian length + protobuf)
 * incrementally. At most --window connections per endpoint are being set
 * up at once (connect, Hello, Subscribe, snapshot): a flipd node streams
 * at most PUBSUB_MAX_SNAPSHOTS (server/pubsub.h, 512) snapshots at once,
 * each on an LMDB reader slot (STORE_MAX_READERS, storage/store.h), and
 * queues the rest; the window keeps the attach time a measure of the node
 * rather than of that queue. The attach phase ends when all N have seen
 * SNAPSHOT_END, or fails after --attach-seconds (exit 2; the report is
 * still printed, saying how many attached).
 *
 * --system etcd: each subscriber is a keep-alive HTTP/1.1 connection to
 * etcd's v3 JSON gateway: POST /v3/watch with {"create_request": {"key":
 * PREFIX, "range_end": PREFIX + 1}}, answered by a chunked stream of JSON
 * messages, one a line; attached once {"created": true} arrived. The
 * writer puts KEY over its own keep-alive connection to the first endpoint
 * (give the leader first); a delivery is an event with that mod_revision.
 *
 * Then a writer (the client library, client/flip.h) flips KEY one change at
 * a time: int values 1..F (after --warmup untimed flips of value 0). For
 * each flip: t_send, flip_set returns the ack and the revision at t_ack;
 * then the epoll loop runs until every attached subscriber has received a
 * CHANGE event at that revision, or --timeout ms after the ack (those that
 * did not are "missing"). Between flips the loop keeps reading for
 * --gap-ms plus a uniformly random 0..--gap-jitter-ms (heartbeats).
 *
 * Jitter matters: a follower applies a change only when the leader next
 * tells it the commit index, i.e. on a raft heartbeat tick, so delivery
 * through followers depends on where the flip falls between ticks. With a
 * fixed gap the flip loop can lock onto the tick phase (every flip sees
 * the same delay); a jitter of one heartbeat interval samples all phases.
 *
 * Receive times. The loop does not run while flip_set waits for its ack,
 * and reading 10000 sockets takes this process a while, so the time a
 * frame is *processed* here is not when it *arrived*. Every socket has
 * SO_TIMESTAMPNS on: the kernel stamps each segment when it is received,
 * and recvmsg reports the stamp of the last segment read, so reads never
 * go past the end of the current frame (sub_readable). Delivery times are
 * those stamps (CLOCK_REALTIME, compared with realtime t_send / t_ack
 * taken next to the monotonic ones). A stamp that is missing or
 * implausible (after the read, or before t_send) is replaced by the read
 * time and counted. The "seen" figures are always read times (monotonic), i.e.
 * what this process's loop observed, for comparison.
 *
 * Sockets. --source binds every subscriber socket to that local address
 * first (IP_BIND_ADDRESS_NO_PORT, so the port is chosen per destination):
 * with e.g. 127.0.0.2, the N connections do not hold ephemeral ports on
 * 127.0.0.1, where other programs (test suites) bind listeners. At the end
 * subscriber sockets are closed with SO_LINGER 0 (a reset), so no
 * TIME_WAIT entries are left behind to block such binds for a minute.
 *
 * Frames are decoded by bench/lib/bflip's protobuf field scanner
 * (Response.id, .error{status, message, resume_revision}, the result
 * member, and Event{type, revision, resync}); the frames of subscriber 0 are
 * also fully unpacked with the generated protobuf-c code and cross-checked
 * (type, revision, and for a CHANGE the key and the int value written).
 *
 * Reports, as one JSON object on stdout, per flip the ack latency and the last
 * subscriber's delivery after the ack and after the send; then p50/p99/max over
 * flips of those, the per-subscriber delivery latency over every subscriber x
 * flip sample, missing deliveries, disconnects and server errors
 * (SLOW_CONSUMER, ...), and with --rss-pids the VmRSS/VmHWM of those processes
 * (/proc/PID/status) once all subscribers are attached and again after the
 * flips.
 *
 * Layering: bench/ may include lib/ and client/ only. The generated
 * flip.pb-c.h types come through client/wire.h (which also supplies
 * wire_addr_split); frames are packed by bench/lib/bflip, the flipd
 * client model kvbench uses too.
 *
 * Exit status: 0 all flips acked and delivered to every subscriber with no
 * disconnect or error; 1 something was missing, failed or truncated (the
 * report says what); 2 usage or setup error (including attach failure). */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "bench/httpmini.h"
#include "bench/lib/baddr.h"
#include "bench/lib/bflip.h"
#include "bench/lib/bhttp.h"
#include "bench/lib/bopt.h"
#include "bench/lib/breport.h"
#include "bench/lib/bstat.h"
#include "client/flip.h"
#include "client/text.h"
#include "client/wire.h"
#include "lib/buf.h"

#define EP_MAX         16
#define FRAME_BUF_MIN  256u /* initial frame buffer of a subscriber */
#define EVENTS_MAX     1024
#define READS_PER_WAKE 16
#define STATUS_SLOTS   32
#define EXIT_FAILED    1
#define EXIT_USAGE     2
#define PROG           "fanout"
#define CLIENT_NAME    PROG
#define MSG_MAX        256
#define RAW_MAX        (1024u * 1024u) /* etcd: unparsed bytes per watcher */
#define READ_BUF       65536u
#define SAMPLES_MAX    (64u * 1024u * 1024u) /* --n x --flips, kept */

/* Response fields (proto/flip.proto). */
struct opts
{
    const char *sys_name;
    int etcd;
    const char *endpoints;
    const char *prefix;
    const char *key;
    const char *rss_pids; /* "PID,PID,..." or NULL */
    const char *source;   /* local address for subscriber sockets, or NULL */
    unsigned n;
    unsigned flips;
    unsigned gap_ms;
    unsigned jitter_ms;
    unsigned warmup;
    unsigned timeout_ms; /* writer deadline, and delivery wait after ack */
    unsigned attach_seconds;
    unsigned window;
    unsigned max_seconds;
    unsigned errors;
};

enum sub_phase
{
    SUB_IDLE = 0,    /* not started */
    SUB_CONNECTING,  /* non-blocking connect in progress */
    SUB_SUBSCRIBING, /* Hello + Subscribe sent, snapshot not complete */
    SUB_LIVE,        /* SNAPSHOT_END seen */
    SUB_DEAD
};

struct sub
{
    int fd;
    uint8_t phase;
    uint8_t ep;
    uint8_t got_result;
    uint16_t sent;        /* bytes of the greeting written */
    uint32_t partial_len; /* bytes of an incomplete frame (etcd: received,
                           * not parsed) kept */
    uint32_t partial_cap;
    uint8_t *partial;
    /* etcd: the chunked HTTP stream */
    uint8_t head_done;
    uint8_t skip_crlf; /* the CRLF after a chunk's data is pending */
    long chunk_left;   /* data bytes left in the current chunk; -1: size */
    char *line;        /* de-chunked text of the current message */
    uint32_t line_len;
    uint32_t line_cap;
    uint64_t last_rev; /* highest CHANGE revision received */
    uint64_t snap_rev;
};

struct endpoint
{
    struct bench_addr a;
    char role[16]; /* from a status call before the run, "?" if none */
    uint32_t n_subs;
    uint32_t n_attached;
};

struct flip_rec
{
    uint64_t rev;
    int rv;               /* FLIP_OK or the writer's error */
    int64_t ack_ns;       /* t_ack - t_send */
    int64_t last_ack_ns;  /* last delivery - t_ack (receive stamps) */
    int64_t last_send_ns; /* last delivery - t_send */
    int64_t seen_ack_ns;  /* last processed here - t_ack (monotonic) */
    int64_t ep_last_ack_ns[EP_MAX]; /* per endpoint, INT64_MIN: none */
    uint32_t received;
    uint32_t missing;
};

struct ctx
{
    const struct opts *o;
    struct endpoint ep[EP_MAX];
    size_t n_ep;
    struct sockaddr_storage src; /* --source, port 0 */
    socklen_t src_len;           /* 0 without --source */
    struct sub *subs;
    uint32_t n;
    int epfd;
    struct buf greeting; /* flipd: Hello + Subscribe; etcd: POST /v3/watch */
    uint64_t deadline;   /* monotonic ns: --max-seconds */
    int truncated;
    int roles_changed; /* a node's role differed after the run */
    int attach_complete;

    /* attach */
    uint32_t next_start[EP_MAX]; /* next subscriber index per endpoint */
    uint32_t ep_inflight[EP_MAX];
    uint32_t inflight;
    uint32_t n_live;     /* subscribers in SUB_LIVE now */
    uint32_t n_attached; /* ever reached SUB_LIVE */
    uint32_t n_attach_failed;
    uint64_t attach_ns;

    /* the flip being delivered */
    int flipping;
    int recording;
    uint64_t cur_rev;
    int64_t cur_value;
    uint64_t t_send_rt;
    uint64_t t_ack_rt;
    uint64_t t_ack_mono;
    uint32_t cur_received;
    int64_t cur_last_ns; /* latest delivery stamp - t_ack */
    int64_t cur_seen_ns;
    int64_t cur_ep_last[EP_MAX];
    int64_t *s_send; /* per subscriber x flip: delivery - t_send */
    int64_t *s_ack;  /* delivery - t_ack */
    size_t n_samples;
    size_t cap_samples;

    /* counters */
    uint64_t n_frames;
    uint64_t n_heartbeats;
    uint64_t n_changes;
    uint64_t n_dup;        /* CHANGE at or below the last revision seen */
    uint64_t n_late;       /* a previous flip's revision, after its wait */
    uint64_t n_unexpected; /* a revision no flip reported */
    uint64_t n_resync;
    uint64_t n_verify_bad;  /* scanner and protobuf-c disagree */
    uint64_t n_kts_ok;      /* deliveries timed by their kernel stamp */
    uint64_t n_kts_bad;     /* deliveries timed by the read instead */
    uint32_t n_disconnects; /* after attach */
    uint32_t n_eof;
    uint32_t n_ioerr;
    uint32_t n_badframe;
    uint32_t n_canceled;                   /* etcd: watches canceled */
    unsigned err_status[STATUS_SLOTS + 1]; /* error frames by status */
    struct bench_problems pr;

    struct bench_http w; /* etcd: the writer, to the first endpoint */
    uint8_t rbuf[READ_BUF];
};

static const char usage_text[] =
    "usage: fanout [--system flipd|etcd] --endpoints H:P,... [options]\n"
    "\n"
    "  --system S           flipd (default) or etcd (watches over the JSON\n"
    "                       gateway, the writer on the first endpoint)\n"
    "  --endpoints H:P,...  client addresses; subscribers are spread over\n"
    "                       them round-robin, the writer uses all (required)\n"
    "  --n N                subscriber connections (default 1000)\n"
    "  --flips F            timed flips (default 50)\n"
    "  --gap-ms MS          pause between flips, reading (default 20)\n"
    "  --gap-jitter-ms MS   plus a random 0..MS (default 0)\n"
    "  --warmup W           untimed flips first (default 1)\n"
    "  --prefix P           subscription prefix (default bench.fan.)\n"
    "  --key K              flag flipped, must start with P (default\n"
    "                       bench.fan.k)\n"
    "  --timeout MS         writer deadline, and how long after the ack a\n"
    "                       delivery may take before it counts as missing\n"
    "                       (default 5000)\n"
    "  --attach-seconds S   bound on connecting + snapshots (default 60)\n"
    "  --window W           connections being set up at once, per\n"
    "                       endpoint (default 32)\n"
    "  --max-seconds S      bound on the whole run (default 120)\n"
    "  --rss-pids PID,...   print VmRSS of these processes after attach and\n"
    "                       after the flips\n"
    "  --source ADDR        bind subscriber sockets to this local IP first\n"
    "                       (e.g. 127.0.0.2)\n"
    "  --errors N           problems described on stderr (default 5)\n"
    "\n"
    "exit status: 0 all delivered, 1 missing/failed/truncated, 2 usage or\n"
    "setup error (including subscribers that could not attach)\n";

static int usage_error(const char *what, const char *arg)
{
    bench_usage_error(PROG, usage_text, what, arg);
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct bench_opt optab[] = {
#define U(name, min, max, member) \
    BENCH_UINT(struct opts, name, min, max, member)
        U("n", 1, 200000, n),
        U("flips", 1, 100000, flips),
        U("gap-ms", 0, 60000, gap_ms),
        U("gap-jitter-ms", 0, 60000, jitter_ms),
        U("warmup", 0, 100, warmup),
        U("timeout", 1, 600000, timeout_ms),
        U("attach-seconds", 1, 86400, attach_seconds),
        U("window", 1, 100000, window),
        U("max-seconds", 1, 86400, max_seconds),
        U("errors", 0, 1000, errors),
#undef U
        BENCH_STR(struct opts, "endpoints", endpoints),
        BENCH_STR(struct opts, "prefix", prefix),
        BENCH_STR(struct opts, "key", key),
        BENCH_STR(struct opts, "rss-pids", rss_pids),
        BENCH_STR(struct opts, "source", source),
        BENCH_STR(struct opts, "system", sys_name),
    };

    *o = (struct opts){ .sys_name = "flipd",
                        .prefix = "bench.fan.",
                        .key = "bench.fan.k",
                        .n = 1000,
                        .flips = 50,
                        .gap_ms = 20,
                        .warmup = 1,
                        .timeout_ms = 5000,
                        .attach_seconds = 60,
                        .window = 32,
                        .max_seconds = 120,
                        .errors = 5 };
    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (o->endpoints == NULL || o->endpoints[0] == '\0') {
        return usage_error("--endpoints is required", NULL);
    }
    o->etcd = strcmp(o->sys_name, "etcd") == 0;
    if (!o->etcd && strcmp(o->sys_name, "flipd") != 0) {
        return usage_error("--system must be flipd or etcd", o->sys_name);
    }
    if (o->key[0] == '\0' ||
        strncmp(o->key, o->prefix, strlen(o->prefix)) != 0) {
        return usage_error("--key must be non-empty and start with --prefix",
                           o->key);
    }
    if ((uint64_t)o->n * o->flips > SAMPLES_MAX) {
        return usage_error("--n x --flips is too large", NULL);
    }
    return 0;
}

/* ---- setup --------------------------------------------------------------- */

static struct bench_addr *ep_at(void *arg, size_t i)
{
    struct endpoint *e = &((struct ctx *)arg)->ep[i];

    memset(e, 0, sizeof *e);
    snprintf(e->role, sizeof e->role, "?");
    return &e->a;
}

static int parse_endpoints(struct ctx *x, const char *csv)
{
    long n = bench_addr_list(PROG, csv, EP_MAX, ep_at, x);

    x->n_ep = n > 0 ? (size_t)n : 0;
    return n > 0 ? 0 : -1;
}

static int parse_source(struct ctx *x, const char *addr)
{
    for (size_t e = 1; e < x->n_ep; e++) {
        if (x->ep[e].a.family != x->ep[0].a.family) {
            fprintf(stderr, "fanout: --source needs endpoints of one family\n");
            return -1;
        }
    }
    return bench_addr_source(PROG, addr, x->ep[0].a.family, &x->src,
                             &x->src_len);
}

/* etcd: POST /v3/watch {"create_request": {"key": PREFIX, "range_end":
 * PREFIX + 1}} (base64); the Host header names the first endpoint (etcd
 * does not look at it). */
static int etcd_greeting(struct ctx *x)
{
    char end[256];
    char k64[400];
    char e64[400];
    char body[1024];
    char req[2048];
    size_t pl = strlen(x->o->prefix);
    size_t n;

    if (pl == 0 || pl >= sizeof end) {
        return -1;
    }
    memcpy(end, x->o->prefix, pl + 1);
    end[pl - 1] = (char)(end[pl - 1] + 1);
    b64_encode(x->o->prefix, pl, k64);
    b64_encode(end, pl, e64);
    snprintf(body, sizeof body,
             "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", k64,
             e64);
    n = http_post(req, sizeof req, x->ep[0].a.name, "/v3/watch", body);
    return n > 0 ? buf_append(&x->greeting, req, n) : -1;
}

/* What every subscriber writes first, encoded once. flipd: Hello (id 1)
 * and Subscribe{prefixes [prefix]} (id 2). */
static int build_greeting(struct ctx *x)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SubscribeRequest sub = FLIP__SUBSCRIBE_REQUEST__INIT;
    char *prefixes[1] = { (char *)x->o->prefix }; /* only read by pack */

    sub.n_prefixes = 1;
    sub.prefixes = prefixes;
    req.has_id = 1;
    req.id = 2;
    req.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
    req.subscribe = &sub;
    if (x->o->etcd ? etcd_greeting(x) != 0
                   : bflip_put_hello(&x->greeting, 1, CLIENT_NAME) != 0 ||
                         bflip_put(&x->greeting, &req) != 0) {
        return -1;
    }
    /* struct sub counts the bytes written in a uint16_t. */
    return buf_len(&x->greeting) <= UINT16_MAX ? 0 : -1;
}

/* Subscriber 0's frames are also unpacked by protobuf-c and compared. */
static void verify_frame(struct ctx *x,
                         const uint8_t *p,
                         size_t n,
                         const struct bflip_view *v)
{
    Flip__Response *r = flip__response__unpack(NULL, n, p);
    const char *bad = NULL;

    if (r == NULL) {
        bad = "protobuf-c cannot unpack it";
    } else if ((r->error != NULL) != (v->has_error != 0) ||
               (uint32_t)r->result_case != v->result) {
        bad = "error/result member differ";
    } else if (r->result_case == FLIP__RESPONSE__RESULT_EVENT) {
        const Flip__Event *ev = r->event;

        if ((unsigned)ev->type != v->ev_type || ev->revision != v->ev_rev) {
            bad = "event type/revision differ";
        } else if (v->ev_type == BFLIP_EV_CHANGE && x->flipping &&
                   v->ev_rev == x->cur_rev) {
            if (ev->n_flags != 1 || ev->flags[0]->key == NULL ||
                strcmp(ev->flags[0]->key, x->o->key) != 0 ||
                ev->flags[0]->value == NULL ||
                ev->flags[0]->value->kind_case != FLIP__VALUE__KIND_INT_VALUE ||
                ev->flags[0]->value->int_value != x->cur_value) {
                bad = "CHANGE does not carry the key and value written";
            }
        }
    }
    if (bad != NULL) {
        x->n_verify_bad++;
        bench_problem(&x->pr, "subscriber 0: frame check failed: %s", bad);
    }
    if (r != NULL) {
        flip__response__free_unpacked(r, NULL);
    }
}

/* ---- subscribers --------------------------------------------------------- */

static void sub_close(struct ctx *x, uint32_t i)
{
    struct sub *s = &x->subs[i];

    if (s->fd >= 0) {
        close(s->fd); /* also leaves the epoll set */
        s->fd = -1;
    }
    free(s->partial);
    free(s->line);
    s->partial = NULL;
    s->line = NULL;
    s->partial_len = s->partial_cap = s->line_len = s->line_cap = 0;
    if (s->phase == SUB_LIVE) {
        x->n_live--;
        x->n_disconnects++;
    } else if (s->phase == SUB_CONNECTING || s->phase == SUB_SUBSCRIBING) {
        x->inflight--;
        x->ep_inflight[s->ep]--;
        x->n_attach_failed++;
    }
    s->phase = SUB_DEAD;
}

static void sub_fail(struct ctx *x, uint32_t i, const char *what)
{
    struct sub *s = &x->subs[i];

    bench_problem(&x->pr, "subscriber %u (%s, %s): %s", i, x->ep[s->ep].a.name,
                  s->phase == SUB_LIVE ? "live" : "attaching", what);
    sub_close(x, i);
}

static int sub_start(struct ctx *x, uint32_t i)
{
    struct sub *s = &x->subs[i];
    const struct endpoint *e = &x->ep[s->ep];
    struct epoll_event ev;
    int one = 1;
    int fd;

    fd = socket(e->a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bench_problem(&x->pr, "subscriber %u: socket: %s", i, strerror(errno));
        s->phase = SUB_DEAD;
        x->n_attach_failed++;
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
        bench_problem(&x->pr, "subscriber %u: SO_TIMESTAMPNS: %s", i,
                      strerror(errno));
    }
    if (x->src_len > 0) {
        if (e->a.family == AF_INET) {
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                             sizeof one);
        }
        if (bind(fd, (const struct sockaddr *)&x->src, x->src_len) != 0) {
            bench_problem(&x->pr, "subscriber %u: bind to --source %s: %s", i,
                          x->o->source, strerror(errno));
            close(fd);
            s->phase = SUB_DEAD;
            x->n_attach_failed++;
            return -1;
        }
    }
    s->fd = fd;
    s->phase = SUB_CONNECTING;
    s->chunk_left = -1;
    x->inflight++;
    x->ep_inflight[s->ep]++;
    if (connect(fd, (const struct sockaddr *)&e->a.sa, e->a.salen) != 0 &&
        errno != EINPROGRESS) {
        char msg[MSG_MAX];

        snprintf(msg, sizeof msg, "connect: %s", strerror(errno));
        sub_fail(x, i, msg);
        return -1;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        char msg[MSG_MAX];

        snprintf(msg, sizeof msg, "epoll_ctl: %s", strerror(errno));
        sub_fail(x, i, msg);
        return -1;
    }
    return 0;
}

/* Starts subscribers while their endpoint's window has room. */
static void fill_window(struct ctx *x)
{
    for (size_t e = 0; e < x->n_ep; e++) {
        while (x->next_start[e] < x->n && x->ep_inflight[e] < x->o->window) {
            uint32_t i = x->next_start[e];

            x->next_start[e] += (uint32_t)x->n_ep;
            (void)sub_start(x, i);
        }
    }
}

/* Connected (or failed): writes Hello + Subscribe, then waits for input
 * only. */
static void sub_writable(struct ctx *x, uint32_t i)
{
    struct sub *s = &x->subs[i];
    struct epoll_event ev;
    int err = 0;
    socklen_t len = sizeof err;
    ssize_t n;

    if (s->sent == 0 &&
        (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
         err != 0)) {
        char msg[MSG_MAX];

        snprintf(msg, sizeof msg, "connect: %s", strerror(err ? err : errno));
        sub_fail(x, i, msg);
        return;
    }
    n = send(s->fd, buf_head(&x->greeting) + s->sent,
             buf_len(&x->greeting) - s->sent, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            char msg[MSG_MAX];

            snprintf(msg, sizeof msg, "send: %s", strerror(errno));
            sub_fail(x, i, msg);
        }
        return;
    }
    s->sent = (uint16_t)(s->sent + (size_t)n);
    if (s->sent < buf_len(&x->greeting)) {
        return;
    }
    s->phase = SUB_SUBSCRIBING;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(x->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0) {
        char msg[MSG_MAX];

        snprintf(msg, sizeof msg, "epoll_ctl: %s", strerror(errno));
        sub_fail(x, i, msg);
    }
}

/* Subscriber i is live from revision rev on (flipd: SNAPSHOT_END; etcd:
 * the watch was created); a later snapshot only moves rev. */
static void sub_attached(struct ctx *x, uint32_t i, uint64_t rev)
{
    struct sub *s = &x->subs[i];

    if (s->phase == SUB_SUBSCRIBING) {
        s->phase = SUB_LIVE;
        s->snap_rev = rev;
        x->inflight--;
        x->ep_inflight[s->ep]--;
        x->n_live++;
        x->n_attached++;
        x->ep[s->ep].n_attached++;
    }
    if (s->last_rev < rev) {
        s->last_rev = rev;
    }
}

/* A CHANGE at `rev` reached subscriber i; `arrival_rt` is its stamp. */
static void on_change(struct ctx *x,
                      uint32_t i,
                      uint64_t rev,
                      uint64_t arrival_rt,
                      uint64_t seen_rt,
                      uint64_t seen_mono)
{
    struct sub *s = &x->subs[i];
    int64_t after_ack;

    x->n_changes++;
    if (rev <= s->last_rev) {
        x->n_dup++;
        bench_problem(&x->pr,
                      "subscriber %u: CHANGE at %" PRIu64 " after %" PRIu64, i,
                      rev, s->last_rev);
        return;
    }
    s->last_rev = rev;
    if (!x->flipping || rev != x->cur_rev) {
        if (x->flipping && rev < x->cur_rev) {
            x->n_late++;
        } else {
            x->n_unexpected++;
            bench_problem(
                &x->pr, "subscriber %u: CHANGE at unexpected revision %" PRIu64,
                i, rev);
        }
        return;
    }
    x->cur_received++;
    /* No stamp in the message, or one that cannot be
     * right (before the send, after the read): time it by the read. */
    if (arrival_rt == 0 || arrival_rt < x->t_send_rt ||
        arrival_rt > seen_rt + 1000000u) {
        arrival_rt = seen_rt;
        x->n_kts_bad++;
    } else {
        x->n_kts_ok++;
    }
    after_ack = (int64_t)(arrival_rt - x->t_ack_rt);
    if (after_ack > x->cur_last_ns) {
        x->cur_last_ns = after_ack;
    }
    if (after_ack > x->cur_ep_last[s->ep]) {
        x->cur_ep_last[s->ep] = after_ack;
    }
    if ((int64_t)(seen_mono - x->t_ack_mono) > x->cur_seen_ns) {
        x->cur_seen_ns = (int64_t)(seen_mono - x->t_ack_mono);
    }
    if (x->recording && x->n_samples < x->cap_samples) {
        x->s_ack[x->n_samples] = after_ack;
        x->s_send[x->n_samples] = (int64_t)(arrival_rt - x->t_send_rt);
        x->n_samples++;
    }
}

/* One whole frame of subscriber i. Returns -1 when the subscriber was
 * closed. */
static int on_frame(struct ctx *x,
                    uint32_t i,
                    const uint8_t *p,
                    size_t n,
                    uint64_t arrival_rt,
                    uint64_t seen_rt,
                    uint64_t seen_mono)
{
    struct sub *s = &x->subs[i];
    struct bflip_view v;

    x->n_frames++;
    if (bflip_scan(p, n, &v) < 0) {
        x->n_badframe++;
        sub_fail(x, i, "malformed Response frame");
        return -1;
    }
    if (i == 0) {
        verify_frame(x, p, n, &v);
    }
    if (v.has_error) {
        char msg[MSG_MAX];
        unsigned slot = v.status < STATUS_SLOTS ? v.status : STATUS_SLOTS;

        x->err_status[slot]++;
        snprintf(msg, sizeof msg,
                 "server error %s (id %" PRIu64 ", resume %" PRIu64 "): %.*s",
                 bflip_status_name(v.status), v.id, v.resume_rev,
                 (int)v.msg_len, v.msg != NULL ? (const char *)v.msg : "");
        sub_fail(x, i, msg);
        return -1;
    }
    if (v.result == BFLIP_R_SUB) {
        s->got_result = 1;
        return 0;
    }
    if (v.result != BFLIP_R_EVENT) {
        return 0; /* HelloResult */
    }
    switch (v.ev_type) {
    case BFLIP_EV_SNAPSHOT_BEGIN:
        if (s->phase == SUB_LIVE || v.ev_resync) {
            x->n_resync++;
            bench_problem(&x->pr, "subscriber %u: %s snapshot at %" PRIu64, i,
                          v.ev_resync ? "resync" : "second", v.ev_rev);
        }
        break;
    case BFLIP_EV_SNAPSHOT_END:
        sub_attached(x, i, v.ev_rev);
        break;
    case BFLIP_EV_CHANGE:
        on_change(x, i, v.ev_rev, arrival_rt, seen_rt, seen_mono);
        break;
    case BFLIP_EV_HEARTBEAT:
        x->n_heartbeats++;
        break;
    default:
        break;
    }
    return 0;
}

/* Makes room for `need` bytes in subscriber i's frame buffer. */
static int frame_room(struct ctx *x, uint32_t i, size_t need)
{
    struct sub *s = &x->subs[i];
    size_t cap = s->partial_cap ? s->partial_cap : FRAME_BUF_MIN;
    uint8_t *np;

    if (need <= s->partial_cap) {
        return 0;
    }
    while (cap < need) {
        cap *= 2;
    }
    np = realloc(s->partial, cap);
    if (np == NULL) {
        sub_fail(x, i, "out of memory");
        return -1;
    }
    s->partial = np;
    s->partial_cap = (uint32_t)cap;
    return 0;
}

/* Reads from subscriber i until one whole frame is in, the socket is empty
 * or READS_PER_WAKE reads were made; handles that frame. Level-triggered
 * epoll reports the socket again while more is pending.
 *
 * Each recvmsg asks for no more than the rest of the current frame, so the
 * receive stamp the kernel reports (that of the last segment read) belongs
 * to this frame's last bytes. One large read would be cheaper, but a frame
 * read together with a later one (a heartbeat that came in before this
 * process got to the socket) would get the later frame's stamp: with 10000
 * sockets to go through, that skews the slowest deliveries. */
static void sub_readable(struct ctx *x, uint32_t i)
{
    struct sub *s = &x->subs[i];

    for (int round = 0; round < READS_PER_WAKE; round++) {
        union
        {
            char buf[CMSG_SPACE(sizeof(struct timespec))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov;
        struct msghdr m;
        size_t have = s->partial_len;
        size_t want;
        uint32_t len = 0;
        ssize_t got;

        if (have < BFLIP_HDR) {
            want = BFLIP_HDR - have;
        } else {
            len = buf_get_u32be(s->partial);
            want = BFLIP_HDR + (size_t)len - have;
        }
        if (frame_room(x, i, have + want) != 0) {
            return;
        }
        iov.iov_base = s->partial + have;
        iov.iov_len = want;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        got = want == 0 ? 0 : recvmsg(s->fd, &m, MSG_DONTWAIT);
        if (got < 0) {
            char msg[MSG_MAX];

            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                return;
            }
            x->n_ioerr++;
            snprintf(msg, sizeof msg, "recv: %s", strerror(errno));
            sub_fail(x, i, msg);
            return;
        }
        if (got == 0 && want > 0) {
            x->n_eof++;
            sub_fail(x, i, "connection closed by the node");
            return;
        }
        s->partial_len += (uint32_t)got;
        if ((size_t)got < want) {
            return; /* the rest has not arrived yet */
        }
        if (s->partial_len == BFLIP_HDR) {
            len = buf_get_u32be(s->partial);
            if (len > BFLIP_FRAME_LIMIT) {
                x->n_badframe++;
                sub_fail(x, i, "frame over the 1 MiB limit");
                return;
            }
            if (len > 0) {
                continue; /* now the body */
            }
        }
        /* A whole frame. */
        s->partial_len = 0;
        (void)on_frame(x, i, s->partial + BFLIP_HDR, len,
                       bench_msg_stamp_ns(&m), bench_real_ns(),
                       bench_mono_ns());
        return;
    }
}

/* ---- etcd watch streams -------------------------------------------------- */

/* One JSON message (a line) of watcher i. -1 if the watcher was closed. */
static int etcd_message(struct ctx *x,
                        uint32_t i,
                        char *msg,
                        uint64_t arrival_rt,
                        uint64_t seen_rt)
{
    const char *p;
    uint64_t rev = 0;

    x->n_frames++;
    if (strstr(msg, "\"error\"") != NULL) {
        char what[160];

        snprintf(what, sizeof what, "error message: %.120s", msg);
        sub_fail(x, i, what);
        return -1;
    }
    if (strstr(msg, "\"canceled\":true") != NULL) {
        x->n_canceled++;
        sub_fail(x, i, "watch canceled by the server");
        return -1;
    }
    if (x->subs[i].phase == SUB_SUBSCRIBING &&
        strstr(msg, "\"created\":true") != NULL) {
        (void)json_u64(msg, "revision", &rev);
        sub_attached(x, i, rev);
        return 0;
    }
    p = strstr(msg, "\"events\"");
    /* No events: a progress message. One put per revision: every event of
     * a message shares it. */
    if (p != NULL && json_u64(p, "mod_revision", &rev)) {
        on_change(x, i, rev, arrival_rt, seen_rt, bench_mono_ns());
    }
    return 0;
}

static int line_append(struct sub *s, const uint8_t *p, size_t n)
{
    if ((size_t)s->line_len + n + 1 > s->line_cap) {
        size_t cap = s->line_cap ? s->line_cap : 512;
        char *np;

        while (cap < (size_t)s->line_len + n + 1) {
            cap *= 2;
        }
        if (cap > RAW_MAX || (np = realloc(s->line, cap)) == NULL) {
            return -1;
        }
        s->line = np;
        s->line_cap = (uint32_t)cap;
    }
    memcpy(s->line + s->line_len, p, n);
    s->line_len += (uint32_t)n;
    s->line[s->line_len] = '\0';
    return 0;
}

/* Takes the chunk data at raw[*off..) into the message text and handles
 * every whole line. -1 if the watcher was closed. */
static int etcd_chunk(struct ctx *x,
                      uint32_t i,
                      size_t *off,
                      uint64_t arrival_rt,
                      uint64_t seen_rt)
{
    struct sub *s = &x->subs[i];
    size_t take = s->partial_len - *off;
    uint8_t *nl;

    if (take > (size_t)s->chunk_left) {
        take = (size_t)s->chunk_left;
    }
    if (line_append(s, s->partial + *off, take) != 0) {
        sub_fail(x, i, "message too long");
        return -1;
    }
    *off += take;
    s->chunk_left -= (long)take;
    if (s->chunk_left == 0) {
        s->chunk_left = -1;
        s->skip_crlf = 1;
    }
    while ((nl = memchr(s->line, '\n', s->line_len)) != NULL) {
        size_t ll = (size_t)(nl - (uint8_t *)s->line);

        s->line[ll] = '\0';
        if (etcd_message(x, i, s->line, arrival_rt, seen_rt) != 0) {
            return -1;
        }
        memmove(s->line, s->line + ll + 1, s->line_len - ll - 1);
        s->line_len -= (uint32_t)(ll + 1);
        s->line[s->line_len] = '\0';
    }
    return 0;
}

/* De-chunks what watcher i has received and handles every whole message.
 * -1 if the watcher was closed. */
static int etcd_parse(struct ctx *x,
                      uint32_t i,
                      uint64_t arrival_rt,
                      uint64_t seen_rt)
{
    struct sub *s = &x->subs[i];
    size_t off = 0;

    if (!s->head_done) {
        struct http_head h = { 0 };
        int r = http_parse_head((const char *)s->partial, s->partial_len, &h);

        if (r == 0) {
            return 0;
        }
        if (r < 0 || h.status != 200 || !h.chunked) {
            char what[96];

            snprintf(what, sizeof what, "watch refused: HTTP %d%s", h.status,
                     r < 0 ? " (malformed)" : "");
            sub_fail(x, i, what);
            return -1;
        }
        s->head_done = 1;
        off = h.len;
    }
    for (;;) {
        if (s->skip_crlf) {
            if (s->partial_len - off < 2) {
                break;
            }
            off += 2;
            s->skip_crlf = 0;
        }
        if (s->chunk_left < 0) {
            const uint8_t *nl =
                memchr(s->partial + off, '\n', s->partial_len - off);
            unsigned long sz;

            if (nl == NULL) {
                break;
            }
            sz = strtoul((const char *)s->partial + off, NULL, 16);
            off = (size_t)(nl - s->partial) + 1;
            if (sz == 0) {
                sub_fail(x, i, "watch stream ended");
                return -1;
            }
            s->chunk_left = (long)sz;
        }
        if (off == s->partial_len) {
            break;
        }
        if (etcd_chunk(x, i, &off, arrival_rt, seen_rt) != 0) {
            return -1;
        }
    }
    if (off > 0) {
        memmove(s->partial, s->partial + off, s->partial_len - off);
        s->partial_len -= (uint32_t)off;
    }
    return 0;
}

/* Between flips nothing else arrives on a watch stream (no progress
 * notifications are asked for), so one large read never mixes two flips
 * and its stamp times the event it completes. */
static void etcd_readable(struct ctx *x, uint32_t i)
{
    struct sub *s = &x->subs[i];

    for (int round = 0; round < 4; round++) {
        union
        {
            char buf[CMSG_SPACE(sizeof(struct timespec))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = x->rbuf, .iov_len = sizeof x->rbuf };
        struct msghdr m;
        ssize_t got;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        got = recvmsg(s->fd, &m, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && errno == EAGAIN) {
            return;
        }
        if (got < 0) {
            x->n_ioerr++;
            sub_fail(x, i, strerror(errno));
            return;
        }
        if (got == 0) {
            x->n_eof++;
            sub_fail(x, i, "connection closed by the server");
            return;
        }
        if ((size_t)s->partial_len + (size_t)got > RAW_MAX) {
            sub_fail(x, i, "too much unparsed input");
            return;
        }
        if (frame_room(x, i, (size_t)s->partial_len + (size_t)got) != 0) {
            return;
        }
        memcpy(s->partial + s->partial_len, x->rbuf, (size_t)got);
        s->partial_len += (uint32_t)got;
        if (etcd_parse(x, i, bench_msg_stamp_ns(&m), bench_real_ns()) != 0 ||
            (size_t)got < sizeof x->rbuf) {
            return;
        }
    }
}

/* ---- the loop ------------------------------------------------------------ */

enum until
{
    UNTIL_TIME,     /* run until `end` */
    UNTIL_ATTACHED, /* every subscriber live or failed */
    UNTIL_DELIVERED /* every live subscriber has the current flip */
};

static int done(const struct ctx *x, enum until u)
{
    switch (u) {
    case UNTIL_ATTACHED:
        return x->n_attached + x->n_attach_failed >= x->n;
    case UNTIL_DELIVERED:
        return x->cur_received >= x->n_live;
    case UNTIL_TIME:
        break;
    }
    return 0;
}

/* Runs the epoll loop until the condition holds or monotonic `end` (and
 * never past --max-seconds). 0 when the condition held. */
static int run_loop(struct ctx *x, enum until u, uint64_t end)
{
    struct epoll_event evs[EVENTS_MAX];

    if (end > x->deadline) {
        end = x->deadline;
    }
    for (;;) {
        uint64_t now;
        int timeout_ms;
        int n;

        if (u == UNTIL_ATTACHED) {
            fill_window(x);
        }
        if (u != UNTIL_TIME && done(x, u)) {
            return 0;
        }
        now = bench_mono_ns();
        if (now >= end) {
            if (end == x->deadline && u != UNTIL_TIME) {
                x->truncated = 1;
            }
            return -1;
        }
        timeout_ms = (int)((end - now + 999999u) / 1000000u);
        if (timeout_ms > 100) {
            timeout_ms = 100;
        }
        n = epoll_wait(x->epfd, evs, EVENTS_MAX, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "fanout: epoll_wait: %s\n", strerror(errno));
            x->truncated = 1;
            return -1;
        }
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            struct sub *s = &x->subs[i];

            if (s->phase == SUB_CONNECTING) {
                sub_writable(x, i);
            } else if (s->phase == SUB_SUBSCRIBING || s->phase == SUB_LIVE) {
                x->o->etcd ? etcd_readable(x, i) : sub_readable(x, i);
            }
        }
    }
}

/* ---- writer -------------------------------------------------------------- */

/* Each endpoint's role: recorded before the run (`check` 0); after it
 * (`check` 1) a different role is reported as a problem. */
static void endpoint_roles(struct ctx *x, struct flip_client *c, int check)
{
    for (size_t k = 0; k < x->n_ep; k++) {
        struct flip_node_status st;
        const char *role = "?";

        memset(&st, 0, sizeof st);
        if (flip_status_node(c, x->ep[k].a.name, 0, &st) == FLIP_OK) {
            role = st.role;
        }
        if (!check) {
            snprintf(x->ep[k].role, sizeof x->ep[k].role, "%s", role);
        } else if (strcmp(role, x->ep[k].role) != 0) {
            x->roles_changed = 1;
            bench_problem(&x->pr, "%s was %s at the start and is %s at the end",
                          x->ep[k].a.name, x->ep[k].role, role);
        }
        flip_node_status_clear(&st);
    }
}

/* etcd: one put of KEY = value over the writer's keep-alive connection:
 * FLIP_OK with *rev the answer's header revision, or a FLIP_* error. */
static int etcd_put(struct ctx *x, int64_t value, uint64_t *rev)
{
    char req[2048];
    char val[32];
    size_t len;
    int st;

    snprintf(val, sizeof val, "%" PRId64, value);
    len = http_put_request(req, sizeof req, x->w.a.name, x->o->key, val);
    st = len > 0 ? bench_http_call(&x->w, req, len) : -1;
    if (st == 200 && json_u64(x->w.body, "revision", rev)) {
        return FLIP_OK;
    }
    if (st < 0) {
        bench_problem(&x->pr,
                      "writer: put to %s: connection failed or no answer "
                      "within %u ms",
                      x->w.a.name, x->o->timeout_ms);
        return FLIP_TIMEOUT;
    }
    bench_problem(&x->pr, "writer: put failed: HTTP %d %.100s", st, x->w.body);
    return FLIP_UNAVAILABLE;
}

/* One flip: set, then wait for every live subscriber. */
static void do_flip(struct ctx *x,
                    struct flip_client *c,
                    int64_t value,
                    struct flip_rec *rec)
{
    struct flip_value v;
    uint64_t t_send_mono;
    uint64_t rev = 0;
    uint64_t now = bench_mono_ns();
    uint64_t left_ms = now < x->deadline ? (x->deadline - now) / 1000000u : 1;
    int rv;

    memset(rec, 0, sizeof *rec);
    memset(&v, 0, sizeof v);
    v.type = FLIP_TYPE_INT;
    v.u.i = value;
    if (c != NULL) {
        flip_client_set_timeout(c, left_ms < x->o->timeout_ms
                                       ? (unsigned)(left_ms ? left_ms : 1)
                                       : x->o->timeout_ms);
    }
    x->t_send_rt = bench_real_ns();
    t_send_mono = bench_mono_ns();
    rv = x->o->etcd ? etcd_put(x, value, &rev)
                    : flip_set(c, x->o->key, &v, NULL, &rev);
    x->t_ack_mono = bench_mono_ns();
    x->t_ack_rt = bench_real_ns();
    rec->rv = rv;
    rec->ack_ns = (int64_t)(x->t_ack_mono - t_send_mono);
    if (rv != FLIP_OK) {
        if (c != NULL) {
            bench_problem(&x->pr, "flip_set %s = %" PRId64 ": %s: %s",
                          x->o->key, value, flip_strerror(rv),
                          flip_client_errmsg(c));
        }
        return;
    }
    rec->rev = rev;
    x->cur_rev = rev;
    x->cur_value = value;
    x->cur_received = 0;
    x->cur_last_ns = INT64_MIN;
    x->cur_seen_ns = INT64_MIN;
    for (size_t k = 0; k < EP_MAX; k++) {
        x->cur_ep_last[k] = INT64_MIN;
    }
    x->flipping = 1;
    (void)run_loop(x, UNTIL_DELIVERED,
                   x->t_ack_mono + (uint64_t)x->o->timeout_ms * 1000000u);
    x->flipping = 0;
    rec->received = x->cur_received;
    rec->missing = x->n_attached - x->cur_received;
    rec->last_ack_ns = x->cur_last_ns;
    rec->last_send_ns =
        x->cur_last_ns == INT64_MIN
            ? INT64_MIN
            : x->cur_last_ns + (int64_t)(x->t_ack_rt - x->t_send_rt);
    rec->seen_ack_ns = x->cur_seen_ns;
    memcpy(rec->ep_last_ack_ns, x->cur_ep_last, sizeof rec->ep_last_ack_ns);
}

/* ---- report -------------------------------------------------------------- */

struct summary
{
    size_t n_ok; /* flips acked */
    uint64_t missing;
    uint32_t failed; /* flips not acked */
    struct bench_dist ack;
    struct bench_dist last_ack;
    struct bench_dist last_send;
    struct bench_dist seen_ack;
    struct bench_dist sub_send;
    struct bench_dist sub_ack;
    struct bench_dist ep_last_ack[EP_MAX];
};

static int summarise_run(struct ctx *x,
                         const struct flip_rec *recs,
                         size_t n_recs,
                         struct summary *sm)
{
    int64_t *tmp = calloc(n_recs + 1, sizeof *tmp);
    size_t k;

    if (tmp == NULL) {
        return -1;
    }
    memset(sm, 0, sizeof *sm);
#define DIST_OF(field, dst)                                            \
    do {                                                               \
        k = 0;                                                         \
        for (size_t r = 0; r < n_recs; r++) {                          \
            if (recs[r].rv == FLIP_OK && recs[r].field != INT64_MIN) { \
                tmp[k++] = recs[r].field;                              \
            }                                                          \
        }                                                              \
        (dst) = bench_summarise(tmp, k);                               \
    } while (0)
    DIST_OF(ack_ns, sm->ack);
    DIST_OF(last_ack_ns, sm->last_ack);
    DIST_OF(last_send_ns, sm->last_send);
    DIST_OF(seen_ack_ns, sm->seen_ack);
    for (size_t e = 0; e < x->n_ep; e++) {
        DIST_OF(ep_last_ack_ns[e], sm->ep_last_ack[e]);
    }
#undef DIST_OF
    for (size_t r = 0; r < n_recs; r++) {
        if (recs[r].rv == FLIP_OK) {
            sm->n_ok++;
            sm->missing += recs[r].missing;
        } else {
            sm->failed++;
        }
    }
    free(tmp);
    sm->sub_send = bench_summarise(x->s_send, x->n_samples);
    sm->sub_ack = bench_summarise(x->s_ack, x->n_samples);
    return 0;
}

static double ms_or_none(int64_t ns)
{
    return ns == INT64_MIN ? -1.0 : (double)ns / 1e6;
}

static void print_json(const struct ctx *x,
                       const struct flip_rec *recs,
                       size_t n_recs,
                       const struct summary *sm,
                       const struct bench_rss *r0,
                       const struct bench_rss *r1,
                       size_t n_rss)
{
    int first = 1;

    printf(
        "{\"system\":\"%s\",\"n\":%u,\"flips\":%u,\"gap_ms\":%u"
        ",\"gap_jitter_ms\":%u,\"warmup\":%u,\"endpoints\":[",
        x->o->sys_name, x->n, x->o->flips, x->o->gap_ms, x->o->jitter_ms,
        x->o->warmup);
    for (size_t e = 0; e < x->n_ep; e++) {
        printf("%s{\"addr\":", e ? "," : "");
        bench_json_str(x->ep[e].a.name);
        printf(",\"role\":");
        bench_json_str(x->ep[e].role);
        printf(",\"subscribers\":%u,\"attached\":%u", x->ep[e].n_subs,
               x->ep[e].n_attached);
        bench_json_dist("last_after_ack_ms", &sm->ep_last_ack[e], 1);
        printf("}");
    }
    printf("],\"key\":");
    bench_json_str(x->o->key);
    printf(
        ",\"attached\":%u,\"attach_failed\":%u"
        ",\"attach_complete\":%s,\"attach_s\":%.3f,\"truncated\":%s"
        ",\"roles_changed\":%s",
        x->n_attached, x->n_attach_failed,
        x->attach_complete ? "true" : "false", (double)x->attach_ns / 1e9,
        x->truncated ? "true" : "false", x->roles_changed ? "true" : "false");
    printf(",\"flips_ok\":%zu,\"flips_failed\":%u,\"missing\":%" PRIu64,
           sm->n_ok, sm->failed, sm->missing);
    bench_json_dist("ack_ms", &sm->ack, 1);
    bench_json_dist("last_after_ack_ms", &sm->last_ack, 1);
    bench_json_dist("last_after_send_ms", &sm->last_send, 1);
    bench_json_dist("seen_last_after_ack_ms", &sm->seen_ack, 1);
    bench_json_dist("sub_after_send_ms", &sm->sub_send, 1);
    bench_json_dist("sub_after_ack_ms", &sm->sub_ack, 1);
    printf(
        ",\"disconnects\":%u,\"eof\":%u,\"io_errors\":%u,\"bad_frames\":%u"
        ",\"late\":%" PRIu64 ",\"duplicates\":%" PRIu64
        ",\"unexpected\":%" PRIu64 ",\"resyncs\":%" PRIu64
        ",\"verify_failed\":%" PRIu64 ",\"heartbeats\":%" PRIu64
        ",\"frames\":%" PRIu64 ",\"events\":%" PRIu64
        ",\"canceled\":%u"
        ",\"stamps_ok\":%" PRIu64 ",\"stamps_replaced\":%" PRIu64,
        x->n_disconnects, x->n_eof, x->n_ioerr, x->n_badframe, x->n_late,
        x->n_dup, x->n_unexpected, x->n_resync, x->n_verify_bad,
        x->n_heartbeats, x->n_frames, x->n_changes, x->n_canceled, x->n_kts_ok,
        x->n_kts_bad);
    printf(",\"server_errors\":{");
    for (unsigned k = 0; k <= STATUS_SLOTS; k++) {
        if (x->err_status[k] != 0) {
            printf("%s\"%s\":%u", first ? "" : ",",
                   k < STATUS_SLOTS ? bflip_status_name(k) : "other",
                   x->err_status[k]);
            first = 0;
        }
    }
    printf("},\"first_problem\":");
    if (x->pr.first[0] != '\0') {
        bench_json_str(x->pr.first);
    } else {
        fputs("null", stdout);
    }
    bench_json_rss("rss_attached", r0, n_rss);
    bench_json_rss("rss_after", r1, n_rss);
    printf(",\"per_flip\":[");
    for (size_t k = 0; k < n_recs; k++) {
        const struct flip_rec *f = &recs[k];

        printf("%s{\"rev\":%" PRIu64
               ",\"ok\":%s,\"ack_ms\":%.3f"
               ",\"last_after_ack_ms\":%.3f,\"last_after_send_ms\":%.3f"
               ",\"seen_last_after_ack_ms\":%.3f,\"received\":%u"
               ",\"missing\":%u}",
               k ? "," : "", f->rev, f->rv == FLIP_OK ? "true" : "false",
               (double)f->ack_ns / 1e6, ms_or_none(f->last_ack_ns),
               ms_or_none(f->last_send_ns), ms_or_none(f->seen_ack_ns),
               f->received, f->missing);
    }
    printf("]}\n");
}

/* ---- main ---------------------------------------------------------------- */

static int setup(struct ctx *x, const struct opts *o)
{
    memset(x, 0, sizeof *x);
    x->o = o;
    x->n = o->n;
    x->epfd = -1;
    x->w.fd = -1;
    x->pr.prog = PROG;
    x->pr.limit = o->errors;
    x->deadline = bench_mono_ns() + (uint64_t)o->max_seconds * 1000000000u;
    if (bench_raise_nofile(PROG, o->n) != 0 ||
        parse_endpoints(x, o->endpoints) != 0) {
        return -1;
    }
    if (o->source != NULL && parse_source(x, o->source) != 0) {
        return -1;
    }
    x->w.a = x->ep[0].a;
    x->w.timeout_ms = o->timeout_ms;
    if (build_greeting(x) != 0) {
        fprintf(stderr,
                "fanout: cannot encode Hello/Subscribe (--prefix too long?)\n");
        return -1;
    }
    x->subs = calloc(o->n, sizeof *x->subs);
    x->cap_samples = (size_t)o->n * o->flips;
    x->s_send = calloc(x->cap_samples, sizeof *x->s_send);
    x->s_ack = calloc(x->cap_samples, sizeof *x->s_ack);
    if (x->subs == NULL || x->s_send == NULL || x->s_ack == NULL) {
        fprintf(stderr, "fanout: out of memory\n");
        return -1;
    }
    for (uint32_t i = 0; i < x->n; i++) {
        x->subs[i].fd = -1;
        x->subs[i].ep = (uint8_t)(i % x->n_ep);
        x->ep[i % x->n_ep].n_subs++;
    }
    for (size_t e = 0; e < x->n_ep; e++) {
        x->next_start[e] = (uint32_t)e;
    }
    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        fprintf(stderr, "fanout: epoll_create1: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void teardown(struct ctx *x)
{
    if (x->subs != NULL) {
        for (uint32_t i = 0; i < x->n; i++) {
            if (x->subs[i].fd >= 0) {
                struct linger lg = { .l_onoff = 1, .l_linger = 0 };

                (void)setsockopt(x->subs[i].fd, SOL_SOCKET, SO_LINGER, &lg,
                                 sizeof lg);
                close(x->subs[i].fd);
            }
            free(x->subs[i].partial);
            free(x->subs[i].line);
        }
    }
    bench_http_close(&x->w);
    if (x->epfd >= 0) {
        close(x->epfd);
    }
    buf_close(&x->greeting);
    free(x->subs);
    free(x->s_send);
    free(x->s_ack);
}

int main(int argc, char **argv)
{
    struct opts o;
    static struct ctx x; /* the etcd buffers make it large */
    struct flip_client *c = NULL;
    struct flip_rec *recs = NULL;
    struct summary sm;
    struct bench_rss r0[BENCH_PIDS_MAX];
    struct bench_rss r1[BENCH_PIDS_MAX];
    size_t n_rss = 0;
    size_t n_recs = 0;
    uint64_t t0;
    uint64_t rng = bench_real_ns() | 1u;
    int code = EXIT_USAGE;
    int rv;

    rv = parse_args(argc, argv, &o);
    if (rv != 0) {
        return rv;
    }
    if (setup(&x, &o) != 0) {
        teardown(&x);
        return EXIT_USAGE;
    }
    recs = calloc(o.flips, sizeof *recs);
    if (recs == NULL) {
        fprintf(stderr, "fanout: out of memory\n");
        goto out;
    }
    if (!o.etcd) {
        rv = flip_client_new(&c, o.endpoints, CLIENT_NAME);
        if (rv != FLIP_OK) {
            fprintf(stderr, "fanout: client: %s\n", flip_strerror(rv));
            goto out;
        }
        flip_client_set_timeout(c, o.timeout_ms);
        endpoint_roles(&x, c, 0);
    }

    /* Attach. */
    t0 = bench_mono_ns();
    (void)run_loop(&x, UNTIL_ATTACHED,
                   t0 + (uint64_t)o.attach_seconds * 1000000000u);
    x.attach_ns = bench_mono_ns() - t0;
    if (o.rss_pids != NULL) {
        n_rss = bench_read_rss(o.rss_pids, r0);
        memcpy(r1, r0, sizeof r1);
    }
    x.attach_complete = x.n_attached == x.n;
    if (!x.attach_complete) {
        fprintf(stderr,
                "fanout: only %u of %u subscribers attached within %u s "
                "(%u failed, %u still setting up)%s%s\n",
                x.n_attached, x.n, o.attach_seconds, x.n_attach_failed,
                x.inflight, x.pr.first[0] ? "; first problem: " : "",
                x.pr.first);
        goto report;
    }

    /* Warmup: connects the writer, finds the leader, creates the key. */
    for (unsigned w = 0; w < o.warmup && bench_mono_ns() < x.deadline; w++) {
        struct flip_rec wr;

        do_flip(&x, c, 0, &wr);
        (void)run_loop(
            &x, UNTIL_TIME,
            bench_mono_ns() + bench_gap_ns(o.gap_ms, o.jitter_ms, &rng));
    }
    x.n_samples = 0;
    x.recording = 1;
    for (unsigned f = 0; f < o.flips; f++) {
        if (bench_mono_ns() >= x.deadline) {
            x.truncated = 1;
            break;
        }
        do_flip(&x, c, (int64_t)f + 1, &recs[n_recs++]);
        if (f + 1 < o.flips) {
            (void)run_loop(
                &x, UNTIL_TIME,
                bench_mono_ns() + bench_gap_ns(o.gap_ms, o.jitter_ms, &rng));
        }
    }
    x.recording = 0;
    if (o.rss_pids != NULL) {
        (void)bench_read_rss(o.rss_pids, r1);
    }
    if (c != NULL) {
        endpoint_roles(&x, c, 1);
    }
report:
    if (summarise_run(&x, recs, n_recs, &sm) != 0) {
        fprintf(stderr, "fanout: out of memory\n");
        goto out;
    }
    print_json(&x, recs, n_recs, &sm, r0, r1, n_rss);
    fflush(stdout);
    code = !x.attach_complete ? EXIT_USAGE
           : sm.failed > 0 || sm.missing > 0 || x.truncated ||
                   x.n_disconnects > 0 || x.n_dup > 0 || x.n_unexpected > 0 ||
                   x.n_resync > 0 || x.n_verify_bad > 0 || x.roles_changed
               ? EXIT_FAILED
               : 0;
out:
    flip_client_free(c);
    free(recs);
    teardown(&x);
    return code;
}
