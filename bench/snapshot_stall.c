/* snapshot_stall: what a snapshot of a large store costs the leader's loop
 * (review M3), seen from a client.
 *
 *   snapshot_stall --endpoints H:P,... --probe H:P
 *                  [--fill-mb 0] [--value-kb 60] [--seconds 20]
 *                  [--probe-gap-ms 2]
 *
 * Fill (--fill-mb > 0): sets fill.NNNNNN to string values of --value-kb
 * kilobytes until that many megabytes were acknowledged, one at a time.
 *
 * Measure (--seconds > 0): the main thread keeps writing small values (to
 * push the log past the snapshot threshold) while a second thread asks the
 * --probe node (the leader) for its status every --probe-gap-ms. A status
 * request is answered from the node's loop without raft or disk, so its
 * latency is the loop's responsiveness plus a loopback round trip: its
 * maximum bounds the longest loop stall that overlapped the run. The
 * probe also counts how often the (term, leader) pair it reports changed,
 * and reads the node's own loop meter (Status.loop_*: the longest busy
 * turn since the node started, and the turns over 1 and 10 ms during the
 * run), which leaves out the machine's scheduling the latency includes.
 *
 * Prints one "key value" line per figure. Bounded: every call has a 5 s
 * deadline and each phase its own time limit. Exit status: 0 done, 1 a
 * phase failed, 2 usage. Uses client/flip.h only. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/lib/bopt.h"
#include "bench/lib/bstat.h"
#include "client/flip.h"

#define PROG         "snapshot_stall"
#define MAX_PROBES   2000000u
#define FILL_LIMIT_S 300u
#define SLOW_MS      10u
#define EXIT_FAILED  1
#define EXIT_USAGE   2
#define NS_PER_MS    1000000ull
#define NS_PER_S     1000000000ull

struct opts
{
    const char *endpoints;
    const char *probe;
    unsigned fill_mb;
    unsigned value_kb;
    unsigned seconds;
    unsigned gap_ms;
};

/* The node's own loop meter (Status loop_*), as one answer gave it. */
struct loop_meter
{
    uint64_t busy_max_us;
    uint64_t cpu_max_us;
    uint64_t over_1ms;
    uint64_t over_10ms;
    uint64_t stalls;
};

struct probe
{
    const struct opts *o;
    volatile int stop;
    uint64_t *lat_ns;
    size_t n;
    unsigned failed;
    unsigned slow; /* answers slower than SLOW_MS */
    unsigned changes;
    uint64_t term;
    uint64_t leader;
    /* the node's own loop meter, at the first and the last answer */
    int have_first;
    struct loop_meter first;
    struct loop_meter last;
};

static struct loop_meter meter_of(const struct flip_node_status *st)
{
    struct loop_meter m = { st->loop_busy_max_us, st->loop_cpu_max_us,
                            st->loop_turns_over_1ms, st->loop_turns_over_10ms,
                            st->loop_stalls_over_10ms };
    return m;
}

static const char usage_text[] =
    "usage: snapshot_stall --endpoints H:P,... --probe H:P [options]\n"
    "  --fill-mb N       first write N MB of values (default 0)\n"
    "  --value-kb N      size of each fill value (default 60, max 63)\n"
    "  --seconds N       measure for N seconds (default 20)\n"
    "  --probe-gap-ms N  pause between status probes (default 2)\n";

static int fill(const struct opts *o, struct flip_client *c)
{
    size_t vlen = (size_t)o->value_kb * 1000;
    char *val = malloc(vlen + 1);
    struct flip_value v;
    uint64_t want = (uint64_t)o->fill_mb * 1000000;
    uint64_t done = 0;
    uint64_t t0 = bench_mono_ns();
    unsigned i = 0;
    char key[32];

    if (val == NULL) {
        return EXIT_FAILED;
    }
    memset(val, 'x', vlen);
    val[vlen] = '\0';
    v.type = FLIP_TYPE_STRING;
    v.u.s = val;
    while (done < want) {
        uint64_t rev = 0;
        int rv;

        if (bench_mono_ns() - t0 > FILL_LIMIT_S * NS_PER_S) {
            fprintf(stderr, PROG ": fill took longer than %u s\n",
                    FILL_LIMIT_S);
            free(val);
            return EXIT_FAILED;
        }
        snprintf(key, sizeof key, "fill.%06u", i);
        val[0] = (char)('a' + (int)(i % 26)); /* values differ */
        rv = flip_set(c, key, &v, NULL, &rev);
        if (rv != FLIP_OK) {
            fprintf(stderr, PROG ": fill set %s: %s\n", key,
                    flip_client_errmsg(c));
            free(val);
            return EXIT_FAILED;
        }
        done += vlen;
        i++;
    }
    free(val);
    printf("fill_values %u\nfill_mb %.1f\nfill_s %.1f\n", i, (double)done / 1e6,
           (double)(bench_mono_ns() - t0) / 1e9);
    return 0;
}

static void *probe_run(void *arg)
{
    struct probe *p = arg;
    struct flip_client *c = NULL;

    if (flip_client_new(&c, p->o->probe, PROG "-probe") != FLIP_OK) {
        p->failed++;
        return NULL;
    }
    while (!p->stop && p->n < MAX_PROBES) {
        struct flip_node_status st;
        uint64_t t0 = bench_mono_ns();
        int rv;

        memset(&st, 0, sizeof st);
        rv = flip_status_node(c, p->o->probe, 0, &st);
        if (rv != FLIP_OK) {
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
            if (!p->have_first) {
                p->have_first = 1;
                p->first = meter_of(&st);
            }
            p->last = meter_of(&st);
        }
        flip_node_status_clear(&st);
        bench_sleep_ms(p->o->gap_ms);
    }
    flip_client_free(c);
    return NULL;
}

static int measure(const struct opts *o, struct flip_client *c)
{
    struct probe p;
    pthread_t th;
    uint64_t t0;
    uint64_t wmax = 0;
    unsigned writes = 0;
    unsigned wfailed = 0;
    struct flip_value v;
    char key[32];

    memset(&p, 0, sizeof p);
    p.o = o;
    p.lat_ns = calloc(MAX_PROBES, sizeof *p.lat_ns);
    if (p.lat_ns == NULL || pthread_create(&th, NULL, probe_run, &p) != 0) {
        free(p.lat_ns);
        return EXIT_FAILED;
    }
    t0 = bench_mono_ns();
    v.type = FLIP_TYPE_INT;
    while (bench_mono_ns() - t0 < (uint64_t)o->seconds * NS_PER_S) {
        uint64_t rev = 0;
        uint64_t w0 = bench_mono_ns();

        snprintf(key, sizeof key, "tick.%u", writes % 64);
        v.u.i = (int64_t)writes;
        if (flip_set(c, key, &v, NULL, &rev) != FLIP_OK) {
            wfailed++;
            bench_sleep_ms(10);
        } else if (bench_mono_ns() - w0 > wmax) {
            wmax = bench_mono_ns() - w0;
        }
        writes++;
    }
    p.stop = 1;
    pthread_join(th, NULL);
    bench_sort_u64(p.lat_ns, p.n);
    printf("writes %u\nwrites_failed %u\nwrite_max_ms %.1f\n", writes, wfailed,
           (double)wmax / 1e6);
    printf("probes %zu\nprobes_failed %u\nprobes_over_%ums %u\n", p.n, p.failed,
           SLOW_MS, p.slow);
    if (p.n > 0) {
        printf("probe_p50_ms %.2f\nprobe_p99_ms %.2f\nprobe_max_ms %.1f\n",
               bench_pct_ms_u64(p.lat_ns, p.n, 50),
               bench_pct_ms_u64(p.lat_ns, p.n, 99),
               (double)p.lat_ns[p.n - 1] / 1e6);
    }
    printf("probe_leader_changes %u\n", p.changes);
    if (p.have_first) {
        /* the node's own figure: its loop's busy time, without the wait
         * for a CPU that the probe's latency also holds */
        printf(
            "loop_busy_max_ms_since_start %.1f\n"
            "loop_cpu_max_ms_since_start %.1f\n"
            "loop_turns_over_1ms %llu\nloop_turns_over_10ms %llu\n"
            "loop_stalls_over_10ms %llu\n",
            (double)p.last.busy_max_us / 1e3, (double)p.last.cpu_max_us / 1e3,
            (unsigned long long)(p.last.over_1ms - p.first.over_1ms),
            (unsigned long long)(p.last.over_10ms - p.first.over_10ms),
            (unsigned long long)(p.last.stalls - p.first.stalls));
    }
    free(p.lat_ns);
    return p.n == 0 ? EXIT_FAILED : 0;
}

int main(int argc, char **argv)
{
    static const struct bench_opt optab[] = {
        BENCH_UINT(struct opts, "fill-mb", 0, 4000, fill_mb),
        BENCH_UINT(struct opts, "value-kb", 1, 63, value_kb),
        BENCH_UINT(struct opts, "seconds", 0, 600, seconds),
        BENCH_UINT(struct opts, "probe-gap-ms", 0, 1000, gap_ms),
        BENCH_STR(struct opts, "endpoints", endpoints),
        BENCH_STR(struct opts, "probe", probe),
    };
    struct opts o = { NULL, NULL, 0, 60, 20, 2 };
    struct flip_client *c = NULL;
    int rv = 0;

    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], &o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (o.endpoints == NULL || o.probe == NULL) {
        bench_usage_error(PROG, usage_text,
                          "--endpoints and --probe are "
                          "required",
                          NULL);
        return EXIT_USAGE;
    }
    if (flip_client_new(&c, o.endpoints, PROG) != FLIP_OK) {
        return EXIT_USAGE;
    }
    flip_client_set_timeout(c, 5000);
    if (o.fill_mb > 0) {
        rv = fill(&o, c);
    }
    if (rv == 0 && o.seconds > 0) {
        rv = measure(&o, c);
    }
    flip_client_free(c);
    return rv;
}
