/* See ioshim.h for the libraft bugs this layer works around. */
#include "ioshim.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "lib/heap.h"
#include "lib/log.h"

void ioshim_init(struct ioshim *sh, struct raft *raft, struct raft_io *io)
{
    memset(sh, 0, sizeof *sh);
    sh->raft = raft;
    sh->io = io;
    sh->next_send = io->send;
    sh->next_start = io->start;
    sh->next_load = io->load;
    sh->next_truncate = io->truncate;
    sh->next_append = io->append;
    sh->next_snapshot_put = io->snapshot_put;
}

/* ---- #13: a real truncation needs room ---------------------------------- */

void ioshim_set_room(struct ioshim *sh, const char *dir, uint64_t bytes)
{
    sh->room_dir = dir;
    sh->room_bytes = bytes;
}

int ioshim_load(struct ioshim *sh,
                raft_term *term,
                raft_id *voted_for,
                struct raft_snapshot **snapshot,
                raft_index *start_index,
                struct raft_entry *entries[],
                size_t *n_entries)
{
    int rv = sh->next_load(sh->io, term, voted_for, snapshot, start_index,
                           entries, n_entries);
    if (rv == 0) {
        /* raft_uv's own rule (uvLoad) */
        sh->append_next = *start_index + *n_entries;
        sh->append_next_known = 1;
    }
    return rv;
}

int ioshim_truncation_is_real(const struct ioshim *sh, raft_index index)
{
    /* raft_uv does nothing for index >= its next append index (UvTruncate);
     * libraft asks for exactly that before every append */
    return !sh->append_next_known || index < sh->append_next;
}

int ioshim_truncate(struct ioshim *sh, raft_index index)
{
    struct statvfs fs;
    int rv;

    if (sh->room_dir != NULL && ioshim_truncation_is_real(sh, index)) {
        sh->n_room_checks++;
        if (statvfs(sh->room_dir, &fs) == 0 &&
            (uint64_t)fs.f_bavail * fs.f_frsize < sh->room_bytes) {
            /* raft_uv would fail the rewrite in the background, ignore
             * that and append at the wrong indexes (known-issues.md #13).
             * Nothing was acknowledged on the strength of what follows, so
             * stopping here loses nothing; a restart with room resumes. */
            flip_errorf(
                "raft: no space left for a log truncation: %llu bytes "
                "free in %s, up to %llu needed; stopping before libraft "
                "can misplace entries (known-issues #13)",
                (unsigned long long)fs.f_bavail * fs.f_frsize, sh->room_dir,
                (unsigned long long)sh->room_bytes);
            abort();
        }
    }
    rv = sh->next_truncate(sh->io, index);
    if (rv == 0 && sh->append_next_known && index < sh->append_next) {
        sh->append_next = index; /* raft_uv's barrier sets the same */
    }
    return rv;
}

int ioshim_append(struct ioshim *sh,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb)
{
    int rv = sh->next_append(sh->io, req, entries, n, cb);

    /* raft_uv moves its index back if the write later fails; the shim does
     * not, so it can only overestimate the index: at worst an append after
     * a failed write gets a room check it did not need. */
    if (rv == 0) {
        sh->append_next += n;
    }
    return rv;
}

/* ---- #6: the term of a snapshot being sent ------------------------------- */

/* #4: keeps a success answer to an AppendEntries that carried entries, to
 * repeat on the next ticks; any other answer cancels the repeat. */
static void note_answer(struct ioshim *sh, const struct raft_message *m)
{
    size_t alen = m->server_address != NULL ? strlen(m->server_address) : 0;

    sh->repeats_left = 0;
    if (m->append_entries_result.rejected != 0 || !sh->got_entries ||
        alen == 0 || alen >= sizeof sh->repeat_addr) {
        return;
    }
    sh->repeat = *m;
    memcpy(sh->repeat_addr, m->server_address, alen + 1);
    sh->repeat.server_address = sh->repeat_addr;
    sh->repeats_left = IOSHIM_REPEATS;
}

int ioshim_send(struct ioshim *sh,
                struct raft_io_send *req,
                const struct raft_message *m,
                raft_io_send_cb cb)
{
    if (m->type == RAFT_APPEND_ENTRIES_RESULT) {
        note_answer(sh, m);
    }
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        const struct raft_install_snapshot *is = &m->install_snapshot;
        unsigned n =
            sh->n_stored < IOSHIM_STORED ? sh->n_stored : IOSHIM_STORED;
        for (unsigned k = 0; k < n; k++) {
            if (sh->stored[k].index == is->last_index &&
                sh->stored[k].term != is->last_term) {
                /* the transport encodes the message during the call, so a
                 * corrected copy on the stack is enough */
                struct raft_message fixed = *m;
                fixed.install_snapshot.last_term = sh->stored[k].term;
                sh->n_terms_fixed++;
                return sh->next_send(sh->io, req, &fixed, cb);
            }
        }
    }
    return sh->next_send(sh->io, req, m, cb);
}

/* ---- #1 and #9: receiving InstallSnapshot -------------------------------- */

static void free_install(struct raft_install_snapshot *is)
{
    raft_configuration_close(&is->conf);
    raft_free(is->data.base);
}

int ioshim_start(struct ioshim *sh,
                 unsigned msecs,
                 raft_io_tick_cb raft_tick,
                 raft_io_recv_cb raft_recv,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv)
{
    sh->raft_tick = raft_tick;
    sh->raft_recv = raft_recv;
    return sh->next_start(sh->io, msecs, tick, recv);
}

static void release_held(struct ioshim *sh);

static void repeat_sent(struct raft_io_send *req, int status)
{
    struct ioshim *sh = req->data;
    (void)status; /* a lost repeat costs nothing: it was only a repeat */
    sh->repeat_inflight = 0;
}

void ioshim_tick(struct ioshim *sh)
{
    struct raft *r = sh->raft;

    sh->raft_tick(sh->io);
    release_held(sh); /* an install may end without a put of ours */
    if (sh->repeats_left == 0 || sh->repeat_inflight || sh->closed ||
        r->legacy.closing || raft_state(r) != RAFT_FOLLOWER ||
        r->current_term != sh->repeat.append_entries_result.term) {
        return;
    }
    sh->repeats_left--;
    sh->repeat_req.data = sh;
    if (sh->next_send(sh->io, &sh->repeat_req, &sh->repeat, repeat_sent) == 0) {
        sh->repeat_inflight = 1;
        sh->n_repeats++;
    }
}

/* Keeps an InstallSnapshot (which the shim now owns) for later; a newer one
 * replaces it. The sender's address is copied: the transport's copy may go
 * with its connection. */
static void hold(struct ioshim *sh,
                 const struct raft_message *m,
                 const struct raft_install_snapshot *is)
{
    size_t alen = m->server_address != NULL ? strlen(m->server_address) : 0;

    if (sh->has_deferred) {
        free_install(&sh->deferred.install_snapshot);
        sh->n_dropped++;
    }
    sh->deferred = *m;
    sh->deferred.install_snapshot = *is;
    if (alen >= sizeof sh->deferred_addr) {
        alen = sizeof sh->deferred_addr - 1; /* never: addresses are short */
    }
    memcpy(sh->deferred_addr,
           m->server_address != NULL ? m->server_address : "", alen);
    sh->deferred_addr[alen] = '\0';
    sh->deferred.server_address = sh->deferred_addr;
    sh->has_deferred = 1;
    sh->n_deferred++;
}

/* Delivers a held InstallSnapshot once no snapshot write or install is in
 * progress. */
static void release_held(struct ioshim *sh)
{
    struct raft_message m;

    if (!sh->has_deferred || sh->local_puts > 0 || sh->install_puts > 0 ||
        sh->raft->snapshot.installing) {
        return;
    }
    m = sh->deferred;
    sh->has_deferred = 0;
    if (sh->closed || sh->raft->legacy.closing) {
        free_install(&m.install_snapshot);
        return;
    }
    ioshim_recv(sh, &m);
}

void ioshim_recv(struct ioshim *sh, struct raft_message *m)
{
    struct raft *r = sh->raft;
    struct raft_install_snapshot held;
    /* What libraft will do with it: an install from a current leader is
     * either started, or ignored (and leaked) when one is in progress. */
    int live = m->type == RAFT_INSTALL_SNAPSHOT && !r->legacy.closing &&
               m->install_snapshot.term >= r->current_term;
    int ignored = live && r->snapshot.installing;

    if (m->type == RAFT_APPEND_ENTRIES) {
        sh->got_entries = m->append_entries.n_entries > 0;
        if (!sh->got_entries) {
            sh->repeats_left = 0; /* heartbeats flow: answers do too */
        }
    }

    if (live && !ignored && sh->local_puts > 0) {
        /* Started now, it would race the local snapshot write (#1): hold
         * it until that write is done. That covers installs beyond our log
         * and those inside it whose term differs from our entry's (a tail
         * from a deposed leader), which libraft installs too; the rest it
         * would ignore ("have all entries", "have more recent snapshot"),
         * so holding them loses nothing. */
        hold(sh, m, &m->install_snapshot);
        return;
    }
    if (ignored) {
        held = m->install_snapshot;
    }
    sh->raft_recv(sh->io, m); /* also when ignored: it is leader contact */
    if (ignored) {
        /* #9: libraft neither used nor freed it. #12: and the leader may
         * wait for exactly this snapshot, ignoring what the install in
         * progress reports; so it is delivered when that one is done. */
        hold(sh, m, &held);
        sh->n_freed++;
    }
}

/* ---- local snapshot writes ----------------------------------------------- */

struct put_ctx
{
    struct ioshim *sh;
    raft_io_snapshot_put_cb cb;
    void *data; /* the request's own data, restored before cb */
    unsigned trailing;
    raft_index index;
    raft_term term;
};

static void put_done(struct raft_io_snapshot_put *req, int status)
{
    struct put_ctx c = *(struct put_ctx *)req->data;
    struct ioshim *sh = c.sh;

    flip_free(req->data);
    req->data = c.data;
    if (c.trailing != 0) {
        sh->local_puts--;
    } else {
        sh->install_puts--;
    }
    if (status == 0 && c.trailing == 0) {
        /* an installed snapshot: raft_uv appends after it next */
        sh->append_next = c.index + 1;
        sh->append_next_known = 1;
    }
    if (status == 0) {
        unsigned k = sh->n_stored++ % IOSHIM_STORED;
        sh->stored[k].index = c.index;
        sh->stored[k].term = c.term;
    }
    c.cb(req, status);
    release_held(sh);
}

int ioshim_snapshot_put(struct ioshim *sh,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb)
{
    struct put_ctx *c = flip_malloc(sizeof *c);
    int rv;

    if (c == NULL) {
        return RAFT_NOMEM;
    }
    c->sh = sh;
    c->cb = cb;
    c->data = req->data;
    c->trailing = trailing;
    c->index = snapshot->index;
    c->term = snapshot->term;
    req->data = c;
    rv = sh->next_snapshot_put(sh->io, trailing, req, snapshot, put_done);
    if (rv != 0) {
        req->data = c->data;
        flip_free(c);
        return rv;
    }
    if (trailing != 0) {
        sh->local_puts++;
    } else {
        sh->install_puts++;
    }
    return 0;
}

void ioshim_close(struct ioshim *sh)
{
    if (sh->has_deferred) {
        free_install(&sh->deferred.install_snapshot);
        sh->has_deferred = 0;
    }
    sh->closed = 1;
}
