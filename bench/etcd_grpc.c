/* etcd_grpc: etcd puts over etcd's native gRPC API, from C, through gRPC
 * core's C API (Debian's libgrpc-dev). A reference for what etcd's v3 JSON
 * gateway, which bench/kvbench.c goes through, costs etcd.
 *
 *   etcd_grpc --endpoints H:P,... --mode seq|load [--n 1000] [--idle-ms 0]
 *             [--warmup 5] [--inflight 32] [--seconds 10]
 *             [--warmup-seconds 1] [--keys 1000] [--prefix bench.kv.]
 *             [--timeout 5000] [--max-seconds 120] [--json]
 *
 *   seq   one call at a time on the first endpoint's channel (give the
 *         leader first), --idle-ms apart; --warmup untimed calls first.
 *   load  --inflight calls in progress at all times, spread round-robin
 *         over one channel per endpoint (gRPC multiplexes them on one
 *         HTTP/2 connection per endpoint, as etcd's clientv3 does);
 *         --warmup-seconds, then --seconds measured: acks in the window per
 *         second, latency over them.
 *
 * Each call is /etcdserverpb.KV/Put{key, value "true"|"false"} (the
 * protobuf is written by hand: two bytes fields), timed from the start of
 * the call to its completion on the completion queue. A call that does not
 * end with status OK is a failed flip; there are no retries.
 *
 * Not the table's client model (one TCP connection per flip in flight, and
 * no redirect logic): run.sh reports its figures apart, as a reference.
 *
 * gRPC is loaded with dlopen (libgrpc.so.29 and libgpr.so.29, or the
 * unversioned names), so the program links like every other bench tool;
 * it is compiled against <grpc/grpc.h> when the headers are installed and
 * otherwise builds a stub that exits 3 ("not available").
 *
 * Exit status: 0 ok, 1 failed calls or truncated, 2 usage or setup error,
 * 3 gRPC not available. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<grpc/grpc.h>) && __has_include(<grpc/grpc_security.h>)
#define ETCD_GRPC_HAVE 1
#endif
#endif

#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_UNAVAILABLE 3

#ifndef ETCD_GRPC_HAVE

int main(void)
{
    fprintf(stderr,
            "etcd_grpc: built without gRPC headers (apt-get install "
            "libgrpc-dev, then rebuild)\n");
    return EXIT_UNAVAILABLE;
}

#else

#include <dlfcn.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "bench/lib/bopt.h"
#include "bench/lib/bpb.h"
#include "bench/lib/bstat.h"

#define EP_MAX       16
#define INFLIGHT_MAX 4096u
#define LAT_CAP_MAX  (64u * 1024u * 1024u)
#define ERR_KINDS    16
#define METHOD       "/etcdserverpb.KV/Put"

/* Every gRPC function used, resolved at run time. */
#define GRPC_FUNCS(X)                        \
    X(grpc_init)                             \
    X(grpc_shutdown)                         \
    X(grpc_insecure_credentials_create)      \
    X(grpc_channel_credentials_release)      \
    X(grpc_channel_create)                   \
    X(grpc_channel_destroy)                  \
    X(grpc_completion_queue_create_for_next) \
    X(grpc_completion_queue_next)            \
    X(grpc_completion_queue_shutdown)        \
    X(grpc_completion_queue_destroy)         \
    X(grpc_channel_create_call)              \
    X(grpc_call_start_batch)                 \
    X(grpc_call_unref)                       \
    X(grpc_metadata_array_init)              \
    X(grpc_metadata_array_destroy)           \
    X(grpc_raw_byte_buffer_create)           \
    X(grpc_byte_buffer_destroy)              \
    X(grpc_byte_buffer_reader_init)          \
    X(grpc_byte_buffer_reader_destroy)       \
    X(grpc_byte_buffer_reader_readall)       \
    X(grpc_slice_from_copied_buffer)         \
    X(grpc_slice_from_static_string)         \
    X(grpc_slice_unref)                      \
    X(gpr_now)                               \
    X(gpr_time_add)                          \
    X(gpr_time_from_millis)                  \
    X(gpr_inf_future)

#define DECLARE_FN(f) static __typeof__(f) *p_##f;
GRPC_FUNCS(DECLARE_FN)
#undef DECLARE_FN

static int load_grpc(void)
{
    static const char *const grpc_names[] = { "libgrpc.so.29", "libgrpc.so" };
    static const char *const gpr_names[] = { "libgpr.so.29", "libgpr.so" };
    void *g = NULL;
    void *gpr = NULL;

    for (size_t i = 0; i < 2 && g == NULL; i++) {
        g = dlopen(grpc_names[i], RTLD_NOW | RTLD_GLOBAL);
    }
    for (size_t i = 0; i < 2 && gpr == NULL; i++) {
        gpr = dlopen(gpr_names[i], RTLD_NOW | RTLD_GLOBAL);
    }
    if (g == NULL) {
        fprintf(stderr, "etcd_grpc: cannot load libgrpc: %s\n", dlerror());
        return -1;
    }
#define LOAD_FN(f)                                                \
    do {                                                          \
        union                                                     \
        {                                                         \
            void *p;                                              \
            __typeof__(f) *fn;                                    \
        } u;                                                      \
        u.p = dlsym(g, #f);                                       \
        if (u.p == NULL && gpr != NULL) {                         \
            u.p = dlsym(gpr, #f);                                 \
        }                                                         \
        if (u.p == NULL) {                                        \
            fprintf(stderr, "etcd_grpc: libgrpc lacks %s\n", #f); \
            return -1;                                            \
        }                                                         \
        p_##f = u.fn;                                             \
    } while (0);
    GRPC_FUNCS(LOAD_FN)
#undef LOAD_FN
    return 0;
}

struct opts
{
    const char *endpoints;
    const char *prefix;
    int load;
    unsigned n;
    unsigned idle_ms;
    unsigned warmup;
    unsigned inflight;
    unsigned seconds;
    unsigned warmup_seconds;
    unsigned keys;
    unsigned timeout_ms;
    unsigned max_seconds;
    int json;
};

struct slot
{
    grpc_call *call;
    grpc_metadata_array md_init;
    grpc_metadata_array md_trail;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_status_code status;
    grpc_slice details;
    uint64_t t_start;
    uint64_t seq;
    size_t ch;
    int busy;
};

struct errkind
{
    char name[96];
    uint64_t count;
};

struct ctx
{
    const struct opts *o;
    grpc_channel *ch[EP_MAX];
    size_t n_ch;
    grpc_completion_queue *cq;
    grpc_slice method;
    struct slot *slots;
    unsigned n_slots;
    uint64_t next_seq;
    uint64_t t0;
    uint64_t w0;
    uint64_t w1;
    uint64_t deadline;
    int truncated;
    uint64_t *lat;
    size_t n_lat;
    size_t cap_lat;
    uint64_t n_ok;
    uint64_t n_fail;
    uint64_t first_rev;
    uint64_t last_rev;
    struct errkind errs[ERR_KINDS];
    size_t n_errs;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct bench_numopt nums[] = {
        BENCH_NUMOPT(struct opts, "--n", 1, 1000000, n),
        BENCH_NUMOPT(struct opts, "--idle-ms", 0, 60000, idle_ms),
        BENCH_NUMOPT(struct opts, "--warmup", 0, 10000, warmup),
        BENCH_NUMOPT(struct opts, "--inflight", 1, INFLIGHT_MAX, inflight),
        BENCH_NUMOPT(struct opts, "--seconds", 1, 3600, seconds),
        BENCH_NUMOPT(struct opts, "--warmup-seconds", 0, 3600, warmup_seconds),
        BENCH_NUMOPT(struct opts, "--keys", 1, 1000000, keys),
        BENCH_NUMOPT(struct opts, "--timeout", 1, 600000, timeout_ms),
        BENCH_NUMOPT(struct opts, "--max-seconds", 1, 3600, max_seconds),
    };

    memset(o, 0, sizeof *o);
    o->prefix = "bench.kv.";
    o->n = 1000;
    o->warmup = 5;
    o->inflight = 32;
    o->seconds = 10;
    o->warmup_seconds = 1;
    o->keys = 1000;
    o->timeout_ms = 5000;
    o->max_seconds = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (v != NULL && strcmp(a, "--endpoints") == 0) {
            o->endpoints = argv[++i];
            continue;
        }
        if (v != NULL && strcmp(a, "--prefix") == 0) {
            o->prefix = argv[++i];
            continue;
        }
        if (v != NULL && strcmp(a, "--mode") == 0) {
            o->load = strcmp(v, "load") == 0;
            if (!o->load && strcmp(v, "seq") != 0) {
                fprintf(stderr, "etcd_grpc: --mode wants seq or load\n");
                return EXIT_USAGE;
            }
            i++;
            continue;
        }
        if (bench_numopt(NULL, argc, argv, &i, nums,
                         sizeof nums / sizeof nums[0], o) != 1) {
            fprintf(stderr,
                    "etcd_grpc: bad or unknown argument %s (see the "
                    "comment at the top of bench/etcd_grpc.c)\n",
                    a);
            return EXIT_USAGE;
        }
    }
    if (o->endpoints == NULL || strlen(o->prefix) > 200) {
        fprintf(stderr, "etcd_grpc: --endpoints is required\n");
        return EXIT_USAGE;
    }
    if (!o->load) {
        o->inflight = 1;
    }
    return 0;
}

static void count_err(struct ctx *x, const char *name)
{
    for (size_t i = 0; i < x->n_errs; i++) {
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

static void lat_add(struct ctx *x, uint64_t ns)
{
    if (x->n_lat == x->cap_lat) {
        size_t cap = x->cap_lat ? x->cap_lat * 2 : 4096;
        uint64_t *p =
            cap <= LAT_CAP_MAX ? realloc(x->lat, cap * sizeof *p) : NULL;

        if (p == NULL) {
            return;
        }
        x->lat = p;
        x->cap_lat = cap;
    }
    x->lat[x->n_lat++] = ns;
}

/* Appends a protobuf varint. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80u) {
        p[n++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* PutResponse{header(1): ResponseHeader{revision(3)}} -> revision. */
static uint64_t put_revision(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;

    while (p < end) {
        uint64_t key;
        uint64_t len;

        if (bench_pb_varint(&p, end, &key) != 0) {
            return 0;
        }
        if ((key & 7u) == 0) {
            uint64_t v;

            if (bench_pb_varint(&p, end, &v) != 0) {
                return 0;
            }
            continue;
        }
        if ((key & 7u) != 2 || bench_pb_varint(&p, end, &len) != 0 ||
            len > (uint64_t)(end - p)) {
            return 0;
        }
        if ((key >> 3) == 1) { /* the header: look inside */
            const uint8_t *q = p;
            const uint8_t *qe = p + len;

            while (q < qe) {
                uint64_t k2;
                uint64_t v2;

                if (bench_pb_varint(&q, qe, &k2) != 0 || (k2 & 7u) != 0 ||
                    bench_pb_varint(&q, qe, &v2) != 0) {
                    return 0;
                }
                if ((k2 >> 3) == 3) {
                    return v2;
                }
            }
            return 0;
        }
        p += len;
    }
    return 0;
}

static int start_put(struct ctx *x, struct slot *s, size_t ch)
{
    uint8_t msg[600];
    char key[300];
    const char *value;
    size_t n = 0;
    size_t kl;
    grpc_slice payload;
    grpc_op ops[6];
    gpr_timespec deadline;
    grpc_call_error err;

    memset(s, 0, sizeof *s);
    s->seq = x->next_seq++;
    s->ch = ch;
    if (x->o->load) {
        snprintf(key, sizeof key, "%s%" PRIu64, x->o->prefix,
                 s->seq % x->o->keys);
    } else {
        snprintf(key, sizeof key, "%sseq", x->o->prefix);
    }
    value = (s->seq & 1u) ? "true" : "false";
    kl = strlen(key);
    msg[n++] = 0x0a; /* key, bytes */
    n += put_varint(msg + n, kl);
    memcpy(msg + n, key, kl);
    n += kl;
    msg[n++] = 0x12; /* value, bytes */
    n += put_varint(msg + n, strlen(value));
    memcpy(msg + n, value, strlen(value));
    n += strlen(value);
    payload = p_grpc_slice_from_copied_buffer((const char *)msg, n);
    s->send = p_grpc_raw_byte_buffer_create(&payload, 1);
    p_grpc_slice_unref(payload);
    p_grpc_metadata_array_init(&s->md_init);
    p_grpc_metadata_array_init(&s->md_trail);
    deadline = p_gpr_time_add(
        p_gpr_now(GPR_CLOCK_MONOTONIC),
        p_gpr_time_from_millis((int64_t)x->o->timeout_ms, GPR_TIMESPAN));
    s->t_start = bench_mono_ns();
    s->call =
        p_grpc_channel_create_call(x->ch[ch], NULL, GRPC_PROPAGATE_DEFAULTS,
                                   x->cq, x->method, NULL, deadline, NULL);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trail;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    err = p_grpc_call_start_batch(s->call, ops, 6, s, NULL);
    if (err != GRPC_CALL_OK) {
        fprintf(stderr, "etcd_grpc: grpc_call_start_batch: %d\n", (int)err);
        return -1;
    }
    s->busy = 1;
    return 0;
}

static int measured(const struct ctx *x, uint64_t now, uint64_t seq)
{
    if (x->o->load) {
        return now >= x->w0 && now < x->w1;
    }
    return seq >= x->o->warmup;
}

/* A call completed: record it and release it. */
static void finish(struct ctx *x, struct slot *s, int success)
{
    uint64_t now = bench_mono_ns();
    uint64_t rev = 0;
    int ok = success && s->status == GRPC_STATUS_OK && s->recv != NULL;

    if (ok) {
        grpc_byte_buffer_reader r;

        if (p_grpc_byte_buffer_reader_init(&r, s->recv)) {
            grpc_slice all = p_grpc_byte_buffer_reader_readall(&r);

            rev =
                put_revision(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
            p_grpc_slice_unref(all);
            p_grpc_byte_buffer_reader_destroy(&r);
        }
    }
    if (measured(x, now, s->seq)) {
        if (ok) {
            x->n_ok++;
            lat_add(x, now - s->t_start);
            if (x->first_rev == 0) {
                x->first_rev = rev;
            }
            x->last_rev = rev;
        } else {
            char what[96];
            size_t dl = GRPC_SLICE_LENGTH(s->details);

            snprintf(what, sizeof what, "status %d: %.*s", (int)s->status,
                     (int)(dl < 60 ? dl : 60),
                     (const char *)GRPC_SLICE_START_PTR(s->details));
            x->n_fail++;
            count_err(x, what);
        }
    }
    p_grpc_metadata_array_destroy(&s->md_init);
    p_grpc_metadata_array_destroy(&s->md_trail);
    p_grpc_byte_buffer_destroy(s->send);
    if (s->recv != NULL) {
        p_grpc_byte_buffer_destroy(s->recv);
    }
    p_grpc_slice_unref(s->details);
    p_grpc_call_unref(s->call);
    s->busy = 0;
    s->call = NULL;
}

/* Waits for one completion, at most 100 ms. 1 if one was handled. */
static int poll_one(struct ctx *x)
{
    grpc_event ev = p_grpc_completion_queue_next(
        x->cq,
        p_gpr_time_add(p_gpr_now(GPR_CLOCK_MONOTONIC),
                       p_gpr_time_from_millis(100, GPR_TIMESPAN)),
        NULL);

    if (ev.type != GRPC_OP_COMPLETE) {
        return 0;
    }
    finish(x, ev.tag, ev.success);
    return 1;
}

static int any_busy(const struct ctx *x)
{
    for (unsigned i = 0; i < x->n_slots; i++) {
        if (x->slots[i].busy) {
            return 1;
        }
    }
    return 0;
}

static void run(struct ctx *x)
{
    const struct opts *o = x->o;
    uint64_t drain_until;

    if (!o->load) {
        for (unsigned i = 0; i < o->warmup + o->n; i++) {
            if (bench_mono_ns() >= x->deadline) {
                x->truncated = 1;
                break;
            }
            if (start_put(x, &x->slots[0], 0) != 0) {
                break;
            }
            while (x->slots[0].busy && bench_mono_ns() < x->deadline) {
                (void)poll_one(x);
            }
            if (o->idle_ms > 0 && i + 1 < o->warmup + o->n) {
                struct timespec ts = { (time_t)(o->idle_ms / 1000u),
                                       (long)(o->idle_ms % 1000u) * 1000000L };

                while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
                }
            }
        }
    } else {
        for (unsigned i = 0; i < x->n_slots; i++) {
            if (start_put(x, &x->slots[i], i % x->n_ch) != 0) {
                x->truncated = 1;
                break;
            }
        }
        while (bench_mono_ns() < x->w1 && !x->truncated) {
            if (bench_mono_ns() >= x->deadline) {
                x->truncated = 1;
                break;
            }
            if (poll_one(x)) {
                for (unsigned i = 0; i < x->n_slots; i++) {
                    if (!x->slots[i].busy && bench_mono_ns() < x->w1 &&
                        start_put(x, &x->slots[i], i % x->n_ch) != 0) {
                        x->truncated = 1;
                        break;
                    }
                }
            }
        }
    }
    drain_until = bench_mono_ns() + 10000000000u;
    while (any_busy(x) && bench_mono_ns() < drain_until) {
        (void)poll_one(x);
    }
}

static void report(struct ctx *x, uint64_t end)
{
    const struct opts *o = x->o;
    double secs =
        o->load ? (double)(x->w1 - x->w0) / 1e9 : (double)(end - x->t0) / 1e9;
    double sum = 0;

    for (size_t i = 0; i < x->n_lat; i++) {
        sum += (double)x->lat[i];
    }
    if (!o->json) {
        printf("etcd_grpc %s via %s: ok %" PRIu64 " failed %" PRIu64
               "; p50 %.3f p99 %.3f max %.3f ms; %.1f puts/s\n",
               o->load ? "load" : "seq", o->endpoints, x->n_ok, x->n_fail,
               bench_pct_ms_u64(x->lat, x->n_lat, 50),
               bench_pct_ms_u64(x->lat, x->n_lat, 99),
               x->n_lat ? (double)x->lat[x->n_lat - 1] / 1e6 : 0.0,
               secs > 0 ? (double)x->n_ok / secs : 0.0);
        return;
    }
    printf(
        "{\"system\":\"etcd-grpc\",\"mode\":\"%s\",\"inflight\":%u,"
        "\"conns\":%zu,\"idle_ms\":%u,\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
        ",\"truncated\":%s",
        o->load ? "load" : "seq", o->inflight, x->n_ch, o->idle_ms, x->n_ok,
        x->n_fail, x->truncated ? "true" : "false");
    printf(
        ",\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f"
        ",\"max_ms\":%.3f,\"mean_ms\":%.3f,\"seconds\":%.3f"
        ",\"throughput_ops_s\":%.1f,\"first_revision\":%" PRIu64
        ",\"last_revision\":%" PRIu64 ",\"errors\":{",
        x->n_lat ? (double)x->lat[0] / 1e6 : 0.0,
        bench_pct_ms_u64(x->lat, x->n_lat, 50),
        bench_pct_ms_u64(x->lat, x->n_lat, 90),
        bench_pct_ms_u64(x->lat, x->n_lat, 99),
        x->n_lat ? (double)x->lat[x->n_lat - 1] / 1e6 : 0.0,
        x->n_lat ? sum / (double)x->n_lat / 1e6 : 0.0, secs,
        secs > 0 ? (double)x->n_ok / secs : 0.0, x->first_rev, x->last_rev);
    for (size_t i = 0; i < x->n_errs; i++) {
        printf("%s\"", i ? "," : "");
        for (const char *c = x->errs[i].name; *c; c++) {
            if (*c == '"' || *c == '\\') {
                putchar('\\');
            }
            putchar((unsigned char)*c < 0x20 ? ' ' : *c);
        }
        printf("\":%" PRIu64, x->errs[i].count);
    }
    printf("}}\n");
}

int main(int argc, char **argv)
{
    struct opts o;
    static struct ctx x;
    grpc_channel_credentials *creds;
    const char *p;
    uint64_t end;
    int code;
    int rv = parse_args(argc, argv, &o);

    if (rv != 0) {
        return rv;
    }
    if (load_grpc() != 0) {
        return EXIT_UNAVAILABLE;
    }
    p_grpc_init();
    x.o = &o;
    x.cq = p_grpc_completion_queue_create_for_next(NULL);
    x.method = p_grpc_slice_from_static_string(METHOD);
    creds = p_grpc_insecure_credentials_create();
    for (p = o.endpoints; *p != '\0' && x.n_ch < EP_MAX;) {
        char target[340];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len == 0 || len > 300) {
            fprintf(stderr, "etcd_grpc: bad --endpoints\n");
            return EXIT_USAGE;
        }
        snprintf(target, sizeof target, "ipv4:%.*s", (int)len, p);
        x.ch[x.n_ch++] = p_grpc_channel_create(target, creds, NULL);
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    p_grpc_channel_credentials_release(creds);
    x.n_slots = o.inflight;
    x.slots = calloc(x.n_slots, sizeof *x.slots);
    if (x.n_ch == 0 || x.slots == NULL) {
        fprintf(stderr, "etcd_grpc: setup failed\n");
        return EXIT_USAGE;
    }
    x.t0 = bench_mono_ns();
    x.deadline = x.t0 + (uint64_t)o.max_seconds * 1000000000u;
    x.w0 = x.t0 + (uint64_t)o.warmup_seconds * 1000000000u;
    x.w1 = x.w0 + (uint64_t)o.seconds * 1000000000u;
    run(&x);
    end = bench_mono_ns();
    bench_sort_u64(x.lat, x.n_lat);
    report(&x, end);
    fflush(stdout);
    code = x.n_fail > 0 || x.truncated || x.n_ok == 0 ? EXIT_FAILED : 0;
    for (size_t i = 0; i < x.n_ch; i++) {
        p_grpc_channel_destroy(x.ch[i]);
    }
    p_grpc_completion_queue_shutdown(x.cq);
    for (int i = 0; i < 100000; i++) {
        grpc_event ev = p_grpc_completion_queue_next(
            x.cq, p_gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
    }
    p_grpc_completion_queue_destroy(x.cq);
    p_grpc_shutdown();
    free(x.slots);
    free(x.lat);
    return code;
}

#endif
