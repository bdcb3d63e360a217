/* The raft FSM over LMDB; see fsm.h for the happy path and failure modes. */
#include "fsm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>  /* the snapshot thread's "done" */
#include <sys/resource.h> /* the snapshot thread's priority */
#include <sys/syscall.h>
#include <unistd.h>

#include "dedup.h"
#include "lib/err.h"
#include "lib/log.h"
#include "prealloc.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "storage/flags.h"
#include "storage/identity.h"
#include "storage/snapshot.h"

static void die(const char *what, int rv)
{
    flip_errorf("fsm: %s: %s; aborting so raft can replay on restart", what,
                flip_strerror(rv));
    abort();
}

static int change_valid(const Flipcmd__Change *ch)
{
    const char *why = NULL;
    struct dedup_id id;

    if (!ch->has_op ||
        (ch->op != FLIPCMD__OP__SET && ch->op != FLIPCMD__OP__DELETE)) {
        return 0;
    }
    if (codec_check_key(ch->key, &why) != FLIP_OK) {
        return 0;
    }
    if (ch->op == FLIPCMD__OP__SET &&
        codec_check_value(ch->value, &why) != FLIP_OK) {
        return 0;
    }
    if (codec_check_text(ch->actor, CODEC_ACTOR_MAX, &why) != FLIP_OK ||
        codec_check_text(ch->reason, CODEC_REASON_MAX, &why) != FLIP_OK) {
        return 0;
    }
    if (ch->request_id != NULL &&
        dedup_id_parse(ch->request_id, &id, &why) != FLIP_OK) {
        return 0;
    }
    return 1;
}

static int duplicate_key(const Flipcmd__Command *cmd, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(cmd->changes[j]->key, cmd->changes[i]->key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void set_outcome(struct fsm_outcome *out,
                        enum fsm_status st,
                        uint64_t revision)
{
    out->status = st;
    out->revision = revision;
    out->create_revision = 0;
    out->duplicate = 0;
}

/* A change every replica refuses alike: logged and counted, no abort. */
static void reject(struct fsm *f,
                   const Flipcmd__Change *ch,
                   uint64_t index,
                   const char *why,
                   struct fsm_outcome *out)
{
    f->n_rejected++;
    flip_infof("fsm: entry %llu: change to %s refused: %s",
               (unsigned long long)index, ch->key != NULL ? ch->key : "?", why);
    set_outcome(out, FSM_INVALID, 0);
}

/* What a SET adds to store_bytes: its record's growth (0 for a record no
 * larger than the one it replaces) and its change row. */
static uint64_t growth(const struct flags_head *cur, size_t klen, size_t plen)
{
    uint64_t rec = klen + plen;

    return (rec > cur->bytes ? rec - cur->bytes : 0) +
           flags_change_row_bytes(plen, klen);
}

/* Room for a SET that grows the store by `grow` bytes: the oldest
 * change-log rows (history, not state) go first. *full when even without
 * any history it would not fit; then history is dropped only for a set
 * that goes ahead anyway (`applies`: one that does not grow the live
 * state), never for one about to be refused. Deterministic: it depends
 * only on the entry and the store. */
static int make_room(struct store_txn *txn,
                     uint64_t max,
                     uint64_t grow,
                     uint64_t index,
                     int applies,
                     int *full)
{
    int rv;

    *full = 0;
    if (max == 0 || store_txn_bytes(txn) + grow <= max) {
        return FLIP_OK;
    }
    *full = store_txn_floor_bytes(txn) + grow > max;
    if (*full && !applies) {
        return FLIP_OK;
    }
    rv = store_change_trim_bytes(txn, max > grow ? max - grow : 0, index);
    if (rv == FLIP_OK && store_txn_bytes(txn) + grow > max) {
        *full = 1;
    }
    return rv;
}

/* Applies change `pos` of `cmd` at revision `index` inside `txn`. Returns
 * a store error (local: the caller aborts), else FLIP_OK with *out set. */
static int apply_change(struct fsm *f,
                        struct store_txn *txn,
                        const Flipcmd__Command *cmd,
                        size_t pos,
                        uint64_t index,
                        struct fsm_outcome *out)
{
    const Flipcmd__Change *ch = cmd->changes[pos];
    Flip__Flag rec;
    Flip__Value value;
    struct flags_head cur;
    size_t klen = strlen(ch->key);
    uint8_t packed[FLAGS_RECORD_MAX];
    size_t plen = 0;
    int full = 0;
    int rv;

    rv = flags_txn_head(txn, ch->key, klen, &cur);
    if (rv == FLIP_CORRUPT) {
        reject(f, ch, index, "the stored record does not decode", out);
        return FLIP_OK;
    }
    if (rv != FLIP_OK) {
        return rv; /* FLIP_NOMEM included: local, abort */
    }
    if (ch->has_expected_revision && ch->expected_revision != cur.revision) {
        set_outcome(out, FSM_CONFLICT, cur.revision);
        return FLIP_OK;
    }
    if (ch->op == FLIPCMD__OP__DELETE && cur.revision == 0) {
        set_outcome(out, FSM_NOTFOUND, 0);
        return FLIP_OK;
    }
    if (ch->op == FLIPCMD__OP__SET && cur.revision != 0 &&
        ch->has_change_type && !ch->change_type &&
        cur.kind != ch->value->kind_case) {
        set_outcome(out, FSM_TYPE_MISMATCH, cur.revision);
        return FLIP_OK;
    }
    flags_record_of_change(cmd, pos, index,
                           cur.revision != 0 ? cur.create_revision : index,
                           &rec, &value);
    if (ch->op == FLIPCMD__OP__SET) {
        plen = flags_pack(&rec, packed);
        rv = make_room(txn, cmd->max_store_bytes, growth(&cur, klen, plen),
                       index, klen + plen <= cur.bytes, &full);
        if (rv != FLIP_OK) {
            return rv;
        }
        /* Only a set that grows the live state is refused: flipping an
         * existing kill switch must work on a full store. */
        if (full && klen + plen > cur.bytes) {
            set_outcome(out, FSM_STORE_FULL, cur.revision);
            return FLIP_OK;
        }
        rv = flags_txn_put(txn, ch->key, klen, packed, plen);
    } else {
        rv = flags_txn_del(txn, ch->key, klen);
    }
    if (rv == FLIP_OK) {
        rv = flags_txn_log(txn, index, (uint32_t)pos, ch->key, &rec);
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    set_outcome(out, FSM_OK, index);
    out->create_revision = rec.create_revision;
    return FLIP_OK;
}

/* One change: a repeat of a recorded request id gets the recorded
 * outcome; otherwise it is applied and, with an id, its outcome recorded
 * at the table's time `now`. */
static int apply_one(struct fsm *f,
                     struct store_txn *txn,
                     const Flipcmd__Command *cmd,
                     size_t i,
                     uint64_t index,
                     uint64_t now,
                     uint64_t *recorded,
                     struct fsm_outcome *out)
{
    const Flipcmd__Change *ch = cmd->changes[i];
    struct dedup_id id;
    const char *why = NULL;
    int have_id = 0;
    int rv;

    if (!change_valid(ch)) {
        reject(f, ch, index, "invalid change", out);
        return FLIP_OK;
    }
    if (ch->request_id != NULL) {
        have_id = dedup_id_of(ch, &id, &why) == FLIP_OK;
    }
    if (have_id) {
        rv = dedup_lookup(txn, &id, out);
        if (rv == FLIP_OK) {
            f->n_duplicate++;
            return FLIP_OK;
        }
        if (rv == FLIP_CONFLICT) {
            reject(f, ch, index, "request id already used for another change",
                   out);
            return FLIP_OK;
        }
        if (rv != FLIP_NOTFOUND) {
            return rv;
        }
    }
    if (duplicate_key(cmd, i)) {
        reject(f, ch, index, "second change to the key in one entry", out);
    } else {
        rv = apply_change(f, txn, cmd, i, index, out);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    if (have_id) {
        (*recorded)++;
        return dedup_record(txn, &id, now, out);
    }
    return FLIP_OK;
}

static int apply_command(struct fsm *f,
                         struct store_txn *txn,
                         const Flipcmd__Command *cmd,
                         uint64_t index,
                         struct fsm_outcome *outcomes)
{
    size_t n =
        cmd->n_changes < FSM_MAX_CHANGES ? cmd->n_changes : FSM_MAX_CHANGES;
    uint64_t window = cmd->dedup_window_ms != 0 ? cmd->dedup_window_ms
                                                : DEDUP_WINDOW_DEFAULT_MS;
    uint64_t now = 0;
    uint64_t recorded = 0;
    int rv = FLIP_OK;

    if (cmd->has_time_ms) {
        rv = dedup_clock(txn, cmd->time_ms, &now);
    }
    for (size_t i = 0; i < n && rv == FLIP_OK; i++) {
        rv = apply_one(f, txn, cmd, i, index, now, &recorded, &outcomes[i]);
    }
    if (rv == FLIP_OK) {
        rv = store_change_trim(txn, cmd->changelog_keep);
    }
    if (rv == FLIP_OK && (cmd->has_time_ms || recorded > 0)) {
        rv = dedup_expire(txn, now, window, recorded, n + DEDUP_EXPIRE_SLACK);
    }
    return rv;
}

/* After a commit: keeps the store's blocks allocated ahead (prealloc.h). */
static void note_file_end(struct fsm *f)
{
    uint64_t end;
    uint64_t limit;

    if (f->prealloc != NULL &&
        store_data_extent(f->store, &end, &limit) == FLIP_OK) {
        prealloc_note(f->prealloc, end, limit);
    }
}

static int fsm_apply(struct raft_fsm *rf,
                     const struct raft_buffer *buf,
                     void **result)
{
    struct fsm *f = rf->data;
    struct fsm_outcome outcomes[FSM_MAX_CHANGES];
    Flipcmd__Command *cmd = NULL;
    struct store_txn *txn = NULL;
    /* libraft bumps last_applied only after apply returns. */
    uint64_t index = raft_last_applied(f->raft) + 1;
    int rv;

    *result = NULL;
    if (index <= store_applied_index(f->store)) {
        f->n_skipped++;
        return 0;
    }
    rv = command_decode(buf->base, buf->len, &cmd);
    if (rv == FLIP_NOMEM) {
        die("decode", rv); /* local: never taken for an invalid entry */
    }
    if (rv != FLIP_OK) {
        f->n_invalid++;
        flip_infof("fsm: entry %llu does not decode; recorded as a no-op",
                   (unsigned long long)index);
        cmd = NULL;
    }
    rv = store_begin(f->store, &txn);
    if (rv != FLIP_OK) {
        die("begin", rv);
    }
    if (cmd != NULL) {
        rv = apply_command(f, txn, cmd, index, outcomes);
        if (rv != FLIP_OK) {
            die("apply", rv);
        }
        rv = identity_txn_apply(txn, cmd->cluster_id, cmd->joined_member);
        if (rv != FLIP_OK) {
            die("cluster identity", rv);
        }
    }
    rv = store_txn_set_applied(txn, index);
    if (rv != FLIP_OK) {
        die("set applied", rv);
    }
    rv = store_commit(txn);
    if (rv != FLIP_OK) {
        die("commit", rv);
    }
    note_file_end(f);
    f->n_applied++;
    if (f->observer.on_applied != NULL) {
        f->observer.on_applied(f->observer.data, index, cmd, outcomes);
    }
    command_free(cmd);
    return 0;
}

/* ---- snapshots -------------------------------------------------------------
 *
 * Why off the loop. Serialising the store is O(store): about 1 GB/s of
 * copying and hashing, so a 200 MB store held the loop for longer than an
 * election timeout and every leader snapshot cost a leadership change
 * (review M3). Only the read view has to be taken at the snapshot's index;
 * the bytes can be produced later, anywhere, from that view.
 *
 * Who does what (libraft 0.22.1, raft_uv; checked in its source):
 *   1. loop, inside raft: legacyTakeSnapshot calls fsm->snapshot right after
 *      an apply, with last_applied == commit_index. fsm_snapshot opens an
 *      LMDB read txn (a store_reader: O(1), pins that view) and hands raft
 *      a one-element buffer array that is still empty. (FSM version 3's
 *      snapshot_async is called by legacyTakeSnapshot on the loop thread
 *      right after snapshot, legacy.c:630-631, so it moves nothing off the
 *      loop; flipd uses version 2: snapshot + snapshot_finalize.)
 *   2. loop: raft calls io->snapshot_put at once; raft/ioshim.c counts the
 *      local put as in progress (it holds InstallSnapshots meanwhile) and
 *      passes it to offload_put below, which starts a thread for the job
 *      and returns 0.
 *   3. snapshot thread (its own, at the lowest CPU priority: on a busy
 *      machine it must not take the core the loop needs; not libuv's pool,
 *      whose four threads raft_uv needs for its own disk work): it
 *      snapshot_write walks the read view, sizes it, writes and hashes it
 *      once into one buffer, touching nothing but the reader and malloc;
 *      MDB_NOTLS lets the txn move threads, and apply's write txns go on
 *      committing on the loop meanwhile (LMDB MVCC). Then it wakes the
 *      loop (one write to an eventfd the loop polls) and ends.
 *   4. loop: the wake-up read (the thread, detached, is ending), the reader
 * closed, the buffer filled in, and the put passed on to raft_uv, which writes
 * the file on its pool and calls raft back; raft then calls snapshot_finalize,
 * which frees the job and the buffer: flipd's libraft heap (raft/bigfree.h)
 * frees a buffer that big on a thread of its own (a munmap of a few hundred
 * MB took 50-150 ms on the loop), a slice at a time.
 * On the loop that leaves opening a read txn and three short callbacks.
 * raft_close while a job runs: offload_close holds raft_uv's close until
 * the job is back, answers the put RAFT_CANCELED (as raft_uv does for a put
 * cut by a close), then closes: the store outlives every reader.
 *
 * The header carries the view's own applied index (storage/snapshot.h,
 * review M4), which may differ from raft's snapshot index: below it when
 * the last entries were barriers or configuration changes (they never
 * reach apply), above it during a restart replay. Restore sets the store
 * to that index and apply skips what it already holds, so both are safe. */

struct fsm_snap_job
{
    struct fsm *f;
    atomic_int done; /* the thread's results are written */
    /* The thread's "done": an eventfd it writes once, polled by the loop.
     * Not a uv_async_t: uv_async_send leaves a "send in progress" mark
     * that the loop spins on (sched_yield) until the sender clears it, and
     * the sender here runs at nice 19, so a sender preempted right after
     * its write kept the loop spinning for 16 ms (perf, bench/snapshot.sh
     * PERF=). The loop reads the results and never waits for the thread
     * (it is detached). */
    uv_poll_t wake;
    int wake_fd;
    struct store_reader *reader; /* the view at raft's snapshot index */
    struct raft_buffer buf;      /* what raft's bufs[] points at */
    int queued;                  /* the thread or its wake-up is pending */
    atomic_int cancel;           /* raft_close: stop writing */
    /* the put this job stands in front of */
    struct raft_io *io;
    unsigned trailing;
    struct raft_io_snapshot_put *req;
    const struct raft_snapshot *snapshot;
    raft_io_snapshot_put_cb cb;
    /* set by the thread */
    int rv;
    uint64_t index;
    void *data;
    size_t len;
    uint64_t took_us;
};

static void job_free(struct fsm_snap_job *j)
{
    store_reader_close(j->reader);
    raft_free(j->buf.base); /* hundreds of MB: see raft/bigfree.h */
    raft_free(j->data);
    raft_free(j);
}

static int fsm_snapshot(struct raft_fsm *rf,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    struct fsm_snap_job *j;
    uint64_t index = 0;
    int rv;

    /* libraft 0.22.1 applies committed entries on a follower before they
     * are on its own disk, and a local snapshot taken past last_stored
     * corrupts its log trail (docs/known-issues.md): wait until they are. */
    if (f->raft->last_stored < raft_last_applied(f->raft) || f->job != NULL ||
        (f->gate != NULL && !f->gate(f->gate_data))) {
        f->n_declined++;
        return RAFT_BUSY;
    }
    j = raft_calloc(1, sizeof *j);
    if (j == NULL) {
        return RAFT_NOMEM;
    }
    atomic_init(&j->cancel, 0);
    j->f = f;
    rv = store_reader_open(f->store, &j->reader);
    if (rv != FLIP_OK) {
        raft_free(j);
        flip_errorf("fsm: snapshot: cannot open a read view: %s",
                    flip_strerror(rv));
        return rv == FLIP_NOMEM ? RAFT_NOMEM : RAFT_BUSY;
    }
    if (f->loop == NULL) {
        /* no loop to hand the work to (raft_fixture): write it now */
        rv = snapshot_write(j->reader, raft_malloc, NULL, &j->buf.base,
                            &j->buf.len, &index);
        store_reader_close(j->reader);
        j->reader = NULL;
        if (rv != FLIP_OK) {
            job_free(j);
            flip_errorf("fsm: snapshot failed: %s", flip_strerror(rv));
            return rv == FLIP_NOMEM ? RAFT_NOMEM : RAFT_IOERR;
        }
        f->n_snapshots++;
        f->snapshot_bytes = j->buf.len;
        flip_infof("fsm: snapshot of index %llu (raft %llu), %zu bytes",
                   (unsigned long long)index,
                   (unsigned long long)raft_last_applied(f->raft), j->buf.len);
    }
    f->job = j;
    *bufs = &j->buf;
    *n_bufs = 1;
    return 0;
}

/* libraft is done with the buffers (written, failed or cancelled). */
static int fsm_snapshot_finalize(struct raft_fsm *rf,
                                 struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    struct fsm *f = rf->data;

    if (f->job != NULL && *bufs == &f->job->buf) {
        job_free(f->job);
        f->job = NULL;
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Wakes the loop: the job is done (or never started). */
static void job_signal(struct fsm_snap_job *j)
{
    uint64_t one = 1;
    ssize_t n = write(j->wake_fd, &one, sizeof one);
    (void)n; /* cannot fail: a fresh eventfd, one write */
}

/* The snapshot thread: no raft, no loop (but the wake-up), no log. */
static void job_thread(void *arg)
{
    struct fsm_snap_job *j = arg;
    uint64_t t0 = uv_hrtime();

    /* Linux: the nice value of this thread only; failure costs nothing */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    j->rv = snapshot_write(j->reader, raft_malloc, &j->cancel, &j->data,
                           &j->len, &j->index);
    j->took_us = (uv_hrtime() - t0) / 1000;
    atomic_store_explicit(&j->done, 1, memory_order_release);
    job_signal(j); /* j is not touched after this: the loop may free it */
}

static void job_done(uv_handle_t *h);

static void job_wake(uv_poll_t *p, int status, int events)
{
    struct fsm_snap_job *j = p->data;

    (void)status; /* an error on an eventfd: the thread still ends */
    (void)events;
    /* pairs with the thread's release: its results are visible. The
     * thread is detached, not joined: what is left of it after the write
     * (returning, its stack released) runs at nice 19 and a join waited
     * for it up to 140 ms on a busy machine (review of the eventfd change) */
    (void)atomic_load_explicit(&j->done, memory_order_acquire);
    uv_close((uv_handle_t *)&j->wake, job_done);
}

static void job_done(uv_handle_t *h)
{
    struct fsm_snap_job *j = h->data;
    struct fsm *f = j->f;
    struct raft_io_snapshot_put *req = j->req;
    raft_io_snapshot_put_cb cb = j->cb;
    int rv;

    j->queued = 0;
    close(j->wake_fd); /* the poll handle is closed: the fd may go */
    j->wake_fd = -1;
    store_reader_close(j->reader); /* unpin the view as soon as possible */
    j->reader = NULL;
    if (f->close_cb != NULL) {
        raft_io_close_cb close_cb = f->close_cb;
        f->close_cb = NULL;
        flip_infof("fsm: snapshot of raft index %llu abandoned: stopping",
                   (unsigned long long)j->snapshot->index);
        cb(req, RAFT_CANCELED); /* raft finalizes: j is gone */
        f->next_close(f->close_io, close_cb);
        return;
    }
    if (j->rv != FLIP_OK) {
        flip_errorf("fsm: snapshot failed: %s", flip_strerror(j->rv));
        cb(req, RAFT_IOERR); /* abandoned; libraft tries again later */
        return;
    }
    j->buf.base = j->data;
    j->buf.len = j->len;
    j->data = NULL;
    f->n_snapshots++;
    f->snapshot_bytes = j->len;
    f->snapshot_us = j->took_us;
    flip_infof(
        "fsm: snapshot of index %llu (raft %llu), %zu bytes, "
        "written off the loop in %llu ms",
        (unsigned long long)j->index, (unsigned long long)j->snapshot->index,
        j->len, (unsigned long long)(j->took_us / 1000));
    rv = f->next_put(j->io, j->trailing, req, j->snapshot, cb);
    if (rv != 0) {
        flip_errorf("fsm: storing the snapshot failed: %s", raft_strerror(rv));
        cb(req, rv);
    }
}

static struct fsm *fsm_of_io(struct raft_io *io)
{
    struct raft *r = io->data; /* raft_init sets it */
    return r->fsm->data;
}

static int offload_put(struct raft_io *io,
                       unsigned trailing,
                       struct raft_io_snapshot_put *req,
                       const struct raft_snapshot *snapshot,
                       raft_io_snapshot_put_cb cb)
{
    struct fsm *f = fsm_of_io(io);
    struct fsm_snap_job *j = f->job;
    uv_thread_t thread; /* detached at once: nothing waits for it */

    /* installs (trailing 0) carry the leader's bytes: straight through */
    if (trailing == 0 || j == NULL || snapshot->bufs != &j->buf ||
        j->reader == NULL) {
        return f->next_put(io, trailing, req, snapshot, cb);
    }
    j->io = io;
    j->trailing = trailing;
    j->req = req;
    j->snapshot = snapshot;
    j->cb = cb;
    j->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (j->wake_fd < 0) {
        flip_errorf("fsm: snapshot: no eventfd: %s", strerror(errno));
        return RAFT_IOERR; /* raft finalizes; it tries again later */
    }
    if (uv_poll_init(f->loop, &j->wake, j->wake_fd) != 0) {
        flip_errorf("fsm: snapshot: cannot watch its eventfd");
        close(j->wake_fd);
        j->wake_fd = -1;
        return RAFT_IOERR;
    }
    j->wake.data = j;
    uv_poll_start(&j->wake, UV_READABLE, job_wake);
    j->queued = 1;
    if (uv_thread_create(&thread, job_thread, j) != 0) {
        j->rv = FLIP_NOMEM; /* answered from the loop like any failure */
        job_signal(j);
        return 0;
    }
    (void)pthread_detach(thread); /* uv_thread_t is a pthread_t */
    return 0;
}

static void offload_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct fsm *f = fsm_of_io(io);

    prealloc_close(f->prealloc);
    f->prealloc = NULL;
    if (f->job != NULL && f->job->queued) {
        /* a stop need not wait for a snapshot nobody will keep */
        atomic_store(&f->job->cancel, 1);
        f->close_cb = cb; /* job_done closes */
        f->close_io = io;
        return;
    }
    f->next_close(io, cb);
}

void fsm_offload_snapshots(struct fsm *f, uv_loop_t *loop, struct raft_io *io)
{
    int fd = store_data_fd(f->store);

    if (fd < 0 ||
        prealloc_open(&f->prealloc, loop, fd, PREALLOC_KEEP_FREE) != FLIP_OK) {
        flip_warnf("fsm: the store's file is not allocated ahead (%s)",
                   fd < 0 ? strerror(errno) : "no memory");
    }
    f->loop = loop;
    f->next_put = io->snapshot_put;
    f->next_close = io->close;
    io->snapshot_put = offload_put;
    io->close = offload_close;
}

/* A snapshot that fails validation (corrupt, or in a format of a newer
 * flipd). At start-up raft_start restores the latest snapshot before it
 * knows any commit index; RAFT_CORRUPT then fails raft_start and flipd
 * exits with this line. During an InstallSnapshot libraft 0.22.1 drops the
 * error (legacyPersistSnapshotCb ignores LegacyForwardToRaftIo's result):
 * its log already starts after the snapshot, the store is not at that
 * index, so the node would never apply anything again while looking
 * healthy (review L5). It stops instead, loudly; known-issues #17 says
 * what to do with it. */
static void restore_failed(struct fsm *f, uint64_t header_index)
{
    uint64_t commit = raft_commit_index(f->raft);

    if (commit == 0) {
        flip_errorf(
            "fsm: the snapshot on disk (index %llu) fails validation "
            "(corrupt, or written by a newer flipd; this one reads "
            "format %d); this node's data directory must be rebuilt "
            "from the cluster (docs/known-issues.md #17)",
            (unsigned long long)header_index, SNAPSHOT_VERSION);
        return;
    }
    flip_errorf(
        "fsm: FATAL: the snapshot installed from the leader at index "
        "%llu fails validation (corrupt, or written by a newer "
        "flipd; this one reads format %d); libraft would leave this "
        "node unable to apply anything after it, so it stops now "
        "(docs/known-issues.md #17)",
        (unsigned long long)commit, SNAPSHOT_VERSION);
    abort();
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    uint64_t index = 0;
    int rv;

    rv = store_snapshot_index(buf->base, buf->len, &index);
    /* Normal restart: LMDB already holds this snapshot's state or newer. */
    if (rv == FLIP_OK && index <= store_applied_index(f->store)) {
        raft_free(buf->base);
        return 0;
    }
    if (rv == FLIP_OK) {
        rv = store_restore(f->store, buf->base, buf->len);
    }
    if (rv == FLIP_CORRUPT) {
        restore_failed(f, index);
        return RAFT_CORRUPT;
    }
    if (rv != FLIP_OK) {
        die("restore", rv);
    }
    raft_free(buf->base);
    note_file_end(f);
    index = store_applied_index(f->store); /* the content's (store.h) */
    f->n_restored++;
    flip_infof("fsm: restored snapshot at index %llu",
               (unsigned long long)index);
    if (f->observer.on_restored != NULL) {
        f->observer.on_restored(f->observer.data, index);
    }
    return 0;
}

void fsm_init(struct fsm *f, struct store *store)
{
    memset(f, 0, sizeof *f);
    f->store = store;
    f->raft_fsm.version = 2; /* snapshot_finalize: the buffers stay ours */
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm_apply;
    f->raft_fsm.snapshot = fsm_snapshot;
    f->raft_fsm.snapshot_finalize = fsm_snapshot_finalize;
    f->raft_fsm.restore = fsm_restore;
}
