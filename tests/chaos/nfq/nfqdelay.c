/*
 * nfqdelay: a netem stand-in for the chaos suite's network-quality faults.
 *
 * Some kernels (ours included) lack sch_netem, but have the xtables NFQUEUE
 * target. This program takes the packets of one queue of the network
 * namespace it runs in and gives each a verdict later: accept at
 * now + DELAY + U(0, JITTER) ms, or drop with probability LOSS. Release
 * times are independent, so jitter also reorders packets, as netem does.
 *
 *   nfqdelay --queue N --delay MS [--jitter MS] [--loss P] [--seed S]
 *
 * Use it with `iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num N
 * --queue-bypass`: the bypass lets traffic flow normally whenever this
 * program is not running, so a crashed helper can never become an
 * accidental partition. A full queue accepts instead of dropping (fail-open)
 * for the same reason. On SIGTERM or SIGINT every held packet is accepted,
 * then it exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_HELD 8192 /* packets held at once; more are accepted at once */

struct held
{
    uint32_t id;
    int64_t due_ns;
};

struct delayer
{
    struct nfq_q_handle *qh;
    int64_t delay_ns;
    int64_t jitter_ns;
    double loss;
    uint64_t rng;
    struct held heap[MAX_HELD]; /* min-heap on due_ns */
    size_t n;
    uint64_t seen, dropped, overflow;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: seeded, so a run's randomness can be replayed */
static double uniform(struct delayer *d)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (double)((d->rng * 2685821657736338717ULL) >> 11) /
           9007199254740992.0;
}

static void heap_push(struct delayer *d, struct held h)
{
    size_t i = d->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (d->heap[parent].due_ns <= h.due_ns) {
            break;
        }
        d->heap[i] = d->heap[parent];
        i = parent;
    }
    d->heap[i] = h;
}

static struct held heap_pop(struct delayer *d)
{
    struct held top = d->heap[0];
    struct held last = d->heap[--d->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->n) {
            break;
        }
        if (c + 1 < d->n && d->heap[c + 1].due_ns < d->heap[c].due_ns) {
            c++;
        }
        if (last.due_ns <= d->heap[c].due_ns) {
            break;
        }
        d->heap[i] = d->heap[c];
        i = c;
    }
    if (d->n > 0) {
        d->heap[i] = last;
    }
    return top;
}

static int on_packet(struct nfq_q_handle *qh,
                     struct nfgenmsg *msg,
                     struct nfq_data *nfa,
                     void *data)
{
    struct delayer *d = data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    struct held h;
    (void)msg;
    if (ph == NULL) {
        return 0;
    }
    h.id = ntohl(ph->packet_id);
    d->seen++;
    if (d->loss > 0 && uniform(d) < d->loss) {
        d->dropped++;
        return nfq_set_verdict(qh, h.id, NF_DROP, 0, NULL);
    }
    if (d->n == MAX_HELD) {
        d->overflow++;
        return nfq_set_verdict(qh, h.id, NF_ACCEPT, 0, NULL);
    }
    h.due_ns =
        now_ns() + d->delay_ns + (int64_t)(uniform(d) * (double)d->jitter_ns);
    heap_push(d, h);
    return 0;
}

/* Accepts every held packet due by `until` (all of them when INT64_MAX). */
static void release(struct delayer *d, int64_t until)
{
    while (d->n > 0 && d->heap[0].due_ns <= until) {
        struct held h = heap_pop(d);
        nfq_set_verdict(d->qh, h.id, NF_ACCEPT, 0, NULL);
    }
}

static int poll_timeout_ms(const struct delayer *d)
{
    int64_t wait;
    if (d->n == 0) {
        return 100; /* wake up now and then to notice a signal */
    }
    wait = (d->heap[0].due_ns - now_ns()) / 1000000;
    if (wait < 0) {
        return 0;
    }
    return wait > 100 ? 100 : (int)wait;
}

static int parse_args(int argc, char **argv, struct delayer *d, uint16_t *queue)
{
    int have_queue = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (strcmp(argv[i], "--queue") == 0) {
            *queue = (uint16_t)strtoul(v, NULL, 10);
            have_queue = 1;
        } else if (strcmp(argv[i], "--delay") == 0) {
            d->delay_ns = (int64_t)(strtod(v, NULL) * 1e6);
        } else if (strcmp(argv[i], "--jitter") == 0) {
            d->jitter_ns = (int64_t)(strtod(v, NULL) * 1e6);
        } else if (strcmp(argv[i], "--loss") == 0) {
            d->loss = strtod(v, NULL);
        } else if (strcmp(argv[i], "--seed") == 0) {
            d->rng = strtoull(v, NULL, 10);
        } else {
            fprintf(stderr, "nfqdelay: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    if (!have_queue || d->delay_ns < 0 || d->jitter_ns < 0 || d->loss < 0 ||
        d->loss > 1) {
        fprintf(stderr,
                "usage: nfqdelay --queue N --delay MS [--jitter MS] "
                "[--loss P] [--seed S]\n");
        return -1;
    }
    if (d->rng == 0) {
        d->rng = 0x9e3779b97f4a7c15ULL; /* xorshift must not start at 0 */
    }
    return 0;
}

static int serve(struct nfq_handle *h, struct delayer *d)
{
    static char buf[65536] __attribute__((aligned));
    struct pollfd pfd = { .fd = nfq_fd(h), .events = POLLIN, .revents = 0 };
    while (!stop_flag) {
        int rv = poll(&pfd, 1, poll_timeout_ms(d));
        if (rv < 0 && errno != EINTR) {
            perror("nfqdelay: poll");
            return -1;
        }
        /* drain what is queued without blocking, bounded per wakeup */
        for (int i = 0; rv > 0 && i < 256; i++) {
            ssize_t len = recv(pfd.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (len < 0) {
                /* ENOBUFS: the kernel dropped messages for us (fail-open
                 * keeps traffic flowing); nothing to do but go on */
                break;
            }
            nfq_handle_packet(h, buf, (int)len);
        }
        release(d, now_ns());
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct delayer d;
    struct nfq_handle *h;
    uint16_t queue = 0;
    int rv;

    if (parse_args(argc, argv, &d, &queue) != 0) {
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    h = nfq_open();
    if (h == NULL) {
        perror("nfqdelay: nfq_open");
        return 1;
    }
    d.qh = nfq_create_queue(h, queue, on_packet, &d);
    if (d.qh == NULL) {
        perror("nfqdelay: nfq_create_queue");
        nfq_close(h);
        return 1;
    }
    nfq_set_mode(d.qh, NFQNL_COPY_META, 0);
    nfq_set_queue_maxlen(d.qh, MAX_HELD);
    nfq_set_queue_flags(d.qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
    rv = serve(h, &d);
    release(&d, INT64_MAX);
    fprintf(stderr,
            "nfqdelay: queue %u: %" PRIu64 " packets, %" PRIu64
            " dropped, %" PRIu64 " accepted at once (full)\n",
            queue, d.seen, d.dropped, d.overflow);
    nfq_destroy_queue(d.qh);
    nfq_close(h);
    return rv == 0 ? 0 : 1;
}
