/* fixture_stress: the raft_fixture stress of stress_run.c over a seed range.
 *
 *   fixture_stress [--seeds A..B | --seeds N] [--nodes 3|5] [--jobs J]
 *                  [--chaos-ms MS] [--gate prod|off] [--no-shim]
 *                  [--io-faults off|on|seed] [--timeout S] [--dir DIR]
 *                  [--progress K] [--known FILE] [--strict] [--trace]
 *                  [--verbose] [--no-fork] [--aslr] [--mutate N] [--raw]
 *
 *   --nodes     force 3 or 5 servers (default: a quarter of seeds use 5)
 *   --gate      prod: raft/node.c's snapshot hold (default); off: none
 *   --no-shim   without raft/ioshim.c, which node.c puts between libraft
 *               and its io (on by default, as in flipd)
 *   --io-faults raft_fixture_io_fault injection; libraft 0.22.1 does not
 *               survive I/O errors, so this is for exploring, not for CI
 *   --known     the seeds allowed to hit a known libraft bug, one per line
 *               as "SEED reason" (# comments); default
 *               tests/stress/known-seeds.txt (relative to the working
 *               directory, as make runs it); a missing default file is an
 *               empty list, a missing named one an error
 *   --strict    listed seeds that hit a known libraft bug fail too
 *   --raw       do not intercept known libraft bugs: see them crash
 *   --trace     libraft's own log on stderr (for replaying one seed)
 *   --no-fork   run in this process (gdb, valgrind on one seed)
 *   --mutate N  self-test: server 0 loses its Nth applied entry; every run
 *               where that was a real command must fail
 *
 * Every seed runs in its own forked child (J at a time), so a crash
 * (libraft, an FSM abort, a sanitizer report) or a hang (per-seed alarm) is
 * pinned to its seed, and each seed starts from the same process state.
 *
 * Reproducibility: libraft 0.22.1 reads an uninitialised stack value on the
 * AppendEntries-result path (valgrind: recv_append_entries_result.c:30,
 * last_log_index of a stale-term rejection), and its garbage, which holds
 * addresses, changes what a run does now and then. So the program re-execs
 * itself once with address randomisation off (personality), every child
 * scrubs its stack first, and stores use paths relative to the work
 * directory: a seed then behaves the same alone, in any range, with any
 * --jobs, --no-fork or not. (A rebuilt binary may move that garbage: replay
 * with the binary that failed.) --aslr skips the re-exec; under valgrind it
 * is skipped anyway.
 *
 * Stores live under DIR (default /dev/shm when writable, else $TMPDIR or
 * /tmp: store_open fsyncs its marker files) and are removed at the end.
 *
 * Output: a progress line every K seeds, a line per failing seed, totals,
 * the failing seeds with a replay command, and always last exactly
 *   fixture-stress: N passed, N failed
 * A seed that hits a documented libraft bug (detected by its signature
 * before it does damage; see stress_run.c) fails unless the --known file
 * lists that seed with its reason: a new seed hitting one is news, never a
 * silent pass. Listed seeds that hit one count as passed (unless --strict)
 * and are printed with their reason. Exit status 0 iff nothing failed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
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
#define MAX_KNOWN        256
#define KNOWN_DEFAULT    "tests/stress/known-seeds.txt"

/* Child exit codes; anything else is a crash. */
#define EXIT_PASS  0
#define EXIT_FAIL  10
#define EXIT_KNOWN 11

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
        cuts, faults, leaders, fixups, shimmed, leaks, deferred, steps, sim_ms,
        last_index, restarts, reads;
};

struct shared
{
    struct totals t;
    unsigned n_recs;
    struct fail_rec recs[MAX_RECS];
    unsigned char status[]; /* one per seed */
};

struct slot
{
    pid_t pid; /* 0 = free */
    uint64_t seed;
};

/* Read by AddressSanitizer at start-up (ignored by other builds); the
 * environment's ASAN_OPTIONS still win. Each seed is a short-lived child, so
 * a smaller quarantine costs little detection and saves page faults. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=16";
}

static struct shared *sh;
static uint64_t first_seed = DEFAULT_FIRST;
static uint64_t last_seed = DEFAULT_LAST;
static unsigned timeout_s = 120;
static char base_dir[512];

/* The --known list: seeds allowed to hit a known libraft bug. */
struct known_seed
{
    uint64_t seed;
    char reason[200];
};
static struct known_seed known[MAX_KNOWN];
static unsigned n_known;

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
            "         [--chaos-ms MS] [--gate prod|off] [--no-shim] "
            "[--io-faults off|on|seed]\n"
            "         [--timeout S] [--dir DIR] [--progress K] [--known FILE]\n"
            "         [--strict] [--trace]\n"
            "         [--verbose] [--no-fork] [--aslr] [--mutate N] [--raw]\n"
            "defaults: --seeds %d..%d, nodes from each seed, --chaos-ms %d, "
            "--gate prod\n"
            "          (raft/node.c's snapshot hold), --io-faults off, --jobs "
            "= online CPUs\n",
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
    if (!o->shim) {
        len += snprintf(out + len, n - (size_t)len, " --no-shim");
    }
    if (o->raw) {
        len += snprintf(out + len, n - (size_t)len, " --raw");
    }
    if (o->mutate != 0) {
        len += snprintf(out + len, n - (size_t)len, " --mutate %u", o->mutate);
    }
    if (o->io_faults != 0) {
        snprintf(out + len, n - (size_t)len, " --io-faults %s",
                 o->io_faults > 0 ? "on" : "seed");
    }
}

/* Reads the --known list; exits 2 on a malformed line or, unless the file
 * is the default one, a missing file. */
static void load_known(const char *path, int is_default)
{
    FILE *f = fopen(path, "r");
    char line[512];
    unsigned lineno = 0;

    if (f == NULL) {
        if (is_default && errno == ENOENT) {
            return;
        }
        fprintf(stderr, "fixture_stress: --known %s: %s\n", path,
                strerror(errno));
        exit(2);
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = line;
        char *end;
        unsigned long long seed;
        size_t len;

        lineno++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '#' || *p == '\n' || *p == '\0') {
            continue;
        }
        errno = 0;
        seed = strtoull(p, &end, 10);
        if (errno != 0 || end == p || (*end != ' ' && *end != '\t')) {
            goto bad;
        }
        while (*end == ' ' || *end == '\t') {
            end++;
        }
        len = strcspn(end, "\n");
        if (len == 0) {
            goto bad; /* a seed without its reason */
        }
        if (n_known == MAX_KNOWN) {
            fprintf(stderr, "fixture_stress: %s: more than %d seeds\n", path,
                    MAX_KNOWN);
            exit(2);
        }
        known[n_known].seed = seed;
        snprintf(known[n_known].reason, sizeof known[n_known].reason, "%.*s",
                 (int)len, end);
        n_known++;
    }
    fclose(f);
    return;
bad:
    fprintf(stderr, "fixture_stress: %s:%u: want \"SEED reason\"\n", path,
            lineno);
    exit(2);
}

/* The reason a seed is listed for, or NULL when it is not. */
static const char *known_reason(uint64_t seed)
{
    for (unsigned k = 0; k < n_known; k++) {
        if (known[k].seed == seed) {
            return known[k].reason;
        }
    }
    return NULL;
}

/* Whether a seed with status st counts as failed. */
static int seed_failed(uint64_t seed, unsigned char st, int strict)
{
    if (st == ST_FAIL || st == ST_CRASH) {
        return 1;
    }
    return st == ST_KNOWN && (strict || known_reason(seed) == NULL);
}

/* Zeroes the stack below the caller, so uninitialised reads in libraft see
 * the same bytes whatever ran before (see the top of this file). */
__attribute__((noinline)) static void scrub_stack(void)
{
    volatile unsigned char buf[256 * 1024];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = 0;
    }
}

/* Runs one seed in this process; returns its ST_* status. */
static int run_seed(const struct stress_opts *base, uint64_t seed, unsigned j)
{
    struct stress_opts o = *base;
    struct stress_stats st;
    char dir[32];
    char err[1536];
    char line[2048];
    double t0 = now_s();
    int rv;

    snprintf(dir, sizeof dir, "j%u", j); /* relative to base_dir */
    o.dir = dir;
    rv = stress_run_seed(seed, &o, &st, err, sizeof err);
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
    ADD(leaks);
    ADD(deferred);
    ADD(steps);
    ADD(sim_ms);
    ADD(last_index);
    ADD(restarts);
    ADD(reads);
#undef ADD
    if (rv == 2) {
        snprintf(line, sizeof line, "known seed %llu: %s\n",
                 (unsigned long long)seed, err);
    } else if (rv != 0) {
        snprintf(line, sizeof line,
                 "FAIL  seed %llu (n=%u pre-vote=%d snap=%u faults=%d): %s\n",
                 (unsigned long long)seed, st.nodes, st.pre_vote,
                 st.snap_threshold, st.io_faults, err);
        add_rec(seed, err);
    } else if (st.mutated) {
        snprintf(line, sizeof line,
                 "UNDETECTED seed %llu: --mutate %u took effect but every "
                 "check passed\n",
                 (unsigned long long)seed, o.mutate);
    } else if (o.verbose) {
        snprintf(line, sizeof line,
                 "ok    seed %llu n=%u pre-vote=%d snap=%u faults=%d | %llums "
                 "%llu steps, index %llu, %u/%u acked (%u apply errors), %u "
                 "applies, %u snapshots (%u declined), %u installs, %u kills, "
                 "%u cuts, %u faults, %u leaders, %u fixups, %u shimmed | %s "
                 "%.3fs\n",
                 (unsigned long long)seed, st.nodes, st.pre_vote,
                 st.snap_threshold, st.io_faults, (unsigned long long)st.sim_ms,
                 (unsigned long long)st.steps,
                 (unsigned long long)st.last_index, st.acked, st.proposed,
                 st.apply_errors, st.applied, st.snapshots, st.declined,
                 st.restored, st.kills, st.cuts, st.faults, st.leaders,
                 st.fixups, st.shimmed, err, now_s() - t0);
    } else {
        line[0] = '\0';
    }
    fputs(line, stdout);
    fflush(stdout);
    return rv == 0 ? ST_PASS : rv == 2 ? ST_KNOWN : ST_FAIL;
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
        parse_u64(dots + 2, &last_seed) != 0 || last_seed < first_seed ||
        last_seed - first_seed >= 100000000) {
        usage();
    }
}

static void make_base_dir(const char *dir, unsigned jobs)
{
    const char *root = dir;
    struct stat sb;
    char sub[64];

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
    if (mkdtemp(base_dir) == NULL || chdir(base_dir) != 0) {
        perror(base_dir);
        exit(2);
    }
    for (unsigned j = 0; j < jobs; j++) {
        snprintf(sub, sizeof sub, "j%u", j);
        mkdir(sub, 0700);
        for (unsigned i = 0; i < 5; i++) {
            snprintf(sub, sizeof sub, "j%u/s%u", j, i);
            if (mkdir(sub, 0700) != 0) {
                perror(sub);
                exit(2);
            }
        }
    }
}

/* Re-executes this program once with address randomisation off (see the top
 * of the file); returns if that is not possible or not wanted. */
static void no_aslr(char **argv)
{
    const char *preload = getenv("LD_PRELOAD");
    int pers = personality(0xffffffff);

    if (pers == -1 || (pers & ADDR_NO_RANDOMIZE) != 0 ||
        getenv("FLIP_STRESS_REEXEC") != NULL ||
        (preload != NULL && strstr(preload, "vgpreload") != NULL)) {
        return; /* already off, tried, or valgrind (no exec escapes) */
    }
    if (personality((unsigned long)pers | ADDR_NO_RANDOMIZE) == -1) {
        return;
    }
    setenv("FLIP_STRESS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    personality((unsigned long)pers); /* exec failed: go on as we are */
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

/* Classifies a finished child; returns the seed's final ST_* status. */
static int reap(uint64_t seed, int status)
{
    unsigned char *slot = &sh->status[seed - first_seed];
    char why[200];

    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if ((code == EXIT_PASS && *slot == ST_PASS) ||
            (code == EXIT_FAIL && *slot == ST_FAIL) ||
            (code == EXIT_KNOWN && *slot == ST_KNOWN)) {
            return *slot;
        }
        snprintf(why, sizeof why,
                 "CRASH: exited with status %d after %s (sanitizer report or "
                 "abort above)",
                 code,
                 *slot == ST_RUNNING ? "no result" : "its result (at exit)");
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        snprintf(why, sizeof why, "HANG: no result after %us (--timeout)",
                 timeout_s);
    } else if (WIFSIGNALED(status)) {
        snprintf(why, sizeof why, "CRASH: killed by %s (%d); output above",
                 sig_name(WTERMSIG(status)), WTERMSIG(status));
    } else {
        snprintf(why, sizeof why, "CRASH: unexpected wait status %d", status);
    }
    add_rec(seed, why);
    printf("FAIL  seed %llu: %s\n", (unsigned long long)seed, why);
    *slot = ST_CRASH;
    return ST_CRASH;
}

int main(int argc, char **argv)
{
    struct stress_opts o = { .shim = 1,
                             .gate = STRESS_GATE_PROD,
                             .io_faults = 0,
                             .chaos_ms = DEFAULT_CHAOS_MS };
    const char *dir = NULL;
    unsigned jobs = 0;
    uint64_t progress = 0;
    uint64_t count;
    struct slot slots[MAX_JOBS];
    unsigned running = 0;
    uint64_t next;
    uint64_t done = 0;
    uint64_t n_st[ST_KNOWN + 1] = { 0 };
    uint64_t passed;
    uint64_t failed;
    double start;
    size_t shared_size;
    char extra[128];
    int no_fork = 0;
    int strict = 0;
    int aslr = 0;
    const char *known_path = NULL;
    uint64_t n_unlisted = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--trace") == 0) {
            o.trace = 1;
        } else if (strcmp(a, "--raw") == 0) {
            o.raw = 1;
        } else if (strcmp(a, "--shim") == 0) {
            o.shim = 1; /* the default; kept for old replay lines */
        } else if (strcmp(a, "--no-shim") == 0) {
            o.shim = 0;
        } else if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (strcmp(a, "--no-fork") == 0) {
            no_fork = 1;
        } else if (strcmp(a, "--aslr") == 0) {
            aslr = 1;
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
        } else if (strcmp(a, "--progress") == 0) {
            if (parse_u64(v, &progress) != 0 || progress == 0) {
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
        } else if (strcmp(a, "--mutate") == 0) {
            if (parse_u64(v, &x) != 0 || x == 0 || x > 1000000) {
                usage();
            }
            o.mutate = (unsigned)x;
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            dir = v;
            i++;
        } else if (strcmp(a, "--known") == 0) {
            known_path = v;
            i++;
        } else {
            usage();
        }
    }
    load_known(known_path != NULL ? known_path : KNOWN_DEFAULT,
               known_path == NULL);
    if (!aslr) {
        no_aslr(argv);
    }
    if (jobs == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (unsigned)n;
    }
    if (no_fork) {
        jobs = 1;
    }
    count = last_seed - first_seed + 1;
    if (progress == 0) {
        progress = count / 10 < 100 ? 100 : count / 10;
    }
    if (getenv("FLIP_TEST_VERBOSE") == NULL) {
        flip_log_set_level(FLIP_LOG_WARN);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    make_base_dir(dir, jobs);

    shared_size = sizeof *sh + (size_t)count;
    sh = mmap(NULL, shared_size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(slots, 0, sizeof slots);
    describe_opts(&o, extra, sizeof extra);
    printf("fixture-stress: seeds %llu..%llu%s, %u jobs, stores in %s%s\n",
           (unsigned long long)first_seed, (unsigned long long)last_seed, extra,
           jobs, base_dir,
           personality(0xffffffff) & ADDR_NO_RANDOMIZE ? "" : " (ASLR on)");
    start = now_s();

    next = first_seed;
    while (next <= last_seed || running > 0) {
        int status = 0;
        pid_t pid;
        unsigned j;
        int st;

        if (no_fork) {
            sh->status[next - first_seed] = ST_RUNNING;
            st = run_seed(&o, next, 0);
            sh->status[next - first_seed] = (unsigned char)st;
            n_st[st]++;
            next++;
        } else {
            for (j = 0; j < jobs && next <= last_seed; j++) {
                if (slots[j].pid != 0) {
                    continue;
                }
                slots[j].seed = next++;
                sh->status[slots[j].seed - first_seed] = ST_RUNNING;
                fflush(NULL);
                slots[j].pid = fork();
                if (slots[j].pid < 0) {
                    perror("fork");
                    return 2;
                }
                if (slots[j].pid == 0) {
                    scrub_stack();
                    alarm(timeout_s);
                    st = run_seed(&o, slots[j].seed, j);
                    alarm(0);
                    sh->status[slots[j].seed - first_seed] = (unsigned char)st;
                    fflush(NULL);
                    exit(st == ST_PASS    ? EXIT_PASS
                         : st == ST_KNOWN ? EXIT_KNOWN
                                          : EXIT_FAIL);
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
            for (j = 0; j < jobs && slots[j].pid != pid; j++) {
            }
            if (j == jobs) {
                continue;
            }
            slots[j].pid = 0;
            running--;
            n_st[reap(slots[j].seed, status)]++;
        }
        done++;
        if (done % progress == 0 || done == count) {
            printf(
                "[%6llu/%llu] %llu passed, %llu failed, %llu known signature "
                "(%.1fs, %.0f seeds/s)\n",
                (unsigned long long)done, (unsigned long long)count,
                (unsigned long long)n_st[ST_PASS],
                (unsigned long long)(n_st[ST_FAIL] + n_st[ST_CRASH]),
                (unsigned long long)n_st[ST_KNOWN], now_s() - start,
                (double)done / (now_s() - start));
        }
    }
    if (chdir("/") != 0) {
        perror("chdir");
    }
    rm_tree(base_dir);

    printf("fixture-stress: %llu seeds in %.1fs (%.0f seeds/s, %u jobs)\n",
           (unsigned long long)count, now_s() - start,
           (double)count / (now_s() - start), jobs);
    printf(
        "totals: %llu simulated s, %llu steps, final index %llu; %llu "
        "writes proposed, %llu acked, %llu linearizable reads, %llu "
        "proposer processes (raft/propose.c); %llu FSM applies; %llu snapshots "
        "(%llu declined), %llu installs; %llu kills, %llu cuts, %llu io "
        "faults, %llu leaders; %llu fixture truncations fixed, %llu "
        "InstallSnapshot terms fixed, %llu installs held back, %llu libraft "
        "snapshot leaks freed\n",
        (unsigned long long)(sh->t.sim_ms / 1000),
        (unsigned long long)sh->t.steps, (unsigned long long)sh->t.last_index,
        (unsigned long long)sh->t.proposed, (unsigned long long)sh->t.acked,
        (unsigned long long)sh->t.reads, (unsigned long long)sh->t.restarts,
        (unsigned long long)sh->t.applied, (unsigned long long)sh->t.snapshots,
        (unsigned long long)sh->t.declined, (unsigned long long)sh->t.restored,
        (unsigned long long)sh->t.kills, (unsigned long long)sh->t.cuts,
        (unsigned long long)sh->t.faults, (unsigned long long)sh->t.leaders,
        (unsigned long long)sh->t.fixups, (unsigned long long)sh->t.shimmed,
        (unsigned long long)sh->t.deferred, (unsigned long long)sh->t.leaks);
    if (n_st[ST_KNOWN] > 0) {
        printf("known libraft bug signatures: %llu seeds\n",
               (unsigned long long)n_st[ST_KNOWN]);
        for (uint64_t s = first_seed; s <= last_seed; s++) {
            const char *why;
            if (sh->status[s - first_seed] != ST_KNOWN) {
                continue;
            }
            why = known_reason(s);
            if (why == NULL) {
                n_unlisted++;
            }
            printf("  seed %llu: %s\n", (unsigned long long)s,
                   why == NULL ? "NOT LISTED in the --known file: failed"
                   : strict    ? "listed, failed by --strict"
                               : why);
        }
    }
    if (n_unlisted > 0) {
        printf(
            "a seed not in %s hit a known libraft bug: list it there "
            "(\"SEED reason\") only once its cause is understood\n",
            known_path != NULL ? known_path : KNOWN_DEFAULT);
    }
    failed =
        n_st[ST_FAIL] + n_st[ST_CRASH] + (strict ? n_st[ST_KNOWN] : n_unlisted);
    passed = count - failed;
    if (failed > 0) {
        unsigned n = sh->n_recs < MAX_RECS ? sh->n_recs : MAX_RECS;
        uint64_t one = 0;
        printf("failing seeds:");
        for (uint64_t s = first_seed; s <= last_seed; s++) {
            unsigned char st = sh->status[s - first_seed];
            if (seed_failed(s, st, strict)) {
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
            "replay one: %s --seeds %llu..%llu%s --verbose  (--trace: "
            "libraft's log on stderr)\n",
            argv[0], (unsigned long long)one, (unsigned long long)one, extra);
    }
    printf("fixture-stress: %llu passed, %llu failed\n",
           (unsigned long long)passed, (unsigned long long)failed);
    munmap(sh, shared_size);
    return failed == 0 ? 0 : 1;
}
