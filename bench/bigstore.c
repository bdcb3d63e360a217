/* bigstore: a large store and what it costs a cluster (issue 9): filling
 * it, the leader's loop while it is snapshotted and sent to a follower, a
 * node's catch-up and cold restart, and a writer's latency meanwhile.
 *
 *   bigstore fill   --system flipd|etcd --endpoints H:P,... --n N
 *                   [--keys K] [--value-bytes 1024] [--threads 32]
 *                   [--prefix big.] [--probe H:P] [--max-seconds 600]
 *   bigstore wait   --system flipd|etcd --node H:P [--leader H:P]
 *                   [--probe H:P] [--t0-ns NS] [--max-seconds 300]
 *                   [--watch-pid PID [--rss-limit-mb N]]
 *   bigstore writer --endpoints H:P,... [--interval-ms 10] [--seconds 60]
 *                   [--key bench.big.w] [--ready-file PATH]
 *   bigstore probe  --probe H:P [--seconds 60] [--ready-file PATH]
 *
 * fill: --threads connections (flipd: the client library, one flip_set at
 * a time each, redirected to the leader; etcd: one keep-alive HTTP/1.1
 * connection each to its v3 JSON gateway, round-robin over the
 * endpoints) write N values of --value-bytes bytes (string values that
 * differ per write) to PREFIX0000000.. PREFIX{K-1}, in turn (K = N by
 * default: N distinct keys). Reports the time and the rate.
 *
 * wait (flipd): polls --node's status every 5 ms until it answers, is live
 * and has applied the index --leader had applied when the wait began;
 * reports the time from --t0-ns (CLOCK_REALTIME ns, taken by the caller
 * just before it started the node; default: when the wait began) to the
 * first answer and to caught up. --watch-pid PID also reads that process's
 * RssAnon at every poll and reports its largest; with --rss-limit-mb the
 * wait gives up once it passes the limit (a guard for the machine: the
 * caller then kills the process). wait (etcd): polls a linearizable range
 * request on --node until it is answered 200.
 *
 * --probe H:P (flipd, fill and wait): a second thread asks that node (the
 * leader) for its status every 2 ms while the phase runs, as
 * bench/snapshot_stall does: the probe's latency bounds the loop stalls
 * that overlapped the phase (it also holds this machine's scheduling), and
 * the node's own loop meter (Status loop_*) is read at the first and the
 * last answer: the turns over 10 ms during the phase, and the longest turn
 * since the node started. Leadership changes are counted from the
 * (term, leader) pairs it sees.
 *
 * writer (flipd): one int flip every --interval-ms until SIGTERM/SIGINT or
 * --seconds; reports the latency of every flip (p50, p99, max).
 *
 * probe (flipd): the --probe thread alone, until SIGTERM/SIGINT or
 * --seconds.
 *
 * writer and probe: --ready-file PATH is created once the signal handlers
 * are in place and the run has begun (a caller that stops them with
 * SIGTERM waits for it first).
 *
 * Prints one JSON object. Bounded: every call has a 5 s deadline, every
 * phase --max-seconds. Exit status: 0 done, 1 a phase failed or was cut
 * short (the JSON says what was measured), 2 usage. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/httpmini.h"
#include "bench/lib/bhttp.h"
#include "bench/lib/bopt.h"
#include "bench/lib/bstat.h"
#include "client/flip.h"

#define PROG        "bigstore"
#define THREADS_MAX 256u
#define VALUE_MAX   65536u
#define PROBES_MAX  2000000u
#define WRITES_MAX  2000000u
#define SLOW_MS     10u
#define CALL_MS     5000u
#define POLL_MS     5u
#define EXIT_FAILED 1
#define EXIT_USAGE  2
#define NS_PER_MS   1000000ull
#define NS_PER_S    1000000000ull
#define KEY_MAX     300u

struct opts
{
    const char *mode;
    const char *system;
    const char *endpoints;
    const char *node;
    const char *leader;
    const char *probe;
    const char *prefix;
    const char *key;
    const char *t0_ns;
    const char *watch_pid;
    const char *ready_file;
    unsigned n;
    unsigned keys;
    unsigned value_bytes;
    unsigned threads;
    unsigned max_seconds;
    unsigned interval_ms;
    unsigned seconds;
    unsigned rss_limit_mb;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

static int is_etcd(const struct opts *o)
{
    return strcmp(o->system, "etcd") == 0;
}

/* ---- the probe ------------------------------------------------------------
 */

struct probe
{
    const char *addr;
    volatile int stop;
    uint64_t *lat_ns;
    size_t n;
    unsigned failed;
    unsigned slow;
    unsigned changes;
    uint64_t term;
    uint64_t leader;
    int have;
    uint64_t busy_max_us; /* since the node started, at the last answer */
    uint64_t cpu_max_us;
    uint64_t over10_first;
    uint64_t over10_last;
    uint64_t stalls_first;
    uint64_t stalls_last;
    pthread_t th;
    int running;
};

static void *probe_run(void *arg)
{
    struct probe *p = arg;
    struct flip_client *c = NULL;

    if (flip_client_new(&c, p->addr, PROG "-probe") != FLIP_OK) {
        p->failed++;
        return NULL;
    }
    flip_client_set_timeout(c, CALL_MS);
    while (!p->stop && p->n < PROBES_MAX) {
        struct flip_node_status st;
        uint64_t t0 = bench_mono_ns();

        memset(&st, 0, sizeof st);
        if (flip_status_node(c, p->addr, 0, &st) != FLIP_OK) {
            p->failed++;
        } else {
            uint64_t lat = bench_mono_ns() - t0;

            p->lat_ns[p->n++] = lat;
            if (lat > SLOW_MS * NS_PER_MS) {
                p->slow++;
            }
            if (p->term != 0 &&
                (st.term != p->term || st.leader_id != p->leader)) {
                p->changes++;
            }
            p->term = st.term;
            p->leader = st.leader_id;
            if (!p->have) {
                p->have = 1;
                p->over10_first = st.loop_turns_over_10ms;
                p->stalls_first = st.loop_stalls_over_10ms;
            }
            p->over10_last = st.loop_turns_over_10ms;
            p->stalls_last = st.loop_stalls_over_10ms;
            p->busy_max_us = st.loop_busy_max_us;
            p->cpu_max_us = st.loop_cpu_max_us;
        }
        flip_node_status_clear(&st);
        bench_sleep_ms(2);
    }
    flip_client_free(c);
    return NULL;
}

static int probe_start(struct probe *p, const char *addr)
{
    memset(p, 0, sizeof *p);
    if (addr == NULL) {
        return 0;
    }
    p->addr = addr;
    p->lat_ns = calloc(PROBES_MAX, sizeof *p->lat_ns);
    if (p->lat_ns == NULL || pthread_create(&p->th, NULL, probe_run, p) != 0) {
        free(p->lat_ns);
        p->lat_ns = NULL;
        return -1;
    }
    p->running = 1;
    return 0;
}

/* Stops the probe and prints its figures as JSON members (",..."). */
static void probe_finish(struct probe *p)
{
    if (!p->running) {
        return;
    }
    p->stop = 1;
    pthread_join(p->th, NULL);
    bench_sort_u64(p->lat_ns, p->n);
    printf(",\"probe\":{\"probes\":%zu,\"failed\":%u,\"over_%ums\":%u", p->n,
           p->failed, SLOW_MS, p->slow);
    if (p->n > 0) {
        printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
               bench_pct_ms_u64(p->lat_ns, p->n, 50),
               bench_pct_ms_u64(p->lat_ns, p->n, 99),
               (double)p->lat_ns[p->n - 1] / 1e6);
    }
    printf(",\"leader_changes\":%u", p->changes);
    if (p->have) {
        printf(
            ",\"loop_busy_max_ms_since_start\":%.1f"
            ",\"loop_cpu_max_ms_since_start\":%.1f"
            ",\"loop_turns_over_10ms\":%llu,\"loop_stalls_over_10ms\":%llu",
            (double)p->busy_max_us / 1e3, (double)p->cpu_max_us / 1e3,
            (unsigned long long)(p->over10_last - p->over10_first),
            (unsigned long long)(p->stalls_last - p->stalls_first));
    }
    printf("}");
    free(p->lat_ns);
    p->lat_ns = NULL;
    p->running = 0;
}

/* ---- fill -----------------------------------------------------------------
 */

struct filler
{
    const struct opts *o;
    unsigned index;
    unsigned done;
    unsigned failed;
    uint64_t deadline;
    pthread_t th;
};

/* A value of vlen bytes that differs per write: its number first. */
static void value_of(char *val, unsigned vlen, unsigned i)
{
    char num[16];

    memset(val, 'v', vlen);
    val[vlen] = '\0';
    snprintf(num, sizeof num, "%010u-", i);
    memcpy(val, num, vlen < 11 ? vlen : 11);
}

static void *fill_flipd(void *arg)
{
    struct filler *f = arg;
    const struct opts *o = f->o;
    struct flip_client *c = NULL;
    char *val = malloc(o->value_bytes + 1);
    char key[KEY_MAX];

    if (val == NULL || flip_client_new(&c, o->endpoints, PROG) != FLIP_OK) {
        free(val);
        f->failed++;
        return NULL;
    }
    flip_client_set_timeout(c, CALL_MS);
    for (unsigned i = f->index; i < o->n; i += o->threads) {
        struct flip_value v;

        if (bench_mono_ns() > f->deadline || stop_signal) {
            break;
        }
        snprintf(key, sizeof key, "%s%07u", o->prefix, i % o->keys);
        value_of(val, o->value_bytes, i);
        v.type = FLIP_TYPE_STRING;
        v.u.s = val;
        if (flip_set(c, key, &v, NULL, NULL) != FLIP_OK) {
            if (f->failed++ < 3) {
                fprintf(stderr, PROG ": set %s: %s\n", key,
                        flip_client_errmsg(c));
            }
            continue;
        }
        f->done++;
    }
    flip_client_free(c);
    free(val);
    return NULL;
}

static void *fill_etcd(void *arg)
{
    struct filler *f = arg;
    const struct opts *o = f->o;
    size_t b64cap = 4 * ((size_t)o->value_bytes + 2) / 3 + 8;
    size_t cap = 2 * b64cap + 2 * KEY_MAX + 512;
    char *val = malloc(o->value_bytes + 1);
    char *vb = malloc(b64cap);
    char *body = malloc(cap);
    char *req = malloc(cap + 256);
    char eps[1024];
    char *list[16];
    unsigned n_eps = 0;
    char *save = NULL;
    char *ep;
    char key[KEY_MAX];
    char kb[2 * KEY_MAX];
    struct bench_http *h = malloc(sizeof *h);

    snprintf(eps, sizeof eps, "%s", o->endpoints);
    for (char *e = strtok_r(eps, ",", &save); e != NULL && n_eps < 16;
         e = strtok_r(NULL, ",", &save)) {
        list[n_eps++] = e;
    }
    /* this thread's endpoint: round-robin */
    ep = n_eps > 0 ? list[f->index % n_eps] : NULL;
    if (val == NULL || vb == NULL || body == NULL || req == NULL || h == NULL ||
        ep == NULL || bench_http_init(h, ep, CALL_MS) != 0) {
        f->failed++;
        goto out;
    }
    for (unsigned i = f->index; i < o->n; i += o->threads) {
        size_t len;
        int st;

        if (bench_mono_ns() > f->deadline || stop_signal) {
            break;
        }
        snprintf(key, sizeof key, "%s%07u", o->prefix, i % o->keys);
        value_of(val, o->value_bytes, i);
        b64_encode(key, strlen(key), kb);
        b64_encode(val, o->value_bytes, vb);
        snprintf(body, cap, "{\"key\":\"%s\",\"value\":\"%s\"}", kb, vb);
        len = http_post(req, cap + 256, h->a.name, "/v3/kv/put", body);
        st = len == 0 ? -1 : bench_http_call(h, req, len);
        if (st != 200) {
            if (f->failed++ < 3) {
                fprintf(stderr, PROG ": put %s on %s: status %d\n", key, ep,
                        st);
            }
            bench_http_close(h);
            if (st < 0) {
                bench_sleep_ms(10);
            }
            continue;
        }
        f->done++;
    }
out:
    if (h != NULL) {
        bench_http_close(h);
    }
    free(h);
    free(val);
    free(vb);
    free(body);
    free(req);
    return NULL;
}

static int run_fill(const struct opts *o)
{
    struct filler *f = calloc(o->threads, sizeof *f);
    struct probe p;
    uint64_t t0 = bench_mono_ns();
    unsigned done = 0;
    unsigned failed = 0;
    unsigned started = 0;

    if (f == NULL || probe_start(&p, is_etcd(o) ? NULL : o->probe) != 0) {
        free(f);
        return EXIT_FAILED;
    }
    for (unsigned t = 0; t < o->threads; t++) {
        f[t].o = o;
        f[t].index = t;
        f[t].deadline = t0 + (uint64_t)o->max_seconds * NS_PER_S;
        if (pthread_create(&f[t].th, NULL, is_etcd(o) ? fill_etcd : fill_flipd,
                           &f[t]) != 0) {
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++) {
        pthread_join(f[t].th, NULL);
        done += f[t].done;
        failed += f[t].failed;
    }
    {
        double s = (double)(bench_mono_ns() - t0) / 1e9;

        printf(
            "{\"system\":\"%s\",\"writes\":%u,\"keys\":%u,\"value_bytes\":%u"
            ",\"threads\":%u,\"acked\":%u,\"failed\":%u,\"seconds\":%.3f"
            ",\"writes_s\":%.1f,\"mb_s\":%.2f",
            o->system, o->n, o->keys, o->value_bytes, started, done, failed, s,
            s > 0 ? done / s : 0.0,
            s > 0 ? (double)done * o->value_bytes / 1e6 / s : 0.0);
    }
    probe_finish(&p);
    printf("}\n");
    free(f);
    return done == o->n ? 0 : EXIT_FAILED;
}

/* ---- wait -----------------------------------------------------------------
 */

static uint64_t t0_real(const struct opts *o)
{
    unsigned long long v;

    if (o->t0_ns != NULL && sscanf(o->t0_ns, "%llu", &v) == 1) {
        return (uint64_t)v;
    }
    return bench_real_ns();
}

/* RssAnon of a process in kB; -1 if it cannot be read. */
static long rss_anon_kb(const char *pid)
{
    char path[64];
    char line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%s/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "RssAnon: %ld", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

static int wait_flipd(const struct opts *o)
{
    struct flip_client *c = NULL;
    struct probe p;
    uint64_t t0 = t0_real(o);
    uint64_t start = bench_mono_ns();
    uint64_t deadline = start + (uint64_t)o->max_seconds * NS_PER_S;
    uint64_t target = 0;
    double first_ms = -1;
    double live_ms = -1;
    uint64_t applied = 0;
    unsigned polls = 0;
    long rss_max = -1;
    double over_ms = -1;

    if (flip_client_new(&c, o->node, PROG) != FLIP_OK) {
        return EXIT_USAGE;
    }
    flip_client_set_timeout(c, CALL_MS);
    if (o->leader != NULL) {
        struct flip_node_status st;

        memset(&st, 0, sizeof st);
        if (flip_status_node(c, o->leader, 0, &st) == FLIP_OK) {
            target = st.applied_revision;
        }
        flip_node_status_clear(&st);
    }
    if (probe_start(&p, o->probe) != 0) {
        flip_client_free(c);
        return EXIT_FAILED;
    }
    while (bench_mono_ns() < deadline && !stop_signal) {
        struct flip_node_status st;

        memset(&st, 0, sizeof st);
        polls++;
        if (o->watch_pid != NULL) {
            long kb = rss_anon_kb(o->watch_pid);

            rss_max = kb > rss_max ? kb : rss_max;
            if (o->rss_limit_mb > 0 && kb > (long)o->rss_limit_mb * 1024) {
                over_ms = (double)(bench_real_ns() - t0) / 1e6;
                break;
            }
        }
        if (flip_status_node(c, o->node, 0, &st) == FLIP_OK) {
            double ms = (double)(bench_real_ns() - t0) / 1e6;

            if (first_ms < 0) {
                first_ms = ms;
            }
            applied = st.applied_revision;
            if (st.live && st.applied_revision >= target) {
                live_ms = ms;
                flip_node_status_clear(&st);
                break;
            }
        }
        flip_node_status_clear(&st);
        bench_sleep_ms(POLL_MS);
    }
    printf(
        "{\"system\":\"flipd\",\"node\":\"%s\",\"target_index\":%llu"
        ",\"applied_index\":%llu,\"polls\":%u",
        o->node, (unsigned long long)target, (unsigned long long)applied,
        polls);
    if (first_ms >= 0) {
        printf(",\"first_answer_ms\":%.1f", first_ms);
    }
    if (live_ms >= 0) {
        printf(",\"live_ms\":%.1f", live_ms);
    }
    if (o->watch_pid != NULL) {
        printf(",\"watch_rss_anon_max_kb\":%ld,\"rss_limit_hit\":%s", rss_max,
               over_ms >= 0 ? "true" : "false");
        if (over_ms >= 0) {
            printf(",\"gave_up_ms\":%.1f", over_ms);
        }
    }
    probe_finish(&p);
    printf("}\n");
    flip_client_free(c);
    return live_ms >= 0 ? 0 : EXIT_FAILED;
}

static int wait_etcd(const struct opts *o)
{
    struct bench_http *h = malloc(sizeof *h);
    uint64_t t0 = t0_real(o);
    uint64_t deadline = bench_mono_ns() + (uint64_t)o->max_seconds * NS_PER_S;
    double first_ms = -1;
    double live_ms = -1;
    unsigned polls = 0;
    char req[512];
    size_t len = 0;

    if (h != NULL && bench_http_init(h, o->node, CALL_MS) == 0) {
        /* key "x" (eA==), linearizable: the default of a range */
        len = http_post(req, sizeof req, h->a.name, "/v3/kv/range",
                        "{\"key\":\"eA==\"}");
    }
    while (len > 0 && bench_mono_ns() < deadline && !stop_signal) {
        int st;

        polls++;
        st = bench_http_call(h, req, len);
        if (st > 0 && first_ms < 0) {
            first_ms = (double)(bench_real_ns() - t0) / 1e6;
        }
        if (st == 200) {
            live_ms = (double)(bench_real_ns() - t0) / 1e6;
            break;
        }
        bench_http_close(h);
        bench_sleep_ms(POLL_MS);
    }
    if (h != NULL) {
        bench_http_close(h);
    }
    free(h);
    printf("{\"system\":\"etcd\",\"node\":\"%s\",\"polls\":%u", o->node, polls);
    if (first_ms >= 0) {
        printf(",\"first_answer_ms\":%.1f", first_ms);
    }
    if (live_ms >= 0) {
        printf(",\"live_ms\":%.1f", live_ms);
    }
    printf("}\n");
    return live_ms >= 0 ? 0 : EXIT_FAILED;
}

/* ---- writer ---------------------------------------------------------------
 */

/* Creates o->ready_file, if any. */
static void say_ready(const struct opts *o)
{
    FILE *f;

    if (o->ready_file == NULL) {
        return;
    }
    f = fopen(o->ready_file, "w");
    if (f != NULL) {
        fclose(f);
    }
}

static int run_writer(const struct opts *o)
{
    struct flip_client *c = NULL;
    uint64_t *lat = calloc(WRITES_MAX, sizeof *lat);
    uint64_t t0 = bench_mono_ns();
    uint64_t end = t0 + (uint64_t)o->seconds * NS_PER_S;
    size_t n = 0;
    unsigned failed = 0;

    if (lat == NULL || flip_client_new(&c, o->endpoints, PROG) != FLIP_OK) {
        free(lat);
        return EXIT_USAGE;
    }
    flip_client_set_timeout(c, CALL_MS);
    while (!stop_signal && n < WRITES_MAX && bench_mono_ns() < end) {
        struct flip_value v;
        uint64_t w0 = bench_mono_ns();

        v.type = FLIP_TYPE_INT;
        v.u.i = (int64_t)n;
        if (flip_set(c, o->key, &v, NULL, NULL) != FLIP_OK) {
            failed++;
        } else {
            lat[n++] = bench_mono_ns() - w0;
        }
        if (n + failed == 1) {
            say_ready(o);
        }
        {
            uint64_t next = w0 + (uint64_t)o->interval_ms * NS_PER_MS;
            uint64_t now = bench_mono_ns();

            if (next > now) {
                bench_sleep_ms((unsigned)((next - now) / NS_PER_MS));
            }
        }
    }
    bench_sort_u64(lat, n);
    printf("{\"writes\":%zu,\"failed\":%u,\"seconds\":%.2f", n, failed,
           (double)(bench_mono_ns() - t0) / 1e9);
    if (n > 0) {
        printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
               bench_pct_ms_u64(lat, n, 50), bench_pct_ms_u64(lat, n, 99),
               (double)lat[n - 1] / 1e6);
    }
    printf("}\n");
    flip_client_free(c);
    free(lat);
    return n > 0 && failed == 0 ? 0 : EXIT_FAILED;
}

static int run_probe(const struct opts *o)
{
    struct probe p;
    uint64_t end = bench_mono_ns() + (uint64_t)o->seconds * NS_PER_S;

    if (probe_start(&p, o->probe) != 0) {
        return EXIT_FAILED;
    }
    say_ready(o);
    while (!stop_signal && bench_mono_ns() < end) {
        bench_sleep_ms(10);
    }
    printf("{\"node\":\"%s\"", o->probe);
    probe_finish(&p);
    printf("}\n");
    return 0;
}

/* ---- main -----------------------------------------------------------------
 */

static const char usage_text[] =
    "usage: bigstore fill --system flipd|etcd --endpoints H:P,... --n N\n"
    "                [--keys K] [--value-bytes 1024] [--threads 32]\n"
    "                [--prefix big.] [--probe H:P] [--max-seconds 600]\n"
    "       bigstore wait --system flipd|etcd --node H:P [--leader H:P]\n"
    "                [--probe H:P] [--t0-ns NS] [--max-seconds 300]\n"
    "                [--watch-pid PID [--rss-limit-mb N]]\n"
    "       bigstore writer --endpoints H:P,... [--interval-ms 10]\n"
    "                [--seconds 60] [--key bench.big.w] [--ready-file F]\n"
    "       bigstore probe --probe H:P [--seconds 60] [--ready-file F]\n";

int main(int argc, char **argv)
{
#define O(name, min, max, member) \
    BENCH_UINT(struct opts, name, min, max, member)
#define S(name, member) BENCH_STR(struct opts, name, member)
    static const struct bench_opt optab[] = {
        O("n", 1, 100000000, n),
        O("keys", 1, 10000000, keys),
        O("value-bytes", 1, VALUE_MAX, value_bytes),
        O("threads", 1, THREADS_MAX, threads),
        O("max-seconds", 1, 86400, max_seconds),
        O("interval-ms", 1, 60000, interval_ms),
        O("seconds", 1, 86400, seconds),
        O("rss-limit-mb", 0, 10000000, rss_limit_mb),
        S("system", system),
        S("endpoints", endpoints),
        S("node", node),
        S("leader", leader),
        S("probe", probe),
        S("prefix", prefix),
        S("key", key),
        S("t0-ns", t0_ns),
        S("watch-pid", watch_pid),
        S("ready-file", ready_file),
    };
#undef O
#undef S
    int first;
    struct opts o;
    struct sigaction sa;

    memset(&o, 0, sizeof o);
    o.system = "flipd";
    o.prefix = "big.";
    o.key = "bench.big.w";
    o.value_bytes = 1024;
    o.threads = 32;
    o.max_seconds = 600;
    o.interval_ms = 10;
    o.seconds = 60;
    first = bench_getopt(PROG, usage_text, argc, argv, optab,
                         sizeof optab / sizeof optab[0], &o, 1);
    if (first < 0) {
        return EXIT_USAGE;
    }
    if (first != argc - 1) {
        bench_usage_error(PROG, usage_text, "one mode is required", NULL);
        return EXIT_USAGE;
    }
    o.mode = argv[first];
    if (strcmp(o.system, "flipd") != 0 && !is_etcd(&o)) {
        bench_usage_error(PROG, usage_text, "--system wants flipd or etcd",
                          o.system);
        return EXIT_USAGE;
    }
    if (strlen(o.prefix) > 200 || strlen(o.key) > 256) {
        bench_usage_error(PROG, usage_text, "--prefix or --key too long", NULL);
        return EXIT_USAGE;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (strcmp(o.mode, "fill") == 0 && o.endpoints != NULL && o.n > 0) {
        if (o.keys == 0) {
            o.keys = o.n;
        }
        return run_fill(&o);
    }
    if (strcmp(o.mode, "wait") == 0 && o.node != NULL) {
        return is_etcd(&o) ? wait_etcd(&o) : wait_flipd(&o);
    }
    if (strcmp(o.mode, "writer") == 0 && o.endpoints != NULL) {
        return run_writer(&o);
    }
    if (strcmp(o.mode, "probe") == 0 && o.probe != NULL) {
        return run_probe(&o);
    }
    bench_usage_error(PROG, usage_text, "missing or unknown mode/arguments",
                      o.mode);
    return EXIT_USAGE;
}
