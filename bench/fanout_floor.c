/* fanout_floor: what delivering one small frame to N loopback TCP
 * subscribers costs this machine, with no store, no raft and no encoding.
 *
 *   fanout_floor [--n 1000] [--senders 3] [--rounds 50] [--warmup 2]
 *                [--frame 64] [--gap-ms 20] [--timeout 5000]
 *                [--source ADDR] [--max-seconds 120]
 *
 * The result is one JSON object on stdout.
 *
 * The shape of bench/fanout against a 3-node cluster: --senders child
 * processes (the nodes) each accept their share of the N connections this
 * process opens (the subscribers: one epoll loop, SO_TIMESTAMPNS, all on
 * 127.0.0.1). Per round this process takes t_send (CLOCK_REALTIME) and
 * writes one byte to every sender's control pipe; each sender then writes
 * one --frame byte frame to each of its connections, one write per socket,
 * as a node's fan-out does. A frame's delivery time is the kernel receive
 * stamp of its last segment minus t_send. Reported like bench/fanout: the
 * last subscriber of a round (p50/p99/max over rounds) and every delivery
 * (per subscriber). The difference between this and flipd's fan-out is
 * what flipd itself adds (commit, apply, encoding, the followers learning
 * the commit); this is the part no server on this machine can remove while
 * every subscriber has its own TCP connection.
 *
 * Bounded: --n at most 100000, --rounds at most 10000, each round gives up
 * --timeout ms after t_send (those frames count as missing), the run stops
 * at --max-seconds. Senders exit when their control pipe closes, so they
 * never outlive this process. Connections are closed with SO_LINGER 0 (no
 * TIME_WAIT left behind).
 *
 * Exit status: 0 every frame delivered, 1 missing frames or a truncated
 * run, 2 usage or setup error. */
#define _GNU_SOURCE /* IP_BIND_ADDRESS_NO_PORT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/lib/bopt.h"
#include "bench/lib/bstat.h"

#define PROG        "fanout_floor"
#define N_MAX       100000u
#define SENDERS_MAX 16u
#define FRAME_MAX   4096u
#define EXIT_MISS   1
#define EXIT_USAGE  2

struct opts
{
    unsigned n;
    unsigned senders;
    unsigned rounds;
    unsigned warmup;
    unsigned frame;
    unsigned gap_ms;
    unsigned timeout_ms;
    unsigned max_seconds;
    const char *source;
};

struct sender
{
    pid_t pid;
    int listen_fd;
    int ctl_fd; /* parent's write end; closing it stops the sender */
    unsigned n; /* connections it serves */
};

/* The subscriber side, owned by main. */
struct subs
{
    int *fd;
    unsigned *got;  /* bytes of the current round's frame received */
    int64_t *last;  /* delivery of the current round, ns after t_send */
    int64_t *deliv; /* every timed delivery, for the per-subscriber figures */
    size_t n_deliv;
    int64_t *round_last; /* last subscriber per timed round */
    size_t n_rounds;
    unsigned missing;
    unsigned no_stamp;
};

static const char usage_text[] =
    "usage: " PROG
    " [--n 1000] [--senders 3] [--rounds 50] [--warmup 2]\n"
    "       [--frame 64] [--gap-ms 20] [--timeout 5000] [--source ADDR]\n"
    "       [--max-seconds 120]\n";

static int parse_args(int argc, char **argv, struct opts *o)
{
#define O(name, min, max, member) \
    BENCH_UINT(struct opts, name, min, max, member)
    static const struct bench_opt optab[] = {
        O("n", 1, N_MAX, n),
        O("senders", 1, SENDERS_MAX, senders),
        O("rounds", 1, 10000, rounds),
        O("warmup", 0, 100, warmup),
        O("frame", 8, FRAME_MAX, frame),
        O("gap-ms", 0, 10000, gap_ms),
        O("timeout", 1, 60000, timeout_ms),
        O("max-seconds", 1, 3600, max_seconds),
        BENCH_STR(struct opts, "source", source),
    };
#undef O

    *o = (struct opts){ .n = 1000,
                        .senders = 3,
                        .rounds = 50,
                        .warmup = 2,
                        .frame = 64,
                        .gap_ms = 20,
                        .timeout_ms = 5000,
                        .max_seconds = 120 };
    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (o->senders > o->n) {
        o->senders = o->n;
    }
    return 0;
}

/* ---- the sender processes (the "nodes") ---------------------------------- */

static void nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Child: accepts its connections, then writes one frame to each per
 * control byte until the pipe closes. Never returns. */
static void sender_main(int listen_fd, int ctl_fd, unsigned n, unsigned frame)
{
    unsigned char buf[FRAME_MAX];
    int *fds = calloc(n, sizeof *fds);
    unsigned have = 0;

    if (fds == NULL) {
        _exit(2);
    }
    memset(buf, 0, sizeof buf);
    buf[0] = (unsigned char)((frame - 4) >> 24);
    buf[1] = (unsigned char)((frame - 4) >> 16);
    buf[2] = (unsigned char)((frame - 4) >> 8);
    buf[3] = (unsigned char)(frame - 4);
    while (have < n) {
        struct pollfd p = { listen_fd, POLLIN, 0 };
        int fd;

        if (poll(&p, 1, 60000) <= 0) {
            _exit(2); /* the parent never connected: give up */
        }
        fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            _exit(2);
        }
        nodelay(fd);
        fds[have++] = fd;
    }
    for (;;) {
        char cmd;
        ssize_t r = read(ctl_fd, &cmd, 1);

        if (r == 0 || (r < 0 && errno != EINTR)) {
            _exit(0);
        }
        if (r != 1) {
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            /* a blocking write: the reader drains, and a frame this small
             * always fits the socket buffer when it does */
            if (write(fds[i], buf, frame) != (ssize_t)frame) {
                _exit(3);
            }
        }
    }
}

static int listener(struct sender *s)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 ||
        bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->listen_fd, 4096) != 0) {
        fprintf(stderr, PROG ": listener: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int start_senders(const struct opts *o, struct sender *snd)
{
    for (unsigned s = 0; s < o->senders; s++) {
        int ctl[2];

        snd[s].n = o->n / o->senders + (s < o->n % o->senders ? 1 : 0);
        if (listener(&snd[s]) != 0 || pipe(ctl) != 0) {
            return -1;
        }
        snd[s].pid = fork();
        if (snd[s].pid < 0) {
            fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
            return -1;
        }
        if (snd[s].pid == 0) {
            close(ctl[1]);
            for (unsigned t = 0; t < s; t++) {
                close(snd[t].ctl_fd); /* earlier senders' pipes */
            }
            sender_main(snd[s].listen_fd, ctl[0], snd[s].n, o->frame);
        }
        close(ctl[0]);
        snd[s].ctl_fd = ctl[1];
    }
    return 0;
}

static void stop_senders(const struct opts *o, struct sender *snd)
{
    for (unsigned s = 0; s < o->senders; s++) {
        if (snd[s].ctl_fd >= 0) {
            close(snd[s].ctl_fd);
            snd[s].ctl_fd = -1;
        }
    }
    for (unsigned s = 0; s < o->senders; s++) {
        if (snd[s].pid > 0) {
            kill(snd[s].pid, SIGTERM);
            waitpid(snd[s].pid, NULL, 0);
            snd[s].pid = 0;
        }
        if (snd[s].listen_fd >= 0) {
            close(snd[s].listen_fd);
        }
    }
}

/* ---- the subscriber side ------------------------------------------------- */

/* Connects subscriber i; its epoll entry carries i. */
static int connect_one(const struct opts *o,
                       const struct sender *s,
                       int ep,
                       unsigned i)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || getsockname(s->listen_fd, (struct sockaddr *)&a, &len) != 0) {
        goto err;
    }
    if (o->source != NULL) {
        struct sockaddr_in src;

        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, o->source, &src.sin_addr) != 1) {
            fprintf(stderr, PROG ": --source wants an IPv4 address\n");
            goto err;
        }
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                         sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            goto err;
        }
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, fd,
                  &(struct epoll_event){ .events = EPOLLIN, .data.u32 = i }) !=
            0) {
        goto err;
    }
    return fd;

err:
    fprintf(stderr, PROG ": subscriber socket: %s\n", strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* Reads what fd has; returns the kernel stamp (realtime ns) of the last
 * segment read, or 0 when there was none. -1 on a closed connection. */
static int64_t read_stamped(int fd, unsigned want, unsigned *got)
{
    unsigned char data[FRAME_MAX];
    char ctrl[CMSG_SPACE(sizeof(struct timespec))];
    int64_t stamp = 0;

    while (*got < want) {
        struct iovec iov = { data, want - *got };
        struct msghdr m;
        ssize_t r;
        uint64_t ks;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        r = recvmsg(fd, &m, MSG_DONTWAIT);
        if (r == 0) {
            return -1;
        }
        if (r < 0) {
            break; /* EAGAIN: the rest comes later */
        }
        *got += (unsigned)r;
        ks = bench_msg_stamp_ns(&m);
        if (ks != 0) {
            stamp = (int64_t)ks;
        }
    }
    return stamp;
}

/* One round: every sender writes a frame to each of its connections; waits
 * until every subscriber has it or the timeout. 0, or -1 on a lost
 * connection. */
static int round_run(const struct opts *o,
                     struct sender *snd,
                     struct subs *sb,
                     int ep,
                     int timed)
{
    struct epoll_event evs[256];
    unsigned done = 0;
    int64_t t_send = (int64_t)bench_real_ns();
    uint64_t deadline = bench_mono_ns() + (uint64_t)o->timeout_ms * 1000000u;
    int64_t last = 0;

    memset(sb->got, 0, o->n * sizeof sb->got[0]);
    for (unsigned s = 0; s < o->senders; s++) {
        if (write(snd[s].ctl_fd, "g", 1) != 1) {
            return -1;
        }
    }
    while (done < o->n) {
        uint64_t now = bench_mono_ns();
        int k;

        if (now >= deadline) {
            break;
        }
        k = epoll_wait(ep, evs, 256, (int)((deadline - now) / 1000000u) + 1);
        for (int e = 0; e < k; e++) {
            unsigned i = evs[e].data.u32;
            int64_t stamp;

            if (i >= o->n || sb->got[i] >= o->frame) {
                continue;
            }
            stamp = read_stamped(sb->fd[i], o->frame, &sb->got[i]);
            if (stamp < 0) {
                fprintf(stderr, PROG ": subscriber %u: connection closed\n", i);
                return -1;
            }
            if (sb->got[i] < o->frame) {
                continue;
            }
            done++;
            if (stamp == 0 || stamp < t_send) {
                stamp = (int64_t)bench_real_ns();
                sb->no_stamp++;
            }
            if (timed) {
                sb->deliv[sb->n_deliv++] = stamp - t_send;
            }
            if (stamp - t_send > last) {
                last = stamp - t_send;
            }
        }
    }
    if (timed) {
        sb->missing += o->n - done;
        sb->round_last[sb->n_rounds++] = last;
    }
    return 0;
}

static void print_dist(const char *name, const struct bench_dist *d)
{
    printf("\"%s\":{\"n\":%zu,\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f}", name,
           d->n, d->p50, d->p99, d->max);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct sender snd[SENDERS_MAX];
    struct subs sb;
    uint64_t stop_at;
    int ep = -1;
    int rc = EXIT_USAGE;
    int truncated = 0;

    if (parse_args(argc, argv, &o) != 0) {
        return EXIT_USAGE;
    }
    memset(&sb, 0, sizeof sb);
    memset(snd, 0, sizeof snd);
    for (unsigned s = 0; s < SENDERS_MAX; s++) {
        snd[s].listen_fd = snd[s].ctl_fd = -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (bench_raise_nofile(PROG, o.n) != 0) {
        return EXIT_USAGE;
    }
    sb.fd = calloc(o.n, sizeof *sb.fd);
    sb.got = calloc(o.n, sizeof *sb.got);
    sb.deliv = calloc((size_t)o.n * o.rounds, sizeof *sb.deliv);
    sb.round_last = calloc(o.rounds, sizeof *sb.round_last);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (sb.fd == NULL || sb.got == NULL || sb.deliv == NULL ||
        sb.round_last == NULL || ep < 0 || start_senders(&o, snd) != 0) {
        fprintf(stderr, PROG ": setup failed\n");
        goto out;
    }
    for (unsigned i = 0; i < o.n; i++) {
        sb.fd[i] = connect_one(&o, &snd[i % o.senders], ep, i);
        if (sb.fd[i] < 0) {
            goto out;
        }
    }
    stop_at = bench_mono_ns() + (uint64_t)o.max_seconds * 1000000000u;
    rc = 0;
    for (unsigned r = 0; r < o.warmup + o.rounds; r++) {
        if (bench_mono_ns() >= stop_at) {
            truncated = 1;
            break;
        }
        if (round_run(&o, snd, &sb, ep, r >= o.warmup) != 0) {
            rc = EXIT_MISS;
            break;
        }
        usleep(o.gap_ms * 1000u);
    }
    {
        struct bench_dist last = bench_summarise(sb.round_last, sb.n_rounds);
        struct bench_dist per = bench_summarise(sb.deliv, sb.n_deliv);

        printf("{\"n\":%u,\"senders\":%u,\"rounds\":%zu,\"frame\":%u,", o.n,
               o.senders, sb.n_rounds, o.frame);
        print_dist("last_after_send_ms", &last);
        printf(",");
        print_dist("sub_after_send_ms", &per);
        printf(",\"missing\":%u,\"no_stamp\":%u,\"truncated\":%s}\n",
               sb.missing, sb.no_stamp, truncated ? "true" : "false");
    }
    if (rc == 0 && (sb.missing > 0 || truncated)) {
        rc = EXIT_MISS;
    }

out:
    for (unsigned i = 0; sb.fd != NULL && i < o.n; i++) {
        if (sb.fd[i] > 0) {
            struct linger lg = { 1, 0 };
            (void)setsockopt(sb.fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(sb.fd[i]);
        }
    }
    stop_senders(&o, snd);
    if (ep >= 0) {
        close(ep);
    }
    free(sb.fd);
    free(sb.got);
    free(sb.deliv);
    free(sb.round_last);
    return rc;
}
