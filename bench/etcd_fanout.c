/* etcd_fanout: watch fan-out of an etcd cluster, seen by N watchers; the
 * etcd counterpart of bench/fanout.c, with the same measurement.
 *
 *   etcd_fanout --endpoints H:P,... [--n 1000] [--flips 50] [--gap-ms 20]
 *               [--gap-jitter-ms 0] [--prefix bench.fan.] [--key
 *               bench.fan.k] [--warmup 1] [--timeout 5000]
 *               [--attach-seconds 60] [--window 32] [--max-seconds 120]
 *               [--rss-pids PID,...] [--source ADDR] [--errors 5] [--json]
 *
 * One process, one thread, one epoll loop. N watchers, spread round-robin
 * over the endpoints, each on its own keep-alive HTTP/1.1 connection to
 * etcd's v3 JSON gateway: POST /v3/watch with {"create_request": {"key":
 * PREFIX, "range_end": PREFIX + 1}} (base64), answered by a chunked
 * stream of JSON messages, one per line. A watcher is attached once its
 * {"created": true} message arrived. At most --window watchers per
 * endpoint are being set up at once; fewer than N attached within
 * --attach-seconds ends the run (exit 2, JSON still printed, saying how
 * many attached).
 *
 * The writer puts KEY over its own keep-alive connection to the first
 * endpoint (give the leader first: flipd's writer ends up on the leader
 * too), values 1..F after --warmup untimed puts of 0. For each flip: t_send,
 * the put's answer (its header revision) at t_ack, then the loop runs
 * until every attached watcher has received an event with that
 * mod_revision, or --timeout ms after the ack ("missing"). Between flips
 * the loop keeps reading for --gap-ms plus a random 0..--gap-jitter-ms.
 *
 * Receive times are the kernel's (SO_TIMESTAMPNS) stamp of the last
 * segment of the read that completed the event, as in fanout.c: the loop
 * does not run while the put waits for its answer. Between flips nothing
 * else arrives on a watch stream (no progress notifications are asked
 * for), so one read never mixes two flips. A missing or implausible stamp
 * is replaced by the read time, and counted.
 *
 * Sockets: --source binds every watcher socket to that local address
 * (IP_BIND_ADDRESS_NO_PORT); at the end they are closed with a reset
 * (SO_LINGER 0), leaving no TIME_WAIT behind.
 *
 * JSON output uses fanout.c's field names for the same figures.
 *
 * Exit status: 0 every flip acked and delivered to every watcher with no
 * disconnect; 1 something missing, failed or truncated; 2 usage or setup
 * error, including watchers that could not attach. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
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
#include "bench/lib/bfan.h"
#include "bench/lib/bopt.h"
#include "bench/lib/breport.h"
#include "bench/lib/bstat.h"

#define EP_MAX      16
#define EVENTS_MAX  1024
#define RAW_MAX     (1024u * 1024u) /* unparsed bytes kept per watcher */
#define READ_BUF    65536u
#define EXIT_FAILED 1
#define EXIT_USAGE  2
#define PROG        "etcd_fanout"

struct opts
{
    const char *endpoints;
    const char *prefix;
    const char *key;
    const char *rss_pids;
    const char *source;
    unsigned n;
    unsigned flips;
    unsigned gap_ms;
    unsigned jitter_ms;
    unsigned warmup;
    unsigned timeout_ms;
    unsigned attach_seconds;
    unsigned window;
    unsigned max_seconds;
    unsigned errors;
    int json;
};

enum phase
{
    W_IDLE = 0,
    W_CONNECTING,
    W_WATCHING, /* request sent, "created" not seen */
    W_LIVE,
    W_DEAD
};

struct watcher
{
    int fd;
    uint8_t phase;
    uint8_t ep;
    uint8_t head_done;
    uint16_t sent;
    long chunk_left; /* data bytes left in the current chunk; -1: size line */
    int skip_crlf;   /* the CRLF after a chunk's data is pending */
    uint8_t *raw;    /* bytes received, not parsed yet */
    uint32_t raw_len;
    uint32_t raw_cap;
    char *line; /* de-chunked text of the current message */
    uint32_t line_len;
    uint32_t line_cap;
    uint64_t last_rev;
};

struct endpoint
{
    struct bench_addr a;
    uint32_t n_subs;
    uint32_t n_attached;
};

struct flip_rec
{
    uint64_t rev;
    int ok;
    int64_t ack_ns;
    int64_t last_ack_ns;
    int64_t last_send_ns;
    uint32_t received;
    uint32_t missing;
};

struct ctx
{
    const struct opts *o;
    struct endpoint ep[EP_MAX];
    size_t n_ep;
    struct sockaddr_storage src;
    socklen_t src_len;
    struct watcher *w;
    uint32_t n;
    int epfd;
    char request[2048];
    size_t request_len;
    uint64_t deadline;
    int truncated;

    uint32_t next_start[EP_MAX];
    uint32_t ep_inflight[EP_MAX];
    uint32_t n_live;
    uint32_t n_attached;
    uint32_t n_attach_failed;
    uint64_t attach_ns;

    int flipping;
    int recording;
    uint64_t cur_rev;
    uint64_t t_send_rt;
    uint64_t t_ack_rt;
    uint32_t cur_received;
    int64_t cur_last_ns;
    int64_t *s_send;
    int64_t *s_ack;
    size_t n_samples;
    size_t cap_samples;

    /* writer connection */
    int wfd;
    size_t wep;
    char wbuf[65536];
    char wbody[16384];

    uint64_t n_events;
    uint64_t n_dup;
    uint64_t n_unexpected;
    uint64_t n_late;
    uint64_t n_kts_ok;
    uint64_t n_kts_bad;
    uint32_t n_disconnects;
    uint32_t n_canceled;
    struct bench_problems pr;
    uint8_t rbuf[READ_BUF];
};

static const char usage_text[] =
    "usage: etcd_fanout --endpoints H:P,... [options]\n"
    "\n"
    "  --endpoints H:P,...  etcd client URLs as host:port; watchers are\n"
    "                       spread over them, the writer uses the first\n"
    "  --n N                watchers (default 1000)\n"
    "  --flips F            timed flips (default 50)\n"
    "  --gap-ms MS          pause between flips, reading (default 20)\n"
    "  --gap-jitter-ms MS   plus a random 0..MS (default 0)\n"
    "  --warmup W           untimed flips first (default 1)\n"
    "  --prefix P / --key K watched prefix / key flipped (bench.fan. /\n"
    "                       bench.fan.k)\n"
    "  --timeout MS         writer deadline and delivery wait (5000)\n"
    "  --attach-seconds S   bound on setting the watches up (60)\n"
    "  --window W           watches being set up at once per endpoint (32)\n"
    "  --max-seconds S      bound on the whole run (120)\n"
    "  --rss-pids PID,...   VmRSS of these after attach and after flips\n"
    "  --source ADDR        bind watcher sockets to this local IP first\n"
    "  --errors N           problems described on stderr (5)\n"
    "  --json               one JSON object (fanout.c's field names)\n";

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct bench_opt optab[] = {
        BENCH_FAN_OPTS(struct opts),
    };

    *o = (struct opts){ BENCH_FAN_DEFAULTS };
    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (o->endpoints == NULL || o->endpoints[0] == '\0' ||
        o->prefix[0] == '\0' || strlen(o->prefix) > 200 ||
        strncmp(o->key, o->prefix, strlen(o->prefix)) != 0) {
        fprintf(stderr,
                "etcd_fanout: --endpoints is required; --key must start "
                "with a non-empty --prefix\n%s",
                usage_text);
        return EXIT_USAGE;
    }
    if ((uint64_t)o->n * o->flips > BENCH_FAN_SAMPLES_MAX) {
        fprintf(stderr, "etcd_fanout: --n x --flips is too large\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- setup --------------------------------------------------------------- */

static struct bench_addr *ep_at(void *arg, size_t i)
{
    struct endpoint *e = &((struct ctx *)arg)->ep[i];

    memset(e, 0, sizeof *e);
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
    return bench_addr_source(PROG, addr, x->ep[0].a.family, &x->src,
                             &x->src_len);
}

/* The watch request; the Host header names the first endpoint (etcd does
 * not look at it). */
static int build_request(struct ctx *x)
{
    char end[256];
    char k64[400];
    char e64[400];
    char body[1024];
    size_t pl = strlen(x->o->prefix);

    memcpy(end, x->o->prefix, pl + 1);
    end[pl - 1] = (char)(end[pl - 1] + 1);
    b64_encode(x->o->prefix, pl, k64);
    b64_encode(end, pl, e64);
    snprintf(body, sizeof body,
             "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", k64,
             e64);
    x->request_len = http_post(x->request, sizeof x->request, x->ep[0].a.name,
                               "/v3/watch", body);
    return x->request_len > 0 ? 0 : -1;
}

/* ---- watchers ------------------------------------------------------------ */

static void w_close(struct ctx *x, uint32_t i)
{
    struct watcher *w = &x->w[i];

    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    free(w->raw);
    free(w->line);
    w->raw = NULL;
    w->line = NULL;
    w->raw_len = w->raw_cap = w->line_len = w->line_cap = 0;
    if (w->phase == W_LIVE) {
        x->n_live--;
        x->n_disconnects++;
    } else if (w->phase == W_CONNECTING || w->phase == W_WATCHING) {
        x->ep_inflight[w->ep]--;
        x->n_attach_failed++;
    }
    w->phase = W_DEAD;
}

static void w_fail(struct ctx *x, uint32_t i, const char *what)
{
    bench_problem(&x->pr, "watcher %u (%s, %s): %s", i,
                  x->ep[x->w[i].ep].a.name,
                  x->w[i].phase == W_LIVE ? "live" : "attaching", what);
    w_close(x, i);
}

static void w_start(struct ctx *x, uint32_t i)
{
    struct watcher *w = &x->w[i];
    const struct endpoint *e = &x->ep[w->ep];
    struct epoll_event ev;
    int one = 1;
    int fd = socket(e->a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    w->phase = W_CONNECTING;
    x->ep_inflight[w->ep]++;
    w->chunk_left = -1;
    if (fd < 0) {
        w_fail(x, i, strerror(errno));
        return;
    }
    w->fd = fd;
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (x->src_len > 0) {
        if (e->a.family == AF_INET) {
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                             sizeof one);
        }
        if (bind(fd, (const struct sockaddr *)&x->src, x->src_len) != 0) {
            w_fail(x, i, "bind to --source failed");
            return;
        }
    }
    if (connect(fd, (const struct sockaddr *)&e->a.sa, e->a.salen) != 0 &&
        errno != EINPROGRESS) {
        w_fail(x, i, strerror(errno));
        return;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        w_fail(x, i, "epoll_ctl failed");
    }
}

static void fill_window(struct ctx *x)
{
    for (size_t e = 0; e < x->n_ep; e++) {
        while (x->next_start[e] < x->n && x->ep_inflight[e] < x->o->window) {
            uint32_t i = x->next_start[e];

            x->next_start[e] += (uint32_t)x->n_ep;
            w_start(x, i);
        }
    }
}

static void w_writable(struct ctx *x, uint32_t i)
{
    struct watcher *w = &x->w[i];
    struct epoll_event ev;
    int err = 0;
    socklen_t len = sizeof err;
    ssize_t n;

    if (w->sent == 0 &&
        (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
         err != 0)) {
        w_fail(x, i, err ? strerror(err) : "connect failed");
        return;
    }
    n = send(w->fd, x->request + w->sent, x->request_len - w->sent,
             MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            w_fail(x, i, strerror(errno));
        }
        return;
    }
    w->sent = (uint16_t)(w->sent + (size_t)n);
    if (w->sent < x->request_len) {
        return;
    }
    w->phase = W_WATCHING;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(x->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0) {
        w_fail(x, i, "epoll_ctl failed");
    }
}

static void on_event_rev(struct ctx *x,
                         uint32_t i,
                         uint64_t rev,
                         uint64_t stamp_rt,
                         uint64_t seen_rt)
{
    struct watcher *w = &x->w[i];
    int64_t after_ack;

    x->n_events++;
    if (rev <= w->last_rev) {
        x->n_dup++;
        bench_problem(&x->pr, "watcher %u: event at %" PRIu64 " after %" PRIu64,
                      i, rev, w->last_rev);
        return;
    }
    w->last_rev = rev;
    if (!x->flipping || rev != x->cur_rev) {
        if (x->flipping && rev < x->cur_rev) {
            x->n_late++;
        } else {
            x->n_unexpected++;
            bench_problem(&x->pr,
                          "watcher %u: event at unexpected revision %" PRIu64,
                          i, rev);
        }
        return;
    }
    x->cur_received++;
    if (stamp_rt == 0 || stamp_rt < x->t_send_rt ||
        stamp_rt > seen_rt + 1000000u) {
        stamp_rt = seen_rt;
        x->n_kts_bad++;
    } else {
        x->n_kts_ok++;
    }
    after_ack = (int64_t)(stamp_rt - x->t_ack_rt);
    if (after_ack > x->cur_last_ns) {
        x->cur_last_ns = after_ack;
    }
    if (x->recording && x->n_samples < x->cap_samples) {
        x->s_ack[x->n_samples] = after_ack;
        x->s_send[x->n_samples] = (int64_t)(stamp_rt - x->t_send_rt);
        x->n_samples++;
    }
}

/* One JSON message (a line) of watcher i. -1 if the watcher was closed. */
static int on_message(struct ctx *x,
                      uint32_t i,
                      char *msg,
                      uint64_t stamp_rt,
                      uint64_t seen_rt)
{
    struct watcher *w = &x->w[i];
    const char *p;
    uint64_t rev = 0;

    if (strstr(msg, "\"error\"") != NULL) {
        char what[160];

        snprintf(what, sizeof what, "error message: %.120s", msg);
        w_fail(x, i, what);
        return -1;
    }
    if (strstr(msg, "\"canceled\":true") != NULL) {
        x->n_canceled++;
        w_fail(x, i, "watch canceled by the server");
        return -1;
    }
    if (w->phase == W_WATCHING && strstr(msg, "\"created\":true") != NULL) {
        w->phase = W_LIVE;
        x->ep_inflight[w->ep]--;
        x->n_live++;
        x->n_attached++;
        x->ep[w->ep].n_attached++;
        if (json_u64(msg, "revision", &rev) && rev > w->last_rev) {
            w->last_rev = rev;
        }
        return 0;
    }
    p = strstr(msg, "\"events\"");
    if (p == NULL) {
        return 0; /* a progress message */
    }
    /* One put per revision: every event of a message shares it. */
    if (json_u64(p, "mod_revision", &rev)) {
        on_event_rev(x, i, rev, stamp_rt, seen_rt);
    }
    return 0;
}

static int line_append(struct watcher *w, const uint8_t *p, size_t n)
{
    if ((size_t)w->line_len + n + 1 > w->line_cap) {
        size_t cap = w->line_cap ? w->line_cap : 512;
        char *np;

        while (cap < (size_t)w->line_len + n + 1) {
            cap *= 2;
        }
        if (cap > RAW_MAX) {
            return -1;
        }
        np = realloc(w->line, cap);
        if (np == NULL) {
            return -1;
        }
        w->line = np;
        w->line_cap = (uint32_t)cap;
    }
    memcpy(w->line + w->line_len, p, n);
    w->line_len += (uint32_t)n;
    w->line[w->line_len] = '\0';
    return 0;
}

/* De-chunks what watcher i has received and handles every whole message.
 * -1 if the watcher was closed. */
static int w_parse(struct ctx *x,
                   uint32_t i,
                   uint64_t stamp_rt,
                   uint64_t seen_rt)
{
    struct watcher *w = &x->w[i];
    size_t off = 0;

    if (!w->head_done) {
        struct http_head h;
        int r = http_parse_head((const char *)w->raw, w->raw_len, &h);

        if (r == 0) {
            return 0;
        }
        if (r < 0 || h.status != 200 || !h.chunked) {
            char what[96];

            snprintf(what, sizeof what, "watch refused: HTTP %d%s", h.status,
                     r < 0 ? " (malformed)" : "");
            w_fail(x, i, what);
            return -1;
        }
        w->head_done = 1;
        off = h.len;
    }
    for (;;) {
        if (w->skip_crlf) {
            if (w->raw_len - off < 2) {
                break;
            }
            off += 2;
            w->skip_crlf = 0;
        }
        if (w->chunk_left < 0) {
            const uint8_t *nl = memchr(w->raw + off, '\n', w->raw_len - off);
            unsigned long sz;

            if (nl == NULL) {
                break;
            }
            sz = strtoul((const char *)w->raw + off, NULL, 16);
            off = (size_t)(nl - w->raw) + 1;
            if (sz == 0) {
                w_fail(x, i, "watch stream ended");
                return -1;
            }
            w->chunk_left = (long)sz;
        }
        if (off == w->raw_len) {
            break;
        }
        {
            size_t take = w->raw_len - off;
            uint8_t *start = w->raw + off;
            uint8_t *nl;

            if (take > (size_t)w->chunk_left) {
                take = (size_t)w->chunk_left;
            }
            if (line_append(w, start, take) != 0) {
                w_fail(x, i, "message too long");
                return -1;
            }
            off += take;
            w->chunk_left -= (long)take;
            if (w->chunk_left == 0) {
                w->chunk_left = -1;
                w->skip_crlf = 1;
            }
            /* Whole lines in the message text. */
            while ((nl = (uint8_t *)memchr(w->line, '\n', w->line_len)) !=
                   NULL) {
                size_t ll = (size_t)(nl - (uint8_t *)w->line);

                w->line[ll] = '\0';
                if (on_message(x, i, w->line, stamp_rt, seen_rt) != 0) {
                    return -1;
                }
                memmove(w->line, w->line + ll + 1, w->line_len - ll - 1);
                w->line_len -= (uint32_t)(ll + 1);
                w->line[w->line_len] = '\0';
            }
        }
    }
    if (off > 0) {
        memmove(w->raw, w->raw + off, w->raw_len - off);
        w->raw_len -= (uint32_t)off;
    }
    return 0;
}

static void w_readable(struct ctx *x, uint32_t i)
{
    struct watcher *w = &x->w[i];

    for (int round = 0; round < 4; round++) {
        union
        {
            char buf[CMSG_SPACE(sizeof(struct timespec))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov;
        struct msghdr m;
        ssize_t got;

        iov.iov_base = x->rbuf;
        iov.iov_len = sizeof x->rbuf;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        got = recvmsg(w->fd, &m, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                w_fail(x, i, strerror(errno));
            }
            return;
        }
        if (got == 0) {
            w_fail(x, i, "connection closed by the server");
            return;
        }
        if ((size_t)w->raw_len + (size_t)got > w->raw_cap) {
            size_t cap = w->raw_cap ? w->raw_cap : 1024;
            uint8_t *np;

            while (cap < (size_t)w->raw_len + (size_t)got) {
                cap *= 2;
            }
            if (cap > RAW_MAX || (np = realloc(w->raw, cap)) == NULL) {
                w_fail(x, i, "too much unparsed input");
                return;
            }
            w->raw = np;
            w->raw_cap = (uint32_t)cap;
        }
        memcpy(w->raw + w->raw_len, x->rbuf, (size_t)got);
        w->raw_len += (uint32_t)got;
        if (w_parse(x, i, bench_msg_stamp_ns(&m), bench_real_ns()) != 0) {
            return;
        }
        if ((size_t)got < sizeof x->rbuf) {
            return;
        }
    }
}

enum until
{
    UNTIL_TIME,
    UNTIL_ATTACHED,
    UNTIL_DELIVERED
};

static int run_loop(struct ctx *x, enum until u, uint64_t end)
{
    struct epoll_event evs[EVENTS_MAX];

    if (end > x->deadline) {
        end = x->deadline;
    }
    for (;;) {
        uint64_t now;
        int tmo;
        int n;

        if (u == UNTIL_ATTACHED) {
            fill_window(x);
            if (x->n_attached + x->n_attach_failed >= x->n) {
                return 0;
            }
        }
        if (u == UNTIL_DELIVERED && x->cur_received >= x->n_live) {
            return 0;
        }
        now = bench_mono_ns();
        if (now >= end) {
            if (end == x->deadline && u != UNTIL_TIME) {
                x->truncated = 1;
            }
            return -1;
        }
        tmo = (int)((end - now + 999999u) / 1000000u);
        n = epoll_wait(x->epfd, evs, EVENTS_MAX, tmo > 100 ? 100 : tmo);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            x->truncated = 1;
            return -1;
        }
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;

            if (x->w[i].phase == W_CONNECTING) {
                w_writable(x, i);
            } else if (x->w[i].phase == W_WATCHING || x->w[i].phase == W_LIVE) {
                w_readable(x, i);
            }
        }
    }
}

/* ---- writer -------------------------------------------------------------- */

static void writer_close(struct ctx *x)
{
    if (x->wfd >= 0) {
        close(x->wfd);
    }
    x->wfd = -1;
}

/* One blocking put over the writer's keep-alive connection, bounded by
 * --timeout. 0 with *rev set on success. */
static int writer_put(struct ctx *x, int64_t value, uint64_t *rev)
{
    char req[2048];
    char val[32];
    size_t len;
    size_t off = 0;
    size_t have = 0;
    uint64_t end = bench_mono_ns() + (uint64_t)x->o->timeout_ms * 1000000u;
    const struct endpoint *e = &x->ep[x->wep];

    if (x->wfd < 0) {
        int one = 1;

        x->wfd = socket(e->a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (x->wfd < 0 || connect(x->wfd, (const struct sockaddr *)&e->a.sa,
                                  e->a.salen) != 0) {
            bench_problem(&x->pr, "writer: connect to %s: %s", e->a.name,
                          strerror(errno));
            writer_close(x);
            return -1;
        }
        (void)setsockopt(x->wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    snprintf(val, sizeof val, "%" PRId64, value);
    len = http_put_request(req, sizeof req, e->a.name, x->o->key, val);
    while (off < len) {
        ssize_t n = send(x->wfd, req + off, len - off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            bench_problem(&x->pr, "writer: send: %s", strerror(errno));
            writer_close(x);
            return -1;
        }
        off += (size_t)n;
    }
    for (;;) {
        struct pollfd pfd = { .fd = x->wfd, .events = POLLIN, .revents = 0 };
        struct http_head h;
        size_t blen = 0;
        uint64_t now = bench_mono_ns();
        long r;
        ssize_t n;

        if (now >= end) {
            bench_problem(&x->pr, "writer: no answer within %u ms",
                          x->o->timeout_ms);
            writer_close(x);
            return -1;
        }
        if (poll(&pfd, 1, (int)((end - now) / 1000000u) + 1) <= 0) {
            continue;
        }
        n = recv(x->wfd, x->wbuf + have, sizeof x->wbuf - have, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            bench_problem(&x->pr, "writer: connection lost");
            writer_close(x);
            return -1;
        }
        have += (size_t)n;
        r = http_response(x->wbuf, have, &h, x->wbody, sizeof x->wbody, &blen);
        if (r == 0 && have < sizeof x->wbuf) {
            continue;
        }
        if (r <= 0) {
            bench_problem(&x->pr, "writer: malformed answer");
            writer_close(x);
            return -1;
        }
        if ((size_t)r != have || h.close) {
            writer_close(x); /* unexpected extra bytes, or a close */
        }
        if (h.status != 200 || !json_u64(x->wbody, "revision", rev)) {
            bench_problem(&x->pr, "writer: put failed: HTTP %d %.100s",
                          h.status, x->wbody);
            return -1;
        }
        return 0;
    }
}

static void do_flip(struct ctx *x, int64_t value, struct flip_rec *rec)
{
    uint64_t t_send_mono;
    uint64_t t_ack_mono;
    uint64_t rev = 0;

    memset(rec, 0, sizeof *rec);
    x->t_send_rt = bench_real_ns();
    t_send_mono = bench_mono_ns();
    if (writer_put(x, value, &rev) != 0) {
        rec->ack_ns = (int64_t)(bench_mono_ns() - t_send_mono);
        return;
    }
    t_ack_mono = bench_mono_ns();
    x->t_ack_rt = bench_real_ns();
    rec->ok = 1;
    rec->rev = rev;
    rec->ack_ns = (int64_t)(t_ack_mono - t_send_mono);
    x->cur_rev = rev;
    x->cur_received = 0;
    x->cur_last_ns = INT64_MIN;
    x->flipping = 1;
    (void)run_loop(x, UNTIL_DELIVERED,
                   t_ack_mono + (uint64_t)x->o->timeout_ms * 1000000u);
    x->flipping = 0;
    rec->received = x->cur_received;
    rec->missing = x->n_attached - x->cur_received;
    rec->last_ack_ns = x->cur_last_ns;
    rec->last_send_ns =
        x->cur_last_ns == INT64_MIN
            ? INT64_MIN
            : x->cur_last_ns + (int64_t)(x->t_ack_rt - x->t_send_rt);
}

/* ---- output -------------------------------------------------------------- */

static void print_report(struct ctx *x,
                         struct flip_rec *recs,
                         size_t n_recs,
                         const struct bench_rss *r0,
                         const struct bench_rss *r1,
                         size_t n_rss,
                         int attached_all)
{
    int64_t *tmp = calloc(n_recs + 1, sizeof *tmp);
    struct bench_dist ack;
    struct bench_dist last_ack;
    struct bench_dist last_send;
    struct bench_dist sub_send;
    struct bench_dist sub_ack;
    size_t k = 0;
    size_t n_ok = 0;
    uint64_t missing = 0;
    unsigned failed = 0;

    if (tmp == NULL) {
        return;
    }
    for (size_t r = 0; r < n_recs; r++) {
        if (recs[r].ok) {
            n_ok++;
            missing += recs[r].missing;
        } else {
            failed++;
        }
    }
#define DIST_OF(field, dst)                                 \
    do {                                                    \
        k = 0;                                              \
        for (size_t r = 0; r < n_recs; r++) {               \
            if (recs[r].ok && recs[r].field != INT64_MIN) { \
                tmp[k++] = recs[r].field;                   \
            }                                               \
        }                                                   \
        (dst) = bench_summarise(tmp, k);                    \
    } while (0)
    DIST_OF(ack_ns, ack);
    DIST_OF(last_ack_ns, last_ack);
    DIST_OF(last_send_ns, last_send);
#undef DIST_OF
    free(tmp);
    sub_send = bench_summarise(x->s_send, x->n_samples);
    sub_ack = bench_summarise(x->s_ack, x->n_samples);
    if (!x->o->json) {
        printf("etcd_fanout: %u watchers, %u attached in %.3f s%s\n", x->n,
               x->n_attached, (double)x->attach_ns / 1e9,
               x->truncated ? ", TRUNCATED" : "");
        printf("  flips acked %zu, failed %u, missing deliveries %" PRIu64
               ", disconnects %u\n",
               n_ok, failed, missing, x->n_disconnects);
        printf(
            "  ack                        p50 %8.3f p99 %8.3f max %8.3f ms\n",
            ack.p50, ack.p99, ack.max);
        printf(
            "  last watcher after send    p50 %8.3f p99 %8.3f max %8.3f ms\n",
            last_send.p50, last_send.p99, last_send.max);
        printf(
            "  last watcher after ack     p50 %8.3f p99 %8.3f max %8.3f ms\n",
            last_ack.p50, last_ack.p99, last_ack.max);
        printf(
            "  per watcher after send     p50 %8.3f p99 %8.3f max %8.3f ms\n",
            sub_send.p50, sub_send.p99, sub_send.max);
        for (size_t i = 0; i < n_rss; i++) {
            printf("  pid %ld rss %ld kB after attach, %ld kB after flips\n",
                   r0[i].pid, r0[i].rss_kb, r1[i].rss_kb);
        }
        if (x->pr.first[0] != '\0') {
            printf("  first problem: %s\n", x->pr.first);
        }
        return;
    }
    printf(
        "{\"system\":\"etcd\",\"n\":%u,\"flips\":%u,\"gap_ms\":%u,"
        "\"gap_jitter_ms\":%u,\"attached\":%u,\"attach_failed\":%u,"
        "\"attach_complete\":%s,\"attach_s\":%.3f,\"truncated\":%s",
        x->n, x->o->flips, x->o->gap_ms, x->o->jitter_ms, x->n_attached,
        x->n_attach_failed, attached_all ? "true" : "false",
        (double)x->attach_ns / 1e9, x->truncated ? "true" : "false");
    printf(",\"endpoints\":[");
    for (size_t e = 0; e < x->n_ep; e++) {
        printf("%s{\"addr\":", e ? "," : "");
        bench_json_str(x->ep[e].a.name);
        printf(",\"subscribers\":%u,\"attached\":%u}", x->ep[e].n_subs,
               x->ep[e].n_attached);
    }
    printf("],\"flips_ok\":%zu,\"flips_failed\":%u,\"missing\":%" PRIu64, n_ok,
           failed, missing);
    bench_json_dist("ack_ms", &ack, 1);
    bench_json_dist("last_after_ack_ms", &last_ack, 1);
    bench_json_dist("last_after_send_ms", &last_send, 1);
    bench_json_dist("sub_after_send_ms", &sub_send, 1);
    bench_json_dist("sub_after_ack_ms", &sub_ack, 1);
    printf(",\"disconnects\":%u,\"canceled\":%u,\"late\":%" PRIu64
           ",\"duplicates\":%" PRIu64 ",\"unexpected\":%" PRIu64
           ",\"events\":%" PRIu64 ",\"stamps_ok\":%" PRIu64
           ",\"stamps_replaced\":%" PRIu64 ",\"server_errors\":{}",
           x->n_disconnects, x->n_canceled, x->n_late, x->n_dup,
           x->n_unexpected, x->n_events, x->n_kts_ok, x->n_kts_bad);
    printf(",\"first_problem\":");
    if (x->pr.first[0] != '\0') {
        bench_json_str(x->pr.first);
    } else {
        printf("null");
    }
    bench_json_rss("rss_attached", r0, n_rss);
    bench_json_rss("rss_after", r1, n_rss);
    printf("}\n");
}

int main(int argc, char **argv)
{
    struct opts o;
    static struct ctx x;
    struct flip_rec *recs = NULL;
    struct bench_rss r0[BENCH_PIDS_MAX];
    struct bench_rss r1[BENCH_PIDS_MAX];
    size_t n_rss = 0;
    size_t n_recs = 0;
    uint64_t rng = bench_real_ns() | 1u;
    uint64_t t0;
    int code = EXIT_USAGE;
    int rv = parse_args(argc, argv, &o);

    if (rv != 0) {
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    x.o = &o;
    x.n = o.n;
    x.pr.prog = PROG;
    x.pr.limit = o.errors;
    x.epfd = -1;
    x.wfd = -1;
    x.deadline = bench_mono_ns() + (uint64_t)o.max_seconds * 1000000000u;
    if (bench_raise_nofile(PROG, o.n) != 0 ||
        parse_endpoints(&x, o.endpoints) != 0 ||
        (o.source != NULL && parse_source(&x, o.source) != 0) ||
        build_request(&x) != 0) {
        return EXIT_USAGE;
    }
    x.w = calloc(o.n, sizeof *x.w);
    x.cap_samples = (size_t)o.n * o.flips;
    x.s_send = calloc(x.cap_samples, sizeof *x.s_send);
    x.s_ack = calloc(x.cap_samples, sizeof *x.s_ack);
    recs = calloc(o.flips, sizeof *recs);
    x.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x.w == NULL || x.s_send == NULL || x.s_ack == NULL || recs == NULL ||
        x.epfd < 0) {
        fprintf(stderr, "etcd_fanout: out of memory\n");
        goto out;
    }
    for (uint32_t i = 0; i < x.n; i++) {
        x.w[i].fd = -1;
        x.w[i].ep = (uint8_t)(i % x.n_ep);
        x.ep[i % x.n_ep].n_subs++;
    }
    for (size_t e = 0; e < x.n_ep; e++) {
        x.next_start[e] = (uint32_t)e;
    }
    x.wep = 0;

    t0 = bench_mono_ns();
    (void)run_loop(&x, UNTIL_ATTACHED,
                   t0 + (uint64_t)o.attach_seconds * 1000000000u);
    x.attach_ns = bench_mono_ns() - t0;
    if (o.rss_pids != NULL) {
        n_rss = bench_read_rss(o.rss_pids, r0);
    }
    if (x.n_attached < x.n) {
        fprintf(stderr,
                "etcd_fanout: only %u of %u watchers attached within %.1f s "
                "(%u failed)%s%s\n",
                x.n_attached, x.n, (double)x.attach_ns / 1e9, x.n_attach_failed,
                x.pr.first[0] ? "; first problem: " : "", x.pr.first);
        memcpy(r1, r0, sizeof r1);
        print_report(&x, recs, 0, r0, r1, n_rss, 0);
        goto out;
    }
    for (unsigned w = 0; w < o.warmup && bench_mono_ns() < x.deadline; w++) {
        struct flip_rec wr;

        do_flip(&x, 0, &wr);
        (void)run_loop(
            &x, UNTIL_TIME,
            bench_mono_ns() + bench_gap_ns(o.gap_ms, o.jitter_ms, &rng));
    }
    x.recording = 1;
    for (unsigned f = 0; f < o.flips; f++) {
        if (bench_mono_ns() >= x.deadline) {
            x.truncated = 1;
            break;
        }
        do_flip(&x, (int64_t)f + 1, &recs[n_recs++]);
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
    print_report(&x, recs, n_recs, r0, r1, n_rss, 1);
    code = 0;
    for (size_t r = 0; r < n_recs; r++) {
        if (!recs[r].ok || recs[r].missing > 0) {
            code = EXIT_FAILED;
        }
    }
    if (x.truncated || x.n_disconnects > 0 || x.n_dup > 0 ||
        x.n_unexpected > 0) {
        code = EXIT_FAILED;
    }
out:
    fflush(stdout);
    if (x.w != NULL) {
        for (uint32_t i = 0; i < x.n; i++) {
            if (x.w[i].fd >= 0) {
                struct linger lg = { .l_onoff = 1, .l_linger = 0 };

                (void)setsockopt(x.w[i].fd, SOL_SOCKET, SO_LINGER, &lg,
                                 sizeof lg);
                close(x.w[i].fd);
            }
            free(x.w[i].raw);
            free(x.w[i].line);
        }
    }
    writer_close(&x);
    if (x.epfd >= 0) {
        close(x.epfd);
    }
    free(x.w);
    free(x.s_send);
    free(x.s_ack);
    free(recs);
    return code;
}
