/* Fail-the-Nth tests (SQLite's idea) for apply and snapshot restore: for
 * N = 1, 2, ... the Nth LMDB call (storage/fault.h) or the Nth allocation
 * (lib/heap.h) fails, until a run reaches the end without meeting N.
 *
 * raft/fsm.h's contract for a local failure in apply or restore (I/O
 * error, no memory, map full) is to abort, so that raft replays the entry
 * on restart, where it applies. So each run happens in a child process,
 * and the parent checks that the child either
 *   - aborted, leaving the store exactly as it was (content, applied index,
 *     compacted point, size), and that the entry applied again without the
 *     fault (the replay) gives the state a fault-free apply gives; or
 *   - went on, with the store exactly as a fault-free apply leaves it (a
 *     failure that was absorbed must change nothing).
 * Anything else (a crash, another state, a half-applied entry) fails. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "../lib/shape.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "storage/fault.h"
#include "storage/store.h"

#define FAULT_MAX_N 2000 /* bound on N: far above the calls of one apply */

struct rig
{
    struct store *store;
    struct fsm fsm;
    struct raft raft; /* what fsm_apply/fsm_restore read of it */
};

static void rig_open(struct rig *g, const char *dir)
{
    memset(g, 0, sizeof *g);
    CHECK_EQ_INT(store_open(&g->store, dir, 1u << 26), FLIP_OK);
    fsm_init(&g->fsm, g->store);
    g->fsm.raft = &g->raft;
    /* as after a restart: raft's counter at the store's index */
    g->raft.last_applied = store_applied_index(g->store);
    g->raft.last_stored = g->raft.last_applied;
    g->raft.commit_index = g->raft.last_applied + 100;
}

static void rig_apply(struct rig *g, const struct cluster_entry *e)
{
    struct raft_buffer buf;
    void *result = NULL;

    cluster_encode(e, &buf);
    CHECK_EQ_INT(g->fsm.raft_fsm.apply(&g->fsm.raft_fsm, &buf, &result), 0);
    raft_free(buf.base);
    g->raft.last_applied++;
}

/* ---- the state under test ------------------------------------------------ */

#define T0 1700000000000

/* Flags with reasons, change rows, request-id rows: every kind of row the
 * entries under test read, replace, trim or expire. */
static void build_base(struct rig *g)
{
    struct cluster_change a[3] = {
        { .key = "f.a", .value = "1", .reason = "r", .request_seq = 1 },
        { .key = "f.b", .value = "2", .request_seq = 2 },
        { .key = "f.c", .value = "3", .cas = 1, .expected = 0 },
    };
    struct cluster_change b[2] = {
        { .key = "f.d", .value = "4", .request_seq = 3 },
        { .key = "f.a", .value = "5", .reason = "again" },
    };
    struct cluster_entry e1 = { .changes = a, .n = 3, .time_ms = T0 };
    struct cluster_entry e2 = { .changes = b, .n = 2, .time_ms = T0 + 1 };

    rig_apply(g, &e1);
    rig_apply(g, &e2);
    rig_apply(g, &e1); /* the same request ids again: answered, not applied */
}

/* The entries under test. */
static const struct cluster_change set_one[1] = {
    { .key = "f.b", .value = "new", .reason = "flip", .request_seq = 10 },
};
static const struct cluster_change del_one[1] = {
    { .key = "f.a", .cas = 1, .expected = 2 },
};
/* a set, a delete, a create, a CAS conflict, a repeated id; a small
 * change log (trimmed), a time past the dedup window (rows expire), and
 * the cluster identity rows */
static const struct cluster_change batch[5] = {
    { .key = "f.a", .value = "x", .reason = "batch", .request_seq = 11 },
    { .key = "f.b" },
    { .key = "f.new", .value = "y", .cas = 1, .expected = 0 },
    { .key = "f.c", .value = "z", .cas = 1, .expected = 99 },
    { .key = "f.d", .value = "4", .request_seq = 3 },
};

static const struct cluster_entry entries[3] = {
    { .changes = set_one, .n = 1, .time_ms = T0 + 5 },
    { .changes = del_one, .n = 1, .time_ms = T0 + 6 },
    { .changes = batch,
      .n = 5,
      .time_ms = T0 + 3600 * 1000,
      .changelog_keep = 3,
      .cluster_id = "0123456789abcdef0123456789abcdef",
      .joined_member = 4 },
};

/* ---- the injectors --------------------------------------------------------
 */

enum fault_kind
{
    FAULT_LMDB,
    FAULT_ALLOC
};

struct nth
{
    int pending; /* armed by the next arm_here() (in the child only) */
    enum fault_kind kind;
    unsigned n;
    unsigned calls;
    int err;
    int hit;
    int report; /* pipe to the parent: the name of the failed call */
};

static struct nth nth = { .report = -1 };

static void report(const char *call)
{
    if (nth.report >= 0) {
        (void)!write(nth.report, call, strlen(call));
    }
}

static int lmdb_nth(void *data, const char *call)
{
    struct nth *f = data;
    if (++f->calls == f->n) {
        f->hit = 1;
        report(call);
        return f->err;
    }
    return 0;
}

static int alloc_nth(void *data)
{
    struct nth *f = data;
    if (++f->calls == f->n) {
        f->hit = 1;
        report("allocation");
        return 1;
    }
    return 0;
}

/* Called by an operation right before the part under test. */
static void arm_here(void)
{
    if (!nth.pending) {
        return;
    }
    nth.pending = 0;
    if (nth.kind == FAULT_LMDB) {
        store_fault_set(lmdb_nth, &nth);
    } else {
        flip_heap_set_fault(alloc_nth, &nth);
    }
}

static void disarm(void)
{
    store_fault_set(NULL, NULL);
    flip_heap_set_fault(NULL, NULL);
}

/* The call the last child failed ("" when none). */
static char failed_call[32];

/* What a child did with its fault. */
enum run_end
{
    RUN_ABORTED,  /* the documented stop */
    RUN_ABSORBED, /* the fault was met, and the operation went on */
    RUN_CLEAN     /* N is past the last call: no fault met */
};

/* Runs `op(dir, arg)` in a child with the Nth call failing. */
static enum run_end run_child(const char *dir,
                              enum fault_kind kind,
                              unsigned n,
                              int err,
                              void (*op)(const char *dir, const void *arg),
                              const void *arg)
{
    pid_t pid;
    int status = 0;
    int fds[2];
    ssize_t got;

    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the abort's log line, once per N, is expected */
        if (freopen("/dev/null", "w", stderr) == NULL) {
            _exit(2);
        }
        close(fds[0]);
        runner_coverage_on_abort();
        memset(&nth, 0, sizeof nth);
        nth.pending = 1;
        nth.kind = kind;
        nth.n = n;
        nth.err = err;
        nth.report = fds[1];
        op(dir, arg);
        disarm();
        exit(nth.hit ? 3 : 0); /* exit, not _exit: coverage counters */
    }
    close(fds[1]);
    got = read(fds[0], failed_call, sizeof failed_call - 1);
    failed_call[got > 0 ? got : 0] = '\0';
    close(fds[0]);
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
        return RUN_ABORTED;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        return RUN_ABSORBED;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return RUN_CLEAN;
    }
    fprintf(stderr, "  N=%u (%s): the child ended with status 0x%x\n", n,
            failed_call, status);
    CHECK(0);
    return RUN_CLEAN;
}

/* ---- apply ----------------------------------------------------------------
 */

static void op_apply(const char *dir, const void *arg)
{
    struct rig g;

    rig_open(&g, dir);
    arm_here();
    rig_apply(&g, arg);
    disarm();
    store_close(g.store);
}

static void make_base(char *dir, size_t n)
{
    struct rig g;

    tmpdir_make(dir, n);
    rig_open(&g, dir);
    build_base(&g);
    store_close(g.store);
}

/* N = 1, 2, ... over one entry; returns how many runs met their fault. */
static unsigned fail_each_apply(const struct cluster_entry *e,
                                enum fault_kind kind,
                                int err)
{
    char dir[256];
    struct shape before;
    struct shape after;
    unsigned faults = 0;

    /* the fault-free result */
    make_base(dir, sizeof dir);
    before = shape_in(dir);
    op_apply(dir, e);
    after = shape_in(dir);
    tmpdir_remove(dir);
    CHECK(!shape_same(&before, &after));

    for (unsigned n = 1; n <= FAULT_MAX_N; n++) {
        enum run_end end;
        struct shape got;

        make_base(dir, sizeof dir);
        end = run_child(dir, kind, n, err, op_apply, e);
        got = shape_in(dir);
        if (end == RUN_ABORTED) {
            if (!shape_same(&got, &before)) {
                fprintf(stderr, "  N=%u (%s): apply aborted half-done\n", n,
                        failed_call);
                CHECK(0);
            }
            op_apply(dir, e); /* the replay after the restart */
            got = shape_in(dir);
        }
        if (!shape_same(&got, &after)) {
            fprintf(stderr,
                    "  N=%u (%s failed, %s): the store differs from a "
                    "fault-free apply (applied %llu vs %llu)\n",
                    n, failed_call,
                    end == RUN_ABORTED ? "after the replay" : "not stopped",
                    (unsigned long long)got.applied,
                    (unsigned long long)after.applied);
            CHECK(0);
        }
        tmpdir_remove(dir);
        if (end == RUN_CLEAN) {
            return faults;
        }
        faults++;
    }
    CHECK(0); /* FAULT_MAX_N is far above any apply */
    return faults;
}

/* Every LMDB call of an apply (a set, a delete, a batch that also trims
 * the change log and expires request ids) failing with an I/O error, then
 * with a full map: apply stops the node with the store untouched, and the
 * replay applies the entry exactly. */
TEST(fault_lmdb_nth_call_in_apply, 120)
{
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        CHECK(fail_each_apply(&entries[i], FAULT_LMDB, EIO) >= 8);
    }
    CHECK(fail_each_apply(&entries[2], FAULT_LMDB, -30792 /* MAP_FULL */) >= 8);
}

/* The same with the Nth allocation failing (the entry's decode, the txn,
 * the stored records' decode): a local shortage must never be taken for
 * an invalid entry, which every replica would record alike. */
TEST(fault_alloc_nth_in_apply, 120)
{
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        CHECK(fail_each_apply(&entries[i], FAULT_ALLOC, 0) >= 2);
    }
}

/* ---- snapshot restore -----------------------------------------------------
 */

struct snap
{
    void *buf;
    size_t len;
};

static void op_restore(const char *dir, const void *arg)
{
    const struct snap *sn = arg;
    struct raft_buffer copy = { raft_malloc(sn->len), sn->len };
    struct rig g;

    CHECK(copy.base != NULL);
    memcpy(copy.base, sn->buf, sn->len);
    rig_open(&g, dir);
    arm_here();
    CHECK_EQ_INT(g.fsm.raft_fsm.restore(&g.fsm.raft_fsm, &copy), 0);
    disarm();
    store_close(g.store);
}

/* Every LMDB call and allocation of a snapshot restore failing in turn:
 * the node stops with its store as it was, and the restore done again
 * (libraft installs the snapshot again after the restart) gives exactly
 * the snapshot's state. */
TEST(fault_nth_in_snapshot_restore, 120)
{
    char src[256];
    char dir[256];
    struct rig g;
    struct snap sn;
    struct shape before;
    struct shape after;
    enum fault_kind kinds[2] = { FAULT_LMDB, FAULT_ALLOC };

    /* the snapshot: the base plus every entry under test */
    make_base(src, sizeof src);
    rig_open(&g, src);
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        rig_apply(&g, &entries[i]);
    }
    CHECK_EQ_INT(store_snapshot(g.store, store_applied_index(g.store),
                                raft_malloc, &sn.buf, &sn.len),
                 FLIP_OK);
    after = shape_of(g.store);
    store_close(g.store);
    tmpdir_remove(src);

    for (int k = 0; k < 2; k++) {
        unsigned faults = 0;
        for (unsigned n = 1; n <= FAULT_MAX_N; n++) {
            enum run_end end;
            struct shape got;

            make_base(dir, sizeof dir);
            before = shape_in(dir);
            end = run_child(dir, kinds[k], n, EIO, op_restore, &sn);
            got = shape_in(dir);
            if (end == RUN_ABORTED) {
                CHECK(shape_same(&got, &before));
                op_restore(dir, &sn);
                got = shape_in(dir);
            }
            if (!shape_same(&got, &after)) {
                fprintf(stderr, "  N=%u (%s failed): restore differs\n", n,
                        failed_call);
                CHECK(0);
            }
            tmpdir_remove(dir);
            if (end == RUN_CLEAN) {
                break;
            }
            faults++;
        }
        CHECK(faults >= 1);
    }
    raft_free(sn.buf);
}

/* ---- the store's own write functions --------------------------------------
 */

/* One write txn touching every write function: a new row, a replaced
 * row, a delete, change rows, both trims, a lookup, the applied index. */
static int txn_ops(struct store *s, uint64_t idx)
{
    struct store_txn *t = NULL;
    const void *k = NULL;
    const void *v = NULL;
    size_t kl = 0;
    size_t vl = 0;
    char key[16];
    int rv = store_begin(s, &t);

    if (rv != FLIP_OK) {
        return rv;
    }
    snprintf(key, sizeof key, "n.%llu", (unsigned long long)idx);
    rv = store_put(t, STORE_FLAGS, key, strlen(key), "new", 3);
    if (rv == FLIP_OK) {
        rv = store_put(t, STORE_FLAGS, "keep", 4, "replaced", 8);
    }
    if (rv == FLIP_OK) {
        rv = store_del(t, STORE_FLAGS, "gone", 4);
        rv = rv == FLIP_NOTFOUND ? FLIP_OK : rv;
    }
    for (uint32_t pos = 0; pos < 3 && rv == FLIP_OK; pos++) {
        rv = store_change_append(t, idx, pos, "row", 3);
    }
    if (rv == FLIP_OK) {
        rv = store_change_trim(t, 4);
    }
    if (rv == FLIP_OK) {
        rv = store_change_trim_bytes(t, store_txn_bytes(t) - 1, idx);
    }
    if (rv == FLIP_OK) {
        rv = store_txn_first(t, STORE_FLAGS, "n.", 2, &k, &kl, &v, &vl);
    }
    if (rv == FLIP_OK) {
        rv = store_txn_get(t, STORE_FLAGS, "keep", 4, &v, &vl);
    }
    if (rv == FLIP_OK) {
        rv = store_txn_set_applied(t, idx);
    }
    if (rv != FLIP_OK) {
        store_abort(t);
        return rv;
    }
    return store_commit(t);
}

/* Every LMDB call of that txn failing in turn, with each error LMDB
 * returns: the function that met it returns the code store.h names for it
 * (map full and ENOSPC: FLIP_NOSPACE, ENOMEM: FLIP_NOMEM, no reader slot:
 * FLIP_BUSY, anything else: FLIP_IOERR), and once the txn is aborted the
 * store, its in-memory applied index, compacted point and size included,
 * is exactly as before. Without the fault the same txn then commits. */
TEST(fault_store_write_functions, 60)
{
    const struct
    {
        int err;
        int want;
    } codes[] = {
        { EIO, FLIP_IOERR },
        { -30792 /* MAP_FULL */, FLIP_NOSPACE },
        { ENOSPC, FLIP_NOSPACE },
        { ENOMEM, FLIP_NOMEM },
        { -30790 /* READERS_FULL */, FLIP_BUSY },
    };
    char dir[256];
    struct store *s = NULL;
    uint64_t idx = 1;

    /* each injected error is logged as a real one would be: not here */
    flip_log_set_level((enum flip_log_level)(FLIP_LOG_ERROR + 1));
    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    for (; idx <= 4; idx++) {
        CHECK_EQ_INT(txn_ops(s, idx), FLIP_OK);
    }
    for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
        unsigned n;
        for (n = 1; n <= FAULT_MAX_N; n++) {
            struct shape before = shape_of(s);
            struct shape got;
            int rv;

            memset(&nth, 0, sizeof nth);
            nth.n = n;
            nth.err = codes[c].err;
            store_fault_set(lmdb_nth, &nth);
            rv = txn_ops(s, idx);
            disarm();
            if (!nth.hit) {
                CHECK_EQ_INT(rv, FLIP_OK);
                idx++;
                break;
            }
            if (rv != codes[c].want) {
                fprintf(stderr, "  call %u (error %d): %d, expected %d\n", n,
                        codes[c].err, rv, codes[c].want);
                CHECK(0);
            }
            got = shape_of(s);
            shape_check(&got, &before);
        }
        CHECK(n > 10);
    }
    store_close(s);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_applied_index(s), idx - 1);
    store_close(s);
    tmpdir_remove(dir);
}
