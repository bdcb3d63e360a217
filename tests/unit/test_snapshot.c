/* FSM snapshots over real LMDB stores: the header carries the content's
 * own index (review M4), the off-loop path writes the view taken at
 * snapshot time while apply goes on (M3) and holds raft_close until it is
 * done, and a snapshot install that fails validation stops the node (L5).
 *
 * The "rig" is the FSM with a zeroed struct raft standing in for libraft:
 * the FSM reads only last_applied, last_stored, commit_index and fsm from
 * it, and the raft_io only as the io the FSM wraps. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "raft/prealloc.h"
#include "storage/snapshot.h"
#include "storage/store.h"

struct rig
{
    char dir[256];
    struct store *store;
    struct fsm fsm;
    struct raft raft;
    struct raft_io io;
};

static void rig_open(struct rig *g)
{
    memset(g, 0, sizeof *g);
    tmpdir_make(g->dir, sizeof g->dir);
    CHECK_EQ_INT(store_open(&g->store, g->dir, 1u << 28), FLIP_OK);
    fsm_init(&g->fsm, g->store);
    g->fsm.raft = &g->raft;
    g->raft.fsm = &g->fsm.raft_fsm;
    g->io.data = &g->raft;
}

static void rig_close(struct rig *g)
{
    store_close(g->store);
    tmpdir_remove(g->dir);
}

/* Applies one set through the FSM as libraft would: index last_applied+1,
 * stored and committed before it is applied. */
static void rig_set(struct rig *g, const char *key, const char *value)
{
    struct raft_buffer buf;
    void *result = NULL;

    cluster_command(key, value, 0, 0, &buf);
    CHECK_EQ_INT(g->fsm.raft_fsm.apply(&g->fsm.raft_fsm, &buf, &result), 0);
    raft_free(buf.base);
    g->raft.last_applied++;
    g->raft.last_stored = g->raft.last_applied;
    g->raft.commit_index = g->raft.last_applied;
}

/* Rows written directly (not flag records): bulk for the off-loop test. */
static void rig_bulk(struct rig *g, unsigned rows, size_t vlen)
{
    struct store_txn *t = NULL;
    char key[32];
    char *val = calloc(1, vlen);

    CHECK(val != NULL);
    CHECK_EQ_INT(store_begin(g->store, &t), FLIP_OK);
    for (unsigned i = 0; i < rows; i++) {
        snprintf(key, sizeof key, "bulk.%06u", i);
        memset(val, 'a' + (int)(i % 26), vlen);
        CHECK_EQ_INT(store_put(t, STORE_FLAGS, key, strlen(key), val, vlen),
                     FLIP_OK);
    }
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    free(val);
}

/* Restores a copy of `src` (restore takes ownership of what it is given). */
static int rig_restore(struct rig *g, const struct raft_buffer *src)
{
    struct raft_buffer copy = { raft_malloc(src->len), src->len };

    CHECK(copy.base != NULL);
    memcpy(copy.base, src->base, src->len);
    return g->fsm.raft_fsm.restore(&g->fsm.raft_fsm, &copy);
}

static void release(struct rig *g, struct raft_buffer *bufs, unsigned n)
{
    if (g->fsm.raft_fsm.snapshot_finalize != NULL) {
        CHECK_EQ_INT(
            g->fsm.raft_fsm.snapshot_finalize(&g->fsm.raft_fsm, &bufs, &n), 0);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        raft_free(bufs[i].base);
    }
    raft_free(bufs);
}

/* A snapshot taken while raft's applied index trails the store's (the
 * restart replay window) is labelled with the store's index, so a node that
 * restores it holds the same index and content, and skips the entries the
 * content already covers instead of applying them again. */
TEST(snapshot_header_is_the_content_index, 20)
{
    struct rig a;
    struct rig b;
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    uint64_t index = 0;
    char key[16];

    rig_open(&a);
    rig_open(&b);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "m4.%d", i % 4);
        rig_set(&a, key, "v");
    }
    CHECK_EQ_INT(store_applied_index(a.store), 10);
    a.raft.last_applied = 6; /* restarted: raft replays 7..10 later */
    a.raft.commit_index = 6;
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(store_snapshot_index(bufs[0].base, bufs[0].len, &index),
                 FLIP_OK);
    CHECK_EQ_INT(index, 10);
    b.raft.commit_index = 6; /* installing raft's snapshot at 6 */
    CHECK_EQ_INT(rig_restore(&b, &bufs[0]), 0);
    CHECK_EQ_INT(store_applied_index(b.store), 10);
    CHECK(store_hash(b.store) == store_hash(a.store));
    /* raft on b then applies 7..10: all skipped, nothing applied twice */
    b.raft.last_applied = 6;
    for (int i = 6; i < 10; i++) {
        snprintf(key, sizeof key, "m4.%d", i % 4);
        rig_set(&b, key, "v");
    }
    CHECK_EQ_INT(b.fsm.n_applied, 0);
    CHECK_EQ_INT(b.fsm.n_skipped, 4);
    CHECK(store_hash(b.store) == store_hash(a.store));
    release(&a, bufs, n);
    rig_close(&a);
    rig_close(&b);
}

static int gate_closed(void *data)
{
    (void)data;
    return 0;
}

static int fail_every_alloc(void *data)
{
    (void)data;
    return 1;
}

static void *no_memory(size_t n)
{
    (void)n;
    return NULL;
}

/* When a local snapshot is declined or fails, and that nothing is left
 * behind: the gate says no, raft applied past what it stored (libraft
 * 0.22.1's trailing bug), one is already in progress, the read view
 * cannot be allocated (RAFT_NOMEM), the writer gets no buffer (FLIP_NOMEM)
 * or is cancelled (FLIP_AGAIN). Then one goes through. */
TEST(snapshot_declined_and_failed, 20)
{
    struct rig a;
    struct raft_buffer *bufs = NULL;
    struct raft_buffer *other = NULL;
    struct store_reader *r = NULL;
    atomic_int cancel;
    void *out = NULL;
    size_t len = 0;
    uint64_t index = 0;
    unsigned n = 0;

    rig_open(&a);
    for (int i = 0; i < 5; i++) {
        rig_set(&a, "d.k", "v");
    }
    a.fsm.gate = gate_closed;
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n),
                 RAFT_BUSY);
    a.fsm.gate = NULL;
    a.raft.last_stored = a.raft.last_applied - 1;
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n),
                 RAFT_BUSY);
    a.raft.last_stored = a.raft.last_applied;
    CHECK_EQ_INT(a.fsm.n_declined, 2);
    flip_heap_set_fault(fail_every_alloc, NULL);
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n),
                 RAFT_NOMEM);
    flip_heap_set_fault(NULL, NULL);
    CHECK(a.fsm.job == NULL);

    CHECK_EQ_INT(store_reader_open(a.store, &r), FLIP_OK);
    CHECK_EQ_INT(snapshot_write(r, no_memory, NULL, &out, &len, &index),
                 FLIP_NOMEM);
    CHECK(out == NULL);
    atomic_init(&cancel, 1);
    CHECK_EQ_INT(snapshot_write(r, raft_malloc, &cancel, &out, &len, &index),
                 FLIP_AGAIN);
    CHECK(out == NULL);
    store_reader_close(r);

    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &other, &n),
                 RAFT_BUSY); /* one at a time */
    CHECK_EQ_INT(a.fsm.n_snapshots, 1);
    CHECK_EQ_INT(a.fsm.n_declined, 3);
    release(&a, bufs, 1);
    CHECK(a.fsm.job == NULL);
    rig_close(&a);
}

/* A raft heap whose malloc (the snapshot buffer) or calloc (the job)
 * fails; everything else as raft's default heap does. */
static int heap_fail_calloc;

static void *heap_malloc(void *data, size_t n)
{
    (void)data;
    (void)n;
    return NULL;
}

static void heap_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static void *heap_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return heap_fail_calloc ? NULL : calloc(n, size);
}

/* A local snapshot written on the caller's thread (no loop, as under
 * raft_fixture) that gets no memory for its job or its buffer is answered
 * RAFT_NOMEM and leaves no job behind; a finalize of buffers that are not
 * the job's leaves the job alone. */
TEST(snapshot_no_memory_without_loop, 20)
{
    struct rig a;
    struct raft_heap heap = { NULL, heap_malloc, heap_free, heap_calloc,
                              NULL, NULL,        NULL };
    struct raft_buffer *bufs = NULL;
    struct raft_buffer stranger = { NULL, 0 };
    struct raft_buffer *sp = &stranger;
    unsigned n = 0;
    unsigned one = 1;

    rig_open(&a);
    rig_set(&a, "h.k", "v");
    raft_heap_set(&heap);
    heap_fail_calloc = 1;
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n),
                 RAFT_NOMEM);
    heap_fail_calloc = 0;
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n),
                 RAFT_NOMEM);
    raft_heap_set_default();
    CHECK(a.fsm.job == NULL);
    CHECK_EQ_INT(a.fsm.n_snapshots, 0);
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot_finalize(&a.fsm.raft_fsm, &sp, &one),
                 0);
    CHECK(a.fsm.job != NULL);
    release(&a, bufs, n);
    CHECK(a.fsm.job == NULL);
    rig_close(&a);
}

/* Restore at start-up (raft_start, commit index still 0): a snapshot that
 * LMDB already holds (index at or below the store's) is skipped, and one
 * that fails validation is answered RAFT_CORRUPT, so raft_start fails and
 * flipd exits; the store is unchanged either way. */
TEST(snapshot_restore_at_start, 20)
{
    struct rig a;
    struct rig b;
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    uint64_t hash;

    rig_open(&a);
    rig_open(&b);
    for (int i = 0; i < 3; i++) {
        rig_set(&a, "s.k", "v");
        rig_set(&b, "s.k", "w"); /* same index, other bytes: visible */
    }
    CHECK_EQ_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n), 0);
    hash = store_hash(b.store);
    b.raft.commit_index = 0;
    CHECK_EQ_INT(rig_restore(&b, &bufs[0]), 0); /* 3 <= b's 3 */
    CHECK(store_hash(b.store) == hash);
    CHECK_EQ_INT(b.fsm.n_restored, 0);
    ((uint8_t *)bufs[0].base)[bufs[0].len - 1] ^= 1;
    CHECK_EQ_INT(rig_restore(&b, &bufs[0]), 0); /* the index is read first */
    ((uint8_t *)bufs[0].base)[4] ^= 1; /* the version: undecodable header */
    {
        /* on failure the buffer stays raft's: libraft frees it itself */
        struct raft_buffer copy = { raft_malloc(bufs[0].len), bufs[0].len };
        CHECK(copy.base != NULL);
        memcpy(copy.base, bufs[0].base, copy.len);
        CHECK_EQ_INT(b.fsm.raft_fsm.restore(&b.fsm.raft_fsm, &copy),
                     RAFT_CORRUPT);
        raft_free(copy.base);
    }
    CHECK(store_hash(b.store) == hash);
    CHECK_EQ_INT(b.fsm.n_restored, 0);
    release(&a, bufs, n);
    rig_close(&a);
    rig_close(&b);
}

/* Rewrites a snapshot's header index and its checksum (FNV-1a, as
 * storage/snapshot.h describes), as an older flipd would have labelled it. */
static void relabel(uint8_t *p, size_t len, uint64_t index)
{
    uint64_t h = 1469598103934665603ull;

    for (int i = 0; i < 8; i++) {
        p[8 + i] = (uint8_t)(index >> (56 - 8 * i));
    }
    for (size_t i = 0; i < len - 8; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    for (int i = 0; i < 8; i++) {
        p[len - 8 + i] = (uint8_t)(h >> (56 - 8 * i));
    }
}

/* A snapshot an older flipd labelled with raft's index below its content
 * (M4, already on disk) restores at the content's own index, which it
 * carries in its meta rows, so nothing is applied twice after it. */
TEST(snapshot_older_label_restores_the_content_index, 20)
{
    struct rig a;
    struct rig b;
    void *snap = NULL;
    size_t len = 0;
    struct raft_buffer buf;
    char key[16];

    rig_open(&a);
    rig_open(&b);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "old.%d", i % 3);
        rig_set(&a, key, "v");
    }
    CHECK_EQ_INT(store_snapshot(a.store, 10, malloc, &snap, &len), FLIP_OK);
    relabel(snap, len, 6);
    buf.base = snap;
    buf.len = len;
    b.raft.commit_index = 6;
    CHECK_EQ_INT(rig_restore(&b, &buf), 0);
    CHECK_EQ_INT(store_applied_index(b.store), 10);
    CHECK(store_hash(b.store) == store_hash(a.store));
    free(snap);
    rig_close(&a);
    rig_close(&b);
}

/* ---- off the loop ---------------------------------------------------------
 * The rig's io below the FSM: records what reaches "raft_uv". */

struct below
{
    struct rig *g;
    struct raft_buffer got; /* copy of what the put carried */
    int puts;
    int closes;
    int close_cb_fired;
    int put_status;
    int put_done;
    struct raft_snapshot *snap;
    struct raft_buffer *bufs;
    unsigned n_bufs;
};

static struct below below;

static int below_put(struct raft_io *io,
                     unsigned trailing,
                     struct raft_io_snapshot_put *req,
                     const struct raft_snapshot *snapshot,
                     raft_io_snapshot_put_cb cb)
{
    (void)io;
    CHECK(trailing == 8);
    CHECK_EQ_INT(snapshot->n_bufs, 1);
    below.puts++;
    below.got.len = snapshot->bufs[0].len;
    below.got.base = raft_malloc(below.got.len);
    memcpy(below.got.base, snapshot->bufs[0].base, below.got.len);
    cb(req, 0); /* raft_uv calls back later; the FSM cannot tell */
    return 0;
}

static void below_close(struct raft_io *io, raft_io_close_cb cb)
{
    below.closes++;
    cb(io);
}

static void io_closed(struct raft_io *io)
{
    (void)io;
    below.close_cb_fired++;
}

/* raft's takeSnapshotCb: done with the buffers. */
static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    below.put_status = status;
    below.put_done++;
    release(below.g, below.bufs, below.n_bufs);
}

static void offload_setup(struct rig *a, uv_loop_t *loop)
{
    memset(&below, 0, sizeof below);
    below.g = a;
    a->io.snapshot_put = below_put;
    a->io.close = below_close;
    CHECK_EQ_INT(uv_loop_init(loop), 0);
    fsm_offload_snapshots(&a->fsm, loop, &a->io);
}

/* Disk space the store's data file holds, blocks allocated past its size
 * included. */
static uint64_t allocated_bytes(const char *dir)
{
    char path[300];
    struct stat st;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    CHECK_EQ_INT(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static int on_ext4(const char *dir)
{
    struct statfs fs;

    return statfs(dir, &fs) == 0 && fs.f_type == 0xEF53;
}

/* Runs the loop until no allocation job is running. */
static void settle(struct rig *a, uv_loop_t *loop)
{
    for (int i = 0; i < 1000 && prealloc_busy(a->fsm.prealloc); i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
    CHECK(!prealloc_busy(a->fsm.prealloc));
}

/* Starts a local snapshot as libraft does: fsm->snapshot, then the io's
 * put at once, on the loop thread. */
static void take(struct rig *a,
                 struct raft_snapshot *snap,
                 struct raft_io_snapshot_put *req)
{
    memset(snap, 0, sizeof *snap);
    CHECK_EQ_INT(
        a->fsm.raft_fsm.snapshot(&a->fsm.raft_fsm, &below.bufs, &below.n_bufs),
        0);
    CHECK_EQ_INT(below.n_bufs, 1);
    CHECK_EQ_INT(below.bufs[0].len, 0); /* not written on the loop */
    snap->index = a->raft.last_applied;
    snap->term = 1;
    snap->bufs = below.bufs;
    snap->n_bufs = below.n_bufs;
    below.snap = snap;
    CHECK_EQ_INT(a->io.snapshot_put(&a->io, 8, req, snap, put_cb), 0);
}

/* The snapshot is written on a worker from the view taken when libraft
 * asked for it, while apply keeps committing on the loop thread; restored
 * elsewhere it gives the store as it was at that moment, byte for byte. */
TEST(snapshot_off_loop_while_applying, 60)
{
    struct rig a;
    struct rig b;
    struct raft_snapshot snap;
    struct raft_io_snapshot_put req;
    uv_loop_t loop;
    uint64_t at_snapshot;
    uint64_t index = 0;
    char key[16];
    int applied_meanwhile = 0;

    rig_open(&a);
    rig_open(&b);
    offload_setup(&a, &loop);
    rig_bulk(&a, 20000, 1000); /* ~20 MB: the worker needs a while */
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "m3.%d", i % 7);
        rig_set(&a, key, "before");
    }
    at_snapshot = store_hash(a.store);
    take(&a, &snap, &req);
    CHECK_EQ_INT(below.puts, 0);
    /* apply goes on while the worker reads its view */
    for (int i = 0; i < 200 && below.puts == 0; i++) {
        snprintf(key, sizeof key, "m3.%d", i % 11);
        rig_set(&a, key, "after");
        applied_meanwhile++;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 100000 && below.put_done == 0; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK_EQ_INT(below.put_done, 1);
    CHECK_EQ_INT(below.put_status, 0);
    CHECK(a.fsm.job == NULL); /* finalized */
    CHECK_EQ_INT(a.fsm.n_snapshots, 1);
    CHECK(applied_meanwhile > 0);
    CHECK(store_hash(a.store) != at_snapshot);
    CHECK_EQ_INT(store_snapshot_index(below.got.base, below.got.len, &index),
                 FLIP_OK);
    CHECK_EQ_INT(index, 20);
    b.raft.commit_index = 20;
    CHECK_EQ_INT(rig_restore(&b, &below.got), 0);
    CHECK(store_hash(b.store) == at_snapshot);
    CHECK_EQ_INT(store_applied_index(b.store), 20);
    raft_free(below.got.base);
    /* While the view pinned its pages, the commits appended past the
     * file's end, into blocks allocated ahead of them (prealloc.h; on
     * ext4 only). Once the last job is back, one more commit: the blocks
     * then reach past the end in use. */
    CHECK(a.fsm.prealloc != NULL);
    if (on_ext4(a.dir)) {
        uint64_t end = 0;
        uint64_t limit = 0;
        settle(&a, &loop);
        rig_set(&a, "m3.last", "after");
        settle(&a, &loop);
        CHECK(prealloc_jobs(a.fsm.prealloc) >= 1);
        CHECK_EQ_INT(store_data_extent(a.store, &end, &limit), FLIP_OK);
        CHECK(prealloc_reserved(a.fsm.prealloc) >= end);
        CHECK(allocated_bytes(a.dir) >= prealloc_reserved(a.fsm.prealloc));
    }
    a.io.close(&a.io, io_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(below.close_cb_fired, 1);
    CHECK(a.fsm.prealloc == NULL);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    rig_close(&a);
    rig_close(&b);
}

/* raft_close while the worker writes: the io's close waits for the job,
 * the put is answered RAFT_CANCELED first (raft then finalizes), and only
 * then does the io close, so the store outlives the read view. */
TEST(snapshot_off_loop_close_waits_for_the_job, 60)
{
    struct rig a;
    struct raft_snapshot snap;
    struct raft_io_snapshot_put req;
    uv_loop_t loop;

    rig_open(&a);
    offload_setup(&a, &loop);
    rig_bulk(&a, 20000, 1000);
    rig_set(&a, "c.k", "v");
    take(&a, &snap, &req);
    a.io.close(&a.io, io_closed);
    CHECK_EQ_INT(below.closes, 0);
    for (int i = 0; i < 100000 && below.close_cb_fired == 0; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK_EQ_INT(below.put_done, 1);
    CHECK_EQ_INT(below.put_status, RAFT_CANCELED);
    CHECK_EQ_INT(below.puts, 0);
    CHECK_EQ_INT(below.closes, 1);
    CHECK_EQ_INT(below.close_cb_fired, 1);
    CHECK(a.fsm.job == NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    rig_close(&a);
}

/* ---- a failed install ---------------------------------------------------- */

static int (*real_restore)(struct raft_fsm *fsm, struct raft_buffer *buf);

static int corrupting_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    ((unsigned char *)buf->base)[buf->len / 2] ^= 0x20;
    return real_restore(fsm, buf);
}

/* The body of the next test, in a child process: a lagging server gets an
 * InstallSnapshot whose bytes fail validation. Returns only if the node
 * did not stop. */
static void install_corrupt_snapshot(void)
{
    struct cluster c;
    uint64_t last = 0;
    char key[16];

    cluster_start(&c, 3);
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 10);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 2);
    }
    cluster_elect(&c, 0);
    raft_fixture_kill(&c.f, 2);
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "l5.%d", i % 9);
        last = cluster_set(&c, key, "v", 0, 0);
        CHECK(last != 0);
        raft_fixture_step_n(&c.f, 3);
    }
    CHECK(cluster_wait_applied(&c, last, 10000));
    real_restore = c.fsms[2].raft_fsm.restore;
    c.fsms[2].raft_fsm.restore = corrupting_restore;
    raft_fixture_revive(&c.f, 2);
    /* without the fail-stop the server never applies again: bounded */
    raft_fixture_step_until_applied(&c.f, 2, last, 20000);
}

/* A snapshot install that fails validation stops the node (SIGABRT after
 * a FATAL line) instead of leaving it unable to apply anything while it
 * looks healthy. */
TEST(snapshot_failed_install_stops_the_node, 60)
{
    char dir[256];
    pid_t pid;
    int status = 0;

    tmpdir_make(dir, sizeof dir); /* the child's stores: it leaves them */
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        runner_coverage_on_abort();
        setenv("TMPDIR", dir, 1);
        install_corrupt_snapshot();
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    tmpdir_remove(dir);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "  the node went on (exit status %d)\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}
