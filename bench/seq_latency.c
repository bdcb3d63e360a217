/* seq_latency: one client, N sequential operations, each timed from call
 * to answer.
 *
 *   seq_latency --endpoints H:P,... [--n 1000] [--idle-ms 0]
 *               [--key bench.seq] [--get | --stale-get]
 *               [--value bool|int] [--warmup 1] [--timeout 5000]
 *               [--max-seconds 120] [--errors 5] [--samples FILE]
 *               [--json]
 *
 * Default mode: flip_set of the key, a bool alternating true/false (or, with
 * --value int, a counter), each call timed with CLOCK_MONOTONIC until the
 * acknowledgement (a majority has it on disk and the leader applied it).
 * --get times linearizable flip_get (leader read barrier), --stale-get
 * stale reads from whichever node answers. With --idle-ms the client
 * sleeps between operations (the connection stays open).
 *
 * Prints one human-readable block, or one JSON object with --json. Latency
 * percentiles are over the successful operations only. Throughput is
 * successful operations per second of wall time, idle sleeps included.
 *
 * Bounded: --n at most 1,000,000; the whole run stops at --max-seconds
 * (what was measured so far is still reported, with "truncated").
 *
 * Exit status: 0 every operation succeeded, 1 some failed or the run was
 * truncated, 2 usage or setup error. Uses client/flip.h only. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/lib/bopt.h"
#include "bench/lib/bstat.h"
#include "client/flip.h"
#include "client/text.h"

#define N_MAX       1000000u
#define IDLE_MAX_MS 60000u
#define TIMEOUT_MAX 600000u
#define MAX_SECONDS 86400u
#define WARMUP_MAX  1000u
#define ERRORS_MAX  1000u
#define CODE_SLOTS  32 /* FLIP_* codes are below this; the rest "other" */
#define EXIT_FAILED 1
#define EXIT_USAGE  2
#define PROG        "seq_latency"
#define CLIENT_NAME PROG
#define ERRMSG_MAX  256

enum mode
{
    MODE_SET,
    MODE_GET,
    MODE_STALE_GET
};

struct opts
{
    const char *endpoints;
    const char *key;
    const char *samples; /* --samples FILE, or NULL */
    unsigned n;
    unsigned idle_ms;
    unsigned warmup;
    unsigned timeout_ms;
    unsigned max_seconds;
    unsigned errors; /* error lines printed on stderr */
    enum mode mode;
    int int_value; /* --value int */
    int json;
};

struct result
{
    uint64_t *lat_ns; /* successful operations, sorted after the run */
    FILE *samples;    /* --samples: one line per measured operation */
    unsigned n_ok;
    unsigned n_failed;
    unsigned n_done; /* attempted */
    int truncated;
    uint64_t elapsed_ns;    /* wall time of the measured loop */
    uint64_t sum_ns;        /* sum of the successful latencies */
    uint64_t max_failed_ns; /* slowest failed call */
    unsigned codes[CODE_SLOTS + 1];
    char first_err[ERRMSG_MAX];
    uint64_t first_revision;
    uint64_t last_revision;
};

static const char usage_text[] =
    "usage: seq_latency --endpoints H:P,... [options]\n"
    "\n"
    "  --endpoints H:P,...  client addresses of the nodes (required)\n"
    "  --n N                operations to time (default 1000, max 1000000)\n"
    "  --idle-ms MS         sleep between operations (default 0)\n"
    "  --key KEY            flag to use (default bench.seq)\n"
    "  --get                time linearizable flip_get instead of flip_set\n"
    "  --stale-get          time stale flip_get (any node)\n"
    "  --value bool|int     set mode: alternate true/false (default) or\n"
    "                       write an increasing counter\n"
    "  --warmup N           untimed operations first (default 1: connects)\n"
    "  --timeout MS         per-operation deadline (default 5000)\n"
    "  --max-seconds S      bound on the whole run (default 120)\n"
    "  --errors N           failures described on stderr (default 5)\n"
    "  --samples FILE       write one line per operation, in order:\n"
    "                       INDEX LATENCY_MS RESULT (\"ok\" or the error)\n"
    "  --json               one JSON object instead of the text block\n"
    "\n"
    "exit status: 0 all ok, 1 failures or truncated, 2 usage/setup error\n";

static int usage_error(const char *what, const char *arg)
{
    bench_usage_error(PROG, usage_text, what, arg);
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct bench_numopt nums[] = {
        BENCH_NUMOPT(struct opts, "--n", 1, N_MAX, n),
        BENCH_NUMOPT(struct opts, "--idle-ms", 0, IDLE_MAX_MS, idle_ms),
        BENCH_NUMOPT(struct opts, "--warmup", 0, WARMUP_MAX, warmup),
        BENCH_NUMOPT(struct opts, "--timeout", 1, TIMEOUT_MAX, timeout_ms),
        BENCH_NUMOPT(struct opts, "--max-seconds", 1, MAX_SECONDS, max_seconds),
        BENCH_NUMOPT(struct opts, "--errors", 0, ERRORS_MAX, errors),
    };
    int i;
    int r;

    memset(o, 0, sizeof *o);
    o->key = "bench.seq";
    o->n = 1000;
    o->warmup = 1;
    o->timeout_ms = 5000;
    o->max_seconds = 120;
    o->errors = 5;
    o->mode = MODE_SET;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--get") == 0) {
            o->mode = MODE_GET;
            continue;
        }
        if (strcmp(a, "--stale-get") == 0) {
            o->mode = MODE_STALE_GET;
            continue;
        }
        if (strcmp(a, "--endpoints") == 0 || strcmp(a, "--key") == 0 ||
            strcmp(a, "--value") == 0 || strcmp(a, "--samples") == 0) {
            if (i + 1 >= argc) {
                return usage_error("missing value after", a);
            }
            if (a[2] == 's') {
                o->samples = argv[++i];
            } else if (a[2] == 'e') {
                o->endpoints = argv[++i];
            } else if (a[2] == 'k') {
                o->key = argv[++i];
            } else if (strcmp(argv[i + 1], "int") == 0) {
                o->int_value = 1;
                i++;
            } else if (strcmp(argv[i + 1], "bool") == 0) {
                o->int_value = 0;
                i++;
            } else {
                return usage_error("--value wants bool or int", argv[i + 1]);
            }
            continue;
        }
        r = bench_numopt(PROG, argc, argv, &i, nums,
                         sizeof nums / sizeof nums[0], o);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r == 0) {
            return usage_error("unknown argument", a);
        }
    }
    if (o->endpoints == NULL || o->endpoints[0] == '\0') {
        return usage_error("--endpoints is required", NULL);
    }
    if (o->key[0] == '\0') {
        return usage_error("--key must not be empty", NULL);
    }
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *mode_name(enum mode m)
{
    switch (m) {
    case MODE_SET:
        return "set";
    case MODE_GET:
        return "get";
    case MODE_STALE_GET:
        return "stale-get";
    }
    return "?";
}

/* Operation number `seq` (0-based over warmup and measured). Fills
 * *revision on success. */
static int do_op(struct flip_client *c,
                 const struct opts *o,
                 uint64_t seq,
                 uint64_t *revision)
{
    struct flip_value v;
    struct flip_flag f;
    int rv;

    if (o->mode == MODE_SET) {
        memset(&v, 0, sizeof v);
        if (o->int_value) {
            v.type = FLIP_TYPE_INT;
            v.u.i = (int64_t)seq;
        } else {
            v.type = FLIP_TYPE_BOOL;
            v.u.b = (seq % 2u) == 0 ? 1 : 0;
        }
        return flip_set(c, o->key, &v, NULL, revision);
    }
    memset(&f, 0, sizeof f);
    rv = flip_get(c, o->key, o->mode == MODE_STALE_GET, &f);
    if (rv == FLIP_OK) {
        *revision = f.revision;
    }
    flip_flag_clear(&f);
    return rv;
}

/* Get modes read an existing flag: create it (untimed) if it is absent. */
static int prepare_key(struct flip_client *c, const struct opts *o)
{
    struct flip_flag f;
    struct flip_value v;
    int rv;

    if (o->mode == MODE_SET) {
        return FLIP_OK;
    }
    memset(&f, 0, sizeof f);
    rv = flip_get(c, o->key, 0, &f);
    flip_flag_clear(&f);
    if (rv != FLIP_NOTFOUND) {
        return rv;
    }
    memset(&v, 0, sizeof v);
    v.type = FLIP_TYPE_BOOL;
    v.u.b = 1;
    return flip_set(c, o->key, &v, NULL, NULL);
}

/* Nearest-rank percentile of the sorted successful latencies, in ms. */
static double pct_ms(const struct result *r, unsigned pct)
{
    return bench_pct_ms_u64(r->lat_ns, r->n_ok, pct);
}

static void note_failure(struct result *r,
                         const struct opts *o,
                         struct flip_client *c,
                         int rv,
                         uint64_t lat_ns)
{
    int slot = rv >= 0 && rv < CODE_SLOTS ? rv : CODE_SLOTS;

    r->n_failed++;
    r->codes[slot]++;
    if (lat_ns > r->max_failed_ns) {
        r->max_failed_ns = lat_ns;
    }
    if (r->first_err[0] == '\0') {
        snprintf(r->first_err, sizeof r->first_err, "%s: %s", flip_strerror(rv),
                 flip_client_errmsg(c));
    }
    if (r->n_failed <= o->errors) {
        fprintf(stderr, "seq_latency: op %u: %s after %.3f ms: %s\n",
                r->n_done - 1, flip_strerror(rv), (double)lat_ns / 1e6,
                flip_client_errmsg(c));
    }
}

/* Per-operation deadline: --timeout, cut to what is left of the run. */
static void bound_timeout(struct flip_client *c,
                          const struct opts *o,
                          uint64_t deadline_ns)
{
    uint64_t now = bench_mono_ns();
    uint64_t left_ms = now < deadline_ns ? (deadline_ns - now) / 1000000u : 0;

    if (left_ms < 1) {
        left_ms = 1;
    }
    flip_client_set_timeout(
        c, left_ms < o->timeout_ms ? (unsigned)left_ms : o->timeout_ms);
}

/* The measured loop. Never longer than deadline_ns (monotonic). */
static void run(struct flip_client *c,
                const struct opts *o,
                uint64_t deadline_ns,
                uint64_t seq0,
                struct result *r)
{
    uint64_t t0 = bench_mono_ns();
    uint64_t a;
    uint64_t b;
    uint64_t rev;
    unsigned i;
    int rv;

    for (i = 0; i < o->n; i++) {
        a = bench_mono_ns();
        if (a >= deadline_ns) {
            r->truncated = 1;
            break;
        }
        bound_timeout(c, o, deadline_ns);
        rev = 0;
        rv = do_op(c, o, seq0 + i, &rev);
        b = bench_mono_ns();
        r->n_done++;
        if (r->samples != NULL) {
            fprintf(r->samples, "%u %.3f %s\n", i, (double)(b - a) / 1e6,
                    rv == FLIP_OK ? "ok" : flip_strerror(rv));
        }
        if (rv == FLIP_OK) {
            r->lat_ns[r->n_ok++] = b - a;
            r->sum_ns += b - a;
            if (r->first_revision == 0) {
                r->first_revision = rev;
            }
            r->last_revision = rev;
        } else {
            note_failure(r, o, c, rv, b - a);
        }
        if (o->idle_ms > 0 && i + 1 < o->n) {
            uint64_t now = bench_mono_ns();
            uint64_t idle_ns = (uint64_t)o->idle_ms * 1000000u;

            if (now + idle_ns >= deadline_ns) {
                r->truncated = 1;
                r->elapsed_ns = now - t0;
                return;
            }
            sleep_ms(o->idle_ms);
        }
    }
    r->elapsed_ns = bench_mono_ns() - t0;
}

static double throughput(const struct result *r)
{
    if (r->elapsed_ns == 0) {
        return 0.0;
    }
    return (double)r->n_ok / ((double)r->elapsed_ns / 1e9);
}

static double mean_ms(const struct result *r)
{
    return r->n_ok == 0 ? 0.0 : (double)r->sum_ns / r->n_ok / 1e6;
}

static void put_json_str(const char *s)
{
    char *q = NULL;

    if (flip_json_quote(s, &q) == FLIP_OK) {
        fputs(q, stdout);
    } else {
        fputs("null", stdout);
    }
    flip_text_free(q);
}

static void print_json(const struct opts *o, const struct result *r)
{
    int first = 1;

    printf("{\"mode\":\"%s\",\"endpoints\":", mode_name(o->mode));
    put_json_str(o->endpoints);
    printf(",\"key\":");
    put_json_str(o->key);
    printf(",\"value\":\"%s\",\"n\":%u,\"idle_ms\":%u,\"warmup\":%u",
           o->mode == MODE_SET ? (o->int_value ? "int" : "bool") : "-", o->n,
           o->idle_ms, o->warmup);
    printf(",\"count\":%u,\"ok\":%u,\"failed\":%u,\"truncated\":%s", r->n_done,
           r->n_ok, r->n_failed, r->truncated ? "true" : "false");
    printf(
        ",\"min_ms\":%.3f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f"
        ",\"p99_ms\":%.3f,\"max_ms\":%.3f,\"max_failed_ms\":%.3f",
        r->n_ok ? (double)r->lat_ns[0] / 1e6 : 0.0, mean_ms(r), pct_ms(r, 50),
        pct_ms(r, 90), pct_ms(r, 99),
        r->n_ok ? (double)r->lat_ns[r->n_ok - 1] / 1e6 : 0.0,
        (double)r->max_failed_ns / 1e6);
    printf(",\"elapsed_s\":%.3f,\"throughput_ops_s\":%.1f",
           (double)r->elapsed_ns / 1e9, throughput(r));
    printf(",\"first_revision\":%" PRIu64 ",\"last_revision\":%" PRIu64,
           r->first_revision, r->last_revision);
    printf(",\"errors\":{");
    for (int i = 0; i <= CODE_SLOTS; i++) {
        if (r->codes[i] == 0) {
            continue;
        }
        printf("%s\"%s\":%u", first ? "" : ",",
               i < CODE_SLOTS ? flip_strerror(i) : "other", r->codes[i]);
        first = 0;
    }
    printf("},\"first_error\":");
    if (r->first_err[0] != '\0') {
        put_json_str(r->first_err);
    } else {
        fputs("null", stdout);
    }
    printf("}\n");
}

static void print_text(const struct opts *o, const struct result *r)
{
    printf("seq_latency: %s %s", mode_name(o->mode), o->key);
    if (o->mode == MODE_SET) {
        printf(" (%s)", o->int_value ? "int counter" : "bool alternating");
    }
    printf(" via %s\n", o->endpoints);
    printf("  n %u, idle %u ms, warmup %u%s\n", o->n, o->idle_ms, o->warmup,
           r->truncated ? ", TRUNCATED by --max-seconds" : "");
    printf("  count     %u (ok %u, failed %u)\n", r->n_done, r->n_ok,
           r->n_failed);
    if (r->n_ok > 0) {
        printf(
            "  latency   min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f"
            " ms (mean %.3f)\n",
            (double)r->lat_ns[0] / 1e6, pct_ms(r, 50), pct_ms(r, 90),
            pct_ms(r, 99), (double)r->lat_ns[r->n_ok - 1] / 1e6, mean_ms(r));
    }
    printf("  elapsed   %.3f s, throughput %.1f ok ops/s\n",
           (double)r->elapsed_ns / 1e9, throughput(r));
    if (r->last_revision != 0) {
        printf("  revisions %" PRIu64 "..%" PRIu64 "\n", r->first_revision,
               r->last_revision);
    }
    if (r->n_failed > 0) {
        printf("  errors   ");
        for (int i = 0; i <= CODE_SLOTS; i++) {
            if (r->codes[i] != 0) {
                printf(" %s: %u;", i < CODE_SLOTS ? flip_strerror(i) : "other",
                       r->codes[i]);
            }
        }
        printf(" slowest failure %.3f ms\n", (double)r->max_failed_ns / 1e6);
        printf("  first     %s\n", r->first_err);
    }
}

/* Creates the client, prepares the key and runs the warmup. In stale-get
 * mode the client is created afresh after the preparation (which may have
 * been redirected to the leader), so that stale reads go to the first
 * endpoint that answers. */
static int setup(const struct opts *o,
                 uint64_t deadline_ns,
                 struct flip_client **out,
                 unsigned *warmed)
{
    struct flip_client *c = NULL;
    unsigned w;
    int rv;

    *out = NULL;
    rv = flip_client_new(&c, o->endpoints, CLIENT_NAME);
    if (rv != FLIP_OK) {
        fprintf(stderr, "seq_latency: bad --endpoints '%s': %s\n", o->endpoints,
                flip_strerror(rv));
        return rv;
    }
    bound_timeout(c, o, deadline_ns);
    rv = prepare_key(c, o);
    if (rv != FLIP_OK) {
        fprintf(stderr, "seq_latency: preparing %s: %s: %s\n", o->key,
                flip_strerror(rv), flip_client_errmsg(c));
        flip_client_free(c);
        return rv;
    }
    if (o->mode == MODE_STALE_GET) {
        flip_client_free(c);
        c = NULL;
        rv = flip_client_new(&c, o->endpoints, CLIENT_NAME);
        if (rv != FLIP_OK) {
            fprintf(stderr, "seq_latency: client: %s\n", flip_strerror(rv));
            return rv;
        }
    }
    /* Warmup: connect (and find the leader); not counted, but failures are
     * reported. */
    for (w = 0; w < o->warmup && bench_mono_ns() < deadline_ns; w++) {
        uint64_t rev = 0;

        bound_timeout(c, o, deadline_ns);
        rv = do_op(c, o, w, &rev);
        if (rv != FLIP_OK) {
            fprintf(stderr, "seq_latency: warmup op %u: %s: %s\n", w,
                    flip_strerror(rv), flip_client_errmsg(c));
        }
    }
    *warmed = w;
    *out = c;
    return FLIP_OK;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct result r;
    struct flip_client *c = NULL;
    uint64_t deadline_ns;
    unsigned warmed = 0;
    int rv;
    int code = EXIT_USAGE;

    rv = parse_args(argc, argv, &o);
    if (rv != 0) {
        return rv;
    }
    memset(&r, 0, sizeof r);
    deadline_ns = bench_mono_ns() + (uint64_t)o.max_seconds * 1000000000u;
    r.lat_ns = calloc(o.n, sizeof r.lat_ns[0]);
    if (r.lat_ns == NULL) {
        fprintf(stderr, "seq_latency: out of memory\n");
        goto out;
    }
    if (o.samples != NULL) {
        r.samples = fopen(o.samples, "w");
        if (r.samples == NULL) {
            fprintf(stderr, "seq_latency: %s: %s\n", o.samples,
                    strerror(errno));
            goto out;
        }
    }
    if (setup(&o, deadline_ns, &c, &warmed) != FLIP_OK) {
        goto out;
    }
    run(c, &o, deadline_ns, warmed, &r);
    bench_sort_u64(r.lat_ns, r.n_ok);
    if (o.json) {
        print_json(&o, &r);
    } else {
        print_text(&o, &r);
    }
    fflush(stdout);
    code = r.n_failed > 0 || r.truncated ? EXIT_FAILED : 0;
out:
    flip_client_free(c);
    free(r.lat_ns);
    if (r.samples != NULL && fclose(r.samples) != 0) {
        fprintf(stderr, "seq_latency: %s: write failed\n", o.samples);
        code = code == 0 ? EXIT_FAILED : code;
    }
    return code;
}
