/* fixture_stress: the raft_fixture stress of stress_run.c over a seed range.
 *
 *   fixture_stress [--seeds A..B | --seeds N] [--nodes 3|5] [--jobs J]
 *                  [--batch K] [--chaos-ms MS] [--gate prod|off]
 *                  [--io-faults seed|on|off] [--timeout S] [--dir DIR]
 *                  [--trace] [--verbose] [--no-fork]
 *
 * Seeds run in batches, each batch in a forked worker (J at a time), so a
 * crash (libraft, an FSM abort, a sanitizer report) or a hang (per-seed
 * alarm) is pinned to the seed that was running; the rest of the batch
 * continues in a new worker. Stores live under DIR (default /dev/shm when
 * writable, else $TMPDIR or /tmp), removed at the end.
 *
 * Output: one progress line per finished batch, a line per failing seed,
 * then the failing seeds with a replay command, and always last exactly
 *   fixture-stress: N passed, N failed
 * Exit status 0 iff nothing failed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "stress.h"

#define DEFAULT_FIRST    1
#define DEFAULT_LAST     2000
#define DEFAULT_CHAOS_MS 10000
#define MAX_RECS         64
#define MAX_JOBS         64

enum
{
    ST_TODO = 0,
    ST_RUNNING,
    ST_PASS,
    ST_FAIL,
    ST_CRASH,
    ST_KNOWN
};

struct fail_rec
{
    uint64_t seed;
    char msg[600];
};

struct totals
{
    uint64_t proposed, acked, applied, snapshots, declined, restored, kills,
        cuts, faults, leaders, fixups, shimmed, steps, sim_ms, last_index;
};

struct shared
{
    struct totals t;
    unsigned n_recs;
    struct fail_rec recs[MAX_RECS];
    unsigned char status[]; /* one per seed */
};

struct worker
{
    pid_t pid;
    uint64_t lo;
    uint64_t hi;
    double start;
};

struct batch
{
    uint64_t lo;
    uint64_t hi;
};

static struct shared *sh;
static uint64_t first_seed = DEFAULT_FIRST;
static uint64_t last_seed = DEFAULT_LAST;
static unsigned timeout_s = 120;
static char base_dir[512];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fixture_stress [--seeds A..B | --seeds N] [--nodes 3|5] "
            "[--jobs J]\n"
            "                      [--batch K] [--chaos-ms MS] [--gate "
            "prod|off]\n"
            "                      [--io-faults seed|on|off] [--timeout S] "
            "[--dir DIR]\n"
            "                      [--trace] [--verbose] [--no-fork]\n"
            "defaults: --seeds %d..%d, nodes and io faults from each seed, "
            "--chaos-ms %d,\n"
            "          --gate prod (raft/node.c's snapshot hold), --jobs = "
            "online CPUs\n",
            DEFAULT_FIRST, DEFAULT_LAST, DEFAULT_CHAOS_MS);
    exit(2);
}

static void rm_tree(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;
    char sub[1024];

    if (lstat(path, &sb) != 0) {
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static void add_rec(uint64_t seed, const char *msg)
{
    unsigned k = __atomic_fetch_add(&sh->n_recs, 1, __ATOMIC_SEQ_CST);
    if (k < MAX_RECS) {
        sh->recs[k].seed = seed;
        snprintf(sh->recs[k].msg, sizeof sh->recs[k].msg, "%s", msg);
    }
}

/* The options that change what a seed does, for the replay command. */
static void describe_opts(const struct stress_opts *o, char *out, size_t n)
{
    int len = 0;

    out[0] = '\0';
    if (o->nodes != 0) {
        len += snprintf(out + len, n - (size_t)len, " --nodes %u", o->nodes);
    }
    if (o->chaos_ms != DEFAULT_CHAOS_MS) {
        len +=
            snprintf(out + len, n - (size_t)len, " --chaos-ms %u", o->chaos_ms);
    }
    if (o->gate != STRESS_GATE_PROD) {
        len += snprintf(out + len, n - (size_t)len, " --gate off");
    }
    if (o->shim) {
        len += snprintf(out + len, n - (size_t)len, " --shim");
    }
    if (o->io_faults >= 0) {
        snprintf(out + len, n - (size_t)len, " --io-faults %s",
                 o->io_faults ? "on" : "off");
    }
}

static void run_range(const struct stress_opts *base, uint64_t lo, uint64_t hi)
{
    struct stress_opts o = *base;
    struct stress_stats st;
    char dir[600];
    char sub[700];
    char err[1536];
    char line[2048];

    snprintf(dir, sizeof dir, "%s/w%ld", base_dir, (long)getpid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        perror(dir);
        exit(3);
    }
    for (unsigned i = 0; i < 5; i++) {
        snprintf(sub, sizeof sub, "%s/s%u", dir, i);
        if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
            perror(sub);
            exit(3);
        }
    }
    o.dir = dir;
    for (uint64_t seed = lo; seed <= hi; seed++) {
        unsigned char *slot = &sh->status[seed - first_seed];
        double t0 = now_s();
        int rv;

        __atomic_store_n(slot, ST_RUNNING, __ATOMIC_SEQ_CST);
        alarm(timeout_s);
        rv = stress_run_seed(seed, &o, &st, err, sizeof err);
        alarm(0);
#define ADD(f) __atomic_fetch_add(&sh->t.f, (uint64_t)st.f, __ATOMIC_RELAXED)
        ADD(proposed);
        ADD(acked);
        ADD(applied);
        ADD(snapshots);
        ADD(declined);
        ADD(restored);
        ADD(kills);
        ADD(cuts);
        ADD(faults);
        ADD(leaders);
        ADD(fixups);
        ADD(shimmed);
        ADD(steps);
        ADD(sim_ms);
        ADD(last_index);
#undef ADD
        __atomic_store_n(slot,
                         rv == 0   ? ST_PASS
                         : rv == 2 ? ST_KNOWN
                                   : ST_FAIL,
                         __ATOMIC_SEQ_CST);
        if (rv == 2) {
            snprintf(line, sizeof line, "known seed %llu: %s\n",
                     (unsigned long long)seed, err);
            fputs(line, stdout);
            fflush(stdout);
        } else if (rv != 0) {
            snprintf(line, sizeof line,
                     "FAIL  seed %llu (n=%u pre-vote=%d snap=%u faults=%d): "
                     "%s\n",
                     (unsigned long long)seed, st.nodes, st.pre_vote,
                     st.snap_threshold, st.io_faults, err);
            add_rec(seed, err);
            fputs(line, stdout);
            fflush(stdout);
        } else if (o.verbose) {
            snprintf(
                line, sizeof line,
                "ok    seed %llu n=%u pre-vote=%d snap=%u faults=%d | "
                "%llums %llu steps, index %llu, %u/%u acked (%u apply "
                "errors), %u "
                "applies, %u snapshots (%u declined), %u installs, %u "
                "kills, %u cuts, %u faults, %u leaders, %u fixups | %s "
                "%.3fs\n",
                (unsigned long long)seed, st.nodes, st.pre_vote,
                st.snap_threshold, st.io_faults, (unsigned long long)st.sim_ms,
                (unsigned long long)st.steps, (unsigned long long)st.last_index,
                st.acked, st.proposed, st.apply_errors, st.applied,
                st.snapshots, st.declined, st.restored, st.kills, st.cuts,
                st.faults, st.leaders, st.fixups, err, now_s() - t0);
            fputs(line, stdout);
            fflush(stdout);
        }
    }
    rm_tree(dir);
    fflush(NULL);
}

static void worker_main(const struct stress_opts *base,
                        uint64_t lo,
                        uint64_t hi)
{
    run_range(base, lo, hi);
    exit(0);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static void parse_seeds(const char *arg)
{
    const char *dots = strstr(arg, "..");
    char a[32];

    if (dots == NULL) {
        if (parse_u64(arg, &last_seed) != 0 || last_seed == 0) {
            usage();
        }
        first_seed = 1;
        return;
    }
    if ((size_t)(dots - arg) >= sizeof a) {
        usage();
    }
    memcpy(a, arg, (size_t)(dots - arg));
    a[dots - arg] = '\0';
    if (parse_u64(a, &first_seed) != 0 ||
        parse_u64(dots + 2, &last_seed) != 0 || last_seed < first_seed) {
        usage();
    }
}

static void pick_base_dir(const char *dir)
{
    const char *root = dir;
    struct stat sb;

    if (root == NULL) {
        root = getenv("FLIP_STRESS_DIR");
    }
    if (root == NULL && stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
        access("/dev/shm", W_OK) == 0) {
        root = "/dev/shm";
    }
    if (root == NULL) {
        root = getenv("TMPDIR");
    }
    if (root == NULL) {
        root = "/tmp";
    }
    snprintf(base_dir, sizeof base_dir, "%s/flipd-stress-XXXXXX", root);
    if (mkdtemp(base_dir) == NULL) {
        perror(base_dir);
        exit(2);
    }
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGKILL:
        return "SIGKILL";
    default:
        return "signal";
    }
}

int main(int argc, char **argv)
{
    struct stress_opts o = { .gate = STRESS_GATE_PROD,
                             .io_faults = -1,
                             .chaos_ms = DEFAULT_CHAOS_MS };
    const char *dir = NULL;
    unsigned jobs = 0;
    uint64_t batch = 0;
    uint64_t count;
    struct batch *queue;
    size_t q_head = 0;
    size_t q_len = 0;
    struct worker workers[MAX_JOBS];
    unsigned running = 0;
    uint64_t done = 0;
    uint64_t passed = 0;
    uint64_t failed = 0;
    double start;
    size_t shared_size;
    char extra[128];
    int no_fork = 0;
    int strict = 0;
    uint64_t n_known = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--shim") == 0) {
            o.shim = 1;
        } else if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (strcmp(a, "--no-fork") == 0) {
            no_fork = 1;
        } else if (strcmp(a, "--trace") == 0) {
            o.trace = 1;
        } else if (v == NULL) {
            usage();
        } else if (strcmp(a, "--seeds") == 0) {
            parse_seeds(v);
            i++;
        } else if (strcmp(a, "--nodes") == 0) {
            if (parse_u64(v, &x) != 0 || (x != 3 && x != 5)) {
                usage();
            }
            o.nodes = (unsigned)x;
            i++;
        } else if (strcmp(a, "--jobs") == 0) {
            if (parse_u64(v, &x) != 0 || x == 0 || x > MAX_JOBS) {
                usage();
            }
            jobs = (unsigned)x;
            i++;
        } else if (strcmp(a, "--batch") == 0) {
            if (parse_u64(v, &batch) != 0 || batch == 0) {
                usage();
            }
            i++;
        } else if (strcmp(a, "--chaos-ms") == 0) {
            if (parse_u64(v, &x) != 0 || x > 3600000) {
                usage();
            }
            o.chaos_ms = (unsigned)x;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_u64(v, &x) != 0 || x == 0 || x > 86400) {
                usage();
            }
            timeout_s = (unsigned)x;
            i++;
        } else if (strcmp(a, "--gate") == 0) {
            if (strcmp(v, "prod") == 0) {
                o.gate = STRESS_GATE_PROD;
            } else if (strcmp(v, "off") == 0) {
                o.gate = STRESS_GATE_OFF;
            } else {
                usage();
            }
            i++;
        } else if (strcmp(a, "--io-faults") == 0) {
            if (strcmp(v, "seed") == 0) {
                o.io_faults = -1;
            } else if (strcmp(v, "on") == 0) {
                o.io_faults = 1;
            } else if (strcmp(v, "off") == 0) {
                o.io_faults = 0;
            } else {
                usage();
            }
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            dir = v;
            i++;
        } else {
            usage();
        }
    }
    if (jobs == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (unsigned)n;
    }
    count = last_seed - first_seed + 1;
    if (batch == 0) {
        batch = count / ((uint64_t)jobs * 8);
        batch = batch < 10 ? 10 : batch > 250 ? 250 : batch;
    }
    if (getenv("FLIP_TEST_VERBOSE") == NULL) {
        flip_log_set_level(FLIP_LOG_WARN);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    pick_base_dir(dir);

    shared_size = sizeof *sh + (size_t)count;
    sh = mmap(NULL, shared_size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    queue = calloc((size_t)(count / batch + 2 + count), sizeof *queue);
    if (queue == NULL) {
        return 2;
    }
    for (uint64_t lo = first_seed; lo <= last_seed; lo += batch) {
        uint64_t hi = lo + batch - 1;
        queue[q_len].lo = lo;
        queue[q_len].hi = hi > last_seed ? last_seed : hi;
        q_len++;
        if (hi >= last_seed) {
            break;
        }
    }
    describe_opts(&o, extra, sizeof extra);
    printf(
        "fixture-stress: seeds %llu..%llu%s, %u jobs, batches of %llu, "
        "stores in %s\n",
        (unsigned long long)first_seed, (unsigned long long)last_seed, extra,
        jobs, (unsigned long long)batch, base_dir);
    start = now_s();
    if (no_fork) {
        /* for gdb/valgrind: one process, stops at the first crash */
        run_range(&o, first_seed, last_seed);
        q_head = q_len;
    }

    while (q_head < q_len || running > 0) {
        int status = 0;
        pid_t pid;
        unsigned w;
        uint64_t b_pass = 0;
        uint64_t b_fail = 0;
        uint64_t b_known = 0;
        uint64_t resume = 0;

        while (running < jobs && q_head < q_len) {
            struct worker *wk = &workers[running];
            wk->lo = queue[q_head].lo;
            wk->hi = queue[q_head].hi;
            wk->start = now_s();
            q_head++;
            fflush(NULL);
            wk->pid = fork();
            if (wk->pid < 0) {
                perror("fork");
                return 2;
            }
            if (wk->pid == 0) {
                worker_main(&o, wk->lo, wk->hi);
            }
            running++;
        }
        pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("waitpid");
            return 2;
        }
        for (w = 0; w < running && workers[w].pid != pid; w++) {
        }
        if (w == running) {
            continue;
        }
        struct worker wk = workers[w];
        workers[w] = workers[running - 1];
        running--;
        for (uint64_t s = wk.lo; s <= wk.hi; s++) {
            unsigned char *slot = &sh->status[s - first_seed];
            if (*slot == ST_RUNNING) {
                char why[200];
                if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
                    snprintf(why, sizeof why,
                             "HANG: no result after %us (--timeout)",
                             timeout_s);
                } else if (WIFSIGNALED(status)) {
                    snprintf(why, sizeof why,
                             "CRASH: killed by %s (%d); output above",
                             sig_name(WTERMSIG(status)), WTERMSIG(status));
                } else {
                    snprintf(why, sizeof why,
                             "CRASH: worker exited with status %d (sanitizer "
                             "report or abort above)",
                             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                }
                *slot = ST_CRASH;
                add_rec(s, why);
                printf("FAIL  seed %llu: %s\n", (unsigned long long)s, why);
                resume = s + 1;
            }
            if (*slot == ST_PASS) {
                b_pass++;
            } else if (*slot == ST_KNOWN) {
                b_known++;
            } else if (*slot == ST_FAIL || *slot == ST_CRASH) {
                b_fail++;
            }
        }
        if (resume == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            /* died between seeds: resume at the first one not run */
            for (uint64_t s = wk.lo; s <= wk.hi && resume == 0; s++) {
                if (sh->status[s - first_seed] == ST_TODO) {
                    resume = s;
                }
            }
            if (resume == 0) {
                printf(
                    "warning: worker for %llu..%llu exited with status "
                    "%d after its last seed\n",
                    (unsigned long long)wk.lo, (unsigned long long)wk.hi,
                    status);
            }
        }
        if (resume != 0 && resume <= wk.hi) {
            queue[q_len].lo = resume;
            queue[q_len].hi = wk.hi;
            q_len++;
            wk.hi = resume - 1;
        }
        done += b_pass + b_fail + b_known;
        printf(
            "[%6llu/%llu] seeds %llu..%llu: %llu passed, %llu failed, "
            "%llu known (%.1fs; %.0f seeds/s overall)\n",
            (unsigned long long)done, (unsigned long long)count,
            (unsigned long long)wk.lo, (unsigned long long)wk.hi,
            (unsigned long long)b_pass, (unsigned long long)b_fail,
            (unsigned long long)b_known, now_s() - wk.start,
            (double)done / (now_s() - start));
    }
    rm_tree(base_dir);

    printf("fixture-stress: %llu seeds in %.1fs (%.0f seeds/s, %u jobs)\n",
           (unsigned long long)count, now_s() - start,
           (double)count / (now_s() - start), jobs);
    printf(
        "totals: %llu simulated s, %llu steps, final index %llu; %llu "
        "writes proposed, %llu acked, %llu FSM applies; %llu snapshots "
        "(%llu declined), %llu installs; %llu kills, %llu cuts, %llu io "
        "faults, %llu leaders; %llu fixture truncations fixed, %llu "
        "InstallSnapshot terms fixed\n",
        (unsigned long long)(sh->t.sim_ms / 1000),
        (unsigned long long)sh->t.steps, (unsigned long long)sh->t.last_index,
        (unsigned long long)sh->t.proposed, (unsigned long long)sh->t.acked,
        (unsigned long long)sh->t.applied, (unsigned long long)sh->t.snapshots,
        (unsigned long long)sh->t.declined, (unsigned long long)sh->t.restored,
        (unsigned long long)sh->t.kills, (unsigned long long)sh->t.cuts,
        (unsigned long long)sh->t.faults, (unsigned long long)sh->t.leaders,
        (unsigned long long)sh->t.fixups, (unsigned long long)sh->t.shimmed);
    for (uint64_t s = first_seed; s <= last_seed; s++) {
        unsigned char st = sh->status[s - first_seed];
        passed += st == ST_PASS || (st == ST_KNOWN && !strict);
        failed += st != ST_PASS && (st != ST_KNOWN || strict);
        n_known += st == ST_KNOWN;
    }
    if (n_known > 0) {
        printf(
            "known libraft bugs (docs/known-issues.md; %s): %llu seeds:",
            strict ? "failures with --strict" : "passed, --strict fails them",
            (unsigned long long)n_known);
        for (uint64_t s = first_seed; s <= last_seed; s++) {
            if (sh->status[s - first_seed] == ST_KNOWN) {
                printf(" %llu", (unsigned long long)s);
            }
        }
        printf("\n");
    }
    if (failed > 0) {
        unsigned n = sh->n_recs < MAX_RECS ? sh->n_recs : MAX_RECS;
        uint64_t one = 0;
        printf("failing seeds:");
        for (uint64_t s = first_seed; s <= last_seed; s++) {
            unsigned char st = sh->status[s - first_seed];
            if (st == ST_FAIL || st == ST_CRASH || (strict && st == ST_KNOWN)) {
                printf(" %llu", (unsigned long long)s);
                if (one == 0) {
                    one = s;
                }
            }
        }
        printf("\n");
        for (unsigned k = 0; k < n; k++) {
            printf("  seed %llu: %s\n", (unsigned long long)sh->recs[k].seed,
                   sh->recs[k].msg);
        }
        if (sh->n_recs > MAX_RECS) {
            printf("  (%u more not shown)\n", sh->n_recs - MAX_RECS);
        }
        printf(
            "replay one: %s --seeds %llu..%llu%s --verbose  (add --trace "
            "for libraft's log)\n",
            argv[0], (unsigned long long)one, (unsigned long long)one, extra);
    }
    printf("fixture-stress: %llu passed, %llu failed\n",
           (unsigned long long)passed, (unsigned long long)failed);
    munmap(sh, shared_size);
    free(queue);
    return failed == 0 ? 0 : 1;
}
