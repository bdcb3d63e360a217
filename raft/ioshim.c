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
    sh->next_snapshot_get = io->snapshot_get;
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
    if (rv == 0 && *snapshot != NULL) {
        sh->last_snapshot = (*snapshot)->index;
    }
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

/* #4: keeps the last success answer, heartbeats' too: one to an
 * AppendEntries that carried entries is repeated on the next ticks; any
 * other answer cancels the repeat, and a rejection forgets the answer. */
static void note_answer(struct ioshim *sh, const struct raft_message *m)
{
    size_t alen = m->server_address != NULL ? strlen(m->server_address) : 0;

    sh->repeats_left = 0;
    if (m->append_entries_result.rejected != 0 || alen == 0 ||
        alen >= sizeof sh->repeat_addr) {
        sh->have_answer = 0;
        return;
    }
    sh->repeat = *m;
    memcpy(sh->repeat_addr, m->server_address, alen + 1);
    sh->repeat.server_address = sh->repeat_addr;
    sh->have_answer = 1;
    if (sh->got_entries) {
        sh->repeats_left = IOSHIM_REPEATS;
    }
}

/* ---- #19: one snapshot in flight per follower ---------------------------- */

static struct ioshim_sending *sending_find(struct ioshim *sh, raft_id id)
{
    for (unsigned k = 0; k < IOSHIM_PEERS; k++) {
        if (sh->sending[k].id == id) {
            return &sh->sending[k];
        }
    }
    return NULL;
}

/* The slot of the follower's last real result; IOSHIM_PEERS if none. */
static unsigned heard_slot(const struct ioshim *sh, raft_id id)
{
    for (unsigned k = 0; k < IOSHIM_PEERS; k++) {
        if (sh->heard[k].id == id) {
            return k;
        }
    }
    return IOSHIM_PEERS;
}

static void note_heard(struct ioshim *sh, const struct raft_message *m)
{
    unsigned k = heard_slot(sh, m->server_id);

    if (k == IOSHIM_PEERS) {
        k = heard_slot(sh, 0);
    }
    if (k == IOSHIM_PEERS) {
        return; /* more followers than slots: counted as silent */
    }
    sh->heard[k].id = m->server_id;
    sh->heard[k].at = sh->io->time(sh->io);
    sh->heard[k].features = m->append_entries_result.features;
    sh->heard[k].capacity = m->append_entries_result.capacity;
}

/* Opens (or extends) the window of follower `id`: a snapshot up to `index`
 * is on its way there, for `ms` more. */
static struct ioshim_sending *sending_open(struct ioshim *sh,
                                           raft_id id,
                                           raft_index index,
                                           raft_time ms)
{
    struct raft *r = sh->raft;
    struct ioshim_sending *w = sending_find(sh, id);
    raft_time until = sh->io->time(sh->io) + ms;

    if (w == NULL) {
        w = sending_find(sh, 0);
    }
    if (w == NULL) {
        return NULL; /* more followers than slots: libraft's own way */
    }
    if (w->id != id || w->term != r->current_term) {
        unsigned h = heard_slot(sh, id);

        w->id = id;
        w->term = r->current_term;
        w->index = 0;
        w->until = 0;
        /* a send that libraft starts at a tick (after aborting a pipeline
         * or a snapshot) comes with no rejection: the follower's last
         * result says what to keep it in contact with */
        w->opened = sh->io->time(sh->io);
        w->got_result = h < IOSHIM_PEERS;
        w->heard = w->got_result ? sh->heard[h].at : sh->io->time(sh->io);
        w->features = w->got_result ? sh->heard[h].features : 0;
        w->capacity = w->got_result ? sh->heard[h].capacity : 0;
    }
    if (index > w->index) {
        w->index = index;
    }
    if (until > w->until) {
        w->until = until;
    }
    w->gen = ++sh->sending_gen;
    return w;
}

static raft_time sending_base_ms(const struct ioshim *sh)
{
    return (raft_time)IOSHIM_SEND_ELECTIONS * sh->raft->election_timeout;
}

/* Decides about an AppendEntries result from a follower with a snapshot in
 * flight: a rejection at or below the snapshot's index only says that the
 * follower has not read the snapshot yet, and libraft would answer it by
 * starting the snapshot again. It becomes a success for index 0, which
 * libraft takes as contact (last_recv, features, capacity) and nothing
 * else: no index moves. Returns whether it did. */
static int absorb_rejection(struct ioshim *sh, struct raft_message *m)
{
    struct raft *r = sh->raft;
    struct raft_append_entries_result *res = &m->append_entries_result;
    struct ioshim_sending *w = sending_find(sh, m->server_id);

    if (w == NULL || m->server_id == 0) {
        return 0;
    }
    w->heard = sh->io->time(sh->io);
    w->features = res->features;
    w->capacity = res->capacity;
    w->got_result = 1;
    if (raft_state(r) != RAFT_LEADER || r->current_term != w->term ||
        sh->io->time(sh->io) >= w->until) {
        w->id = 0; /* over: libraft's own way again */
        return 0;
    }
    if (res->term != w->term) {
        return 0; /* stale or newer: libraft deals with it */
    }
    if (res->rejected == 0) {
        /* at or past the index it has it. Below, it answers a heartbeat
         * sent before it fell behind (queued while it was away), or for
         * index 0 it is installing it: restoring on its loop, it can go
         * quiet again for longer than a tick, and libraft would abort
         * the install and load the snapshot again */
        if (res->last_log_index >= w->index) {
            w->id = 0;
        }
        return 0;
    }
    if (res->rejected > w->index) {
        return 0;
    }
    res->rejected = 0;
    res->last_log_index = 0;
    sh->n_absorbed++;
    return 1;
}

/* Whether a majority of voters (the leader counted) sent real results,
 * the shim's contact-only ones left out, within the last election timeout
 * (libraft's progressIsOnline). Not its per-tick contact check: on a
 * loaded machine the healthy followers miss it for a tick or two. A
 * contact-only result given on this ground keeps the leader from stepping
 * down for at most an election timeout after the majority last really
 * answered, the same bound as for a follower heard within one. */
static int real_contact_quorum(const struct ioshim *sh)
{
    const struct raft *r = sh->raft;
    raft_time now = sh->io->time(sh->io);
    unsigned voters = 0;
    unsigned contacts = 0;

    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        unsigned k = s->id != 0 ? heard_slot(sh, s->id) : IOSHIM_PEERS;
        int recent =
            k < IOSHIM_PEERS && now - sh->heard[k].at < r->election_timeout;

        voters += s->role == RAFT_VOTER;
        contacts += (s->role == RAFT_VOTER && recent) || s->id == r->id;
    }
    return contacts > voters / 2;
}

/* Gives libraft a contact-only result from follower `id`, as if it had
 * answered a heartbeat without a word about its log. */
static void keep_in_contact(struct ioshim *sh,
                            raft_id id,
                            unsigned short features,
                            unsigned short capacity)
{
    struct raft *r = sh->raft;
    struct raft_message m;
    const char *addr = NULL;
    unsigned k = heard_slot(sh, id);

    for (unsigned i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].id == id) {
            addr = r->configuration.servers[i].address;
        }
    }
    if (addr == NULL) {
        return;
    }
    if (k < IOSHIM_PEERS) {
        sh->heard[k].kept = sh->io->time(sh->io);
    }
    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES_RESULT;
    m.server_id = id;
    m.server_address = addr;
    m.append_entries_result.term = r->current_term;
    m.append_entries_result.version = 1;
    m.append_entries_result.features = features;
    m.append_entries_result.capacity = capacity;
    sh->n_kept++;
    sh->raft_recv(sh->io, &m);
}

/* Before a leader tick: a follower with a snapshot in flight is quiet
 * because it is reading or restoring the snapshot (on its own loop: under
 * CPU starvation for several election timeouts); libraft would call it
 * unreachable, abort the snapshot and, since the follower still counts as
 * online for an election timeout after its last result (the shim's
 * included), load and send the snapshot again at every tick of that
 * timeout. So it gets a contact-only result before the tick while the
 * window is open and either it was heard within an election timeout
 * (libraft's own "online"), or the other voters' real results make the
 * leader's contact quorum without it: then the contact decides nothing
 * about the leader stepping down, it only keeps the snapshot going. The
 * same holds while a load libraft started at a tick (with no rejection to
 * say for whom) is in flight, for the followers it may be for. */
static void keep_quiet_followers(struct ioshim *sh)
{
    struct raft *r = sh->raft;
    raft_time now = sh->io->time(sh->io);
    int quorum = -1; /* not computed yet */

    if (raft_state(r) != RAFT_LEADER || sh->closed || r->legacy.closing) {
        return;
    }
    for (unsigned k = 0; k < IOSHIM_PEERS; k++) {
        struct ioshim_sending *w = &sh->sending[k];
        int silent = now - w->heard >= r->election_timeout;

        if (w->id == 0 || !w->got_result || w->term != r->current_term ||
            now >= w->until) {
            continue;
        }
        if (silent && quorum < 0) {
            quorum = real_contact_quorum(sh);
        }
        if (silent && !quorum) {
            continue;
        }
        if (sh->last_tick != 0 && w->heard < sh->last_tick &&
            now > sh->last_tick) {
            /* the deadline is for a follower that answers and still lacks
             * the snapshot: ticks it was quiet for (reading or restoring
             * it, starved) do not use it up, up to libraft's own limit for
             * a snapshot in flight */
            raft_time cap = w->opened + r->install_snapshot_timeout;
            raft_time until = w->until + (now - sh->last_tick);

            if (cap < w->until) {
                cap = w->until;
            }
            w->until = until < cap ? until : cap;
        }
        keep_in_contact(sh, w->id, w->features, w->capacity);
    }
    for (unsigned k = 0; k < IOSHIM_PEERS; k++) {
        struct ioshim_sending *w;

        if (!sh->heard[k].loading || sh->heard[k].id == 0 ||
            sh->heard[k].kept == now) {
            continue;
        }
        w = sending_find(sh, sh->heard[k].id);
        if (w != NULL && w->term == r->current_term && now < w->until) {
            continue; /* its window decided above */
        }
        if (now - sh->heard[k].at >= r->election_timeout) {
            if (quorum < 0) {
                quorum = real_contact_quorum(sh);
            }
            if (!quorum) {
                continue;
            }
        }
        keep_in_contact(sh, sh->heard[k].id, sh->heard[k].features,
                        sh->heard[k].capacity);
    }
}

struct get_ctx
{
    struct ioshim *sh;
    raft_io_snapshot_get_cb cb;
    void *data; /* the request's own data, restored before cb */
};

static void load_done(struct raft_io_snapshot_get *req,
                      struct raft_snapshot *snapshot,
                      int status)
{
    struct get_ctx c = *(struct get_ctx *)req->data;

    flip_free(req->data);
    req->data = c.data;
    c.cb(req, snapshot, status); /* sends it: the send opens its window */
    if (c.sh->tick_loads > 0 && --c.sh->tick_loads == 0) {
        for (unsigned k = 0; k < IOSHIM_PEERS; k++) {
            c.sh->heard[k].loading = 0;
        }
    }
}

/* A load libraft starts at a tick is for a follower it has just aborted
 * (no result since its last contact check that passed, and not kept by
 * the shim): until it is sent, those are kept in contact too, or every
 * tick of the load would abort the new snapshot and load another. */
static int mark_tick_load(struct ioshim *sh)
{
    struct raft *r = sh->raft;
    raft_time now = sh->io->time(sh->io);
    int any = 0;

    for (unsigned i = 0; i < r->configuration.n; i++) {
        raft_id id = r->configuration.servers[i].id;
        unsigned k = id != r->id ? heard_slot(sh, id) : IOSHIM_PEERS;

        if (k < IOSHIM_PEERS && sh->heard[k].at < sh->tick_timer_start &&
            sh->heard[k].kept != now) {
            sh->heard[k].loading = 1;
            any = 1;
        }
    }
    return any;
}

int ioshim_snapshot_get(struct ioshim *sh,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb)
{
    sh->n_loads++;
    if (sh->rejecting != NULL) {
        /* libraft answers this follower's rejection with a snapshot: the
         * newest one, which is what it loads */
        const struct raft_append_entries_result *res =
            &sh->rejecting->append_entries_result;
        raft_index index = res->rejected > sh->last_snapshot
                               ? res->rejected
                               : sh->last_snapshot;
        struct ioshim_sending *w = sending_open(sh, sh->rejecting->server_id,
                                                index, sending_base_ms(sh));
        if (w != NULL) {
            w->features = res->features;
            w->capacity = res->capacity;
            w->got_result = 1;
        }
    }
    if (sh->rejecting == NULL && sh->in_tick &&
        raft_state(sh->raft) == RAFT_LEADER && mark_tick_load(sh)) {
        struct get_ctx *c = flip_malloc(sizeof *c);
        int rv;

        if (c != NULL) {
            c->sh = sh;
            c->cb = cb;
            c->data = req->data;
            req->data = c;
            sh->tick_loads++;
            rv = sh->next_snapshot_get(sh->io, req, load_done);
            if (rv != 0) {
                req->data = c->data;
                flip_free(c);
                sh->tick_loads--;
            }
            return rv;
        }
    }
    return sh->next_snapshot_get(sh->io, req, cb);
}

struct send_ctx
{
    struct ioshim *sh;
    raft_io_send_cb cb;
    void *data; /* the request's own data, restored before cb */
    raft_id id;
    unsigned gen;
};

static void install_sent(struct raft_io_send *req, int status)
{
    struct send_ctx c = *(struct send_ctx *)req->data;
    struct ioshim_sending *w = sending_find(c.sh, c.id);

    flip_free(req->data);
    req->data = c.data;
    if (status != 0 && w != NULL && w->gen == c.gen) {
        w->id = 0; /* never left: the next rejection may start another */
    }
    c.cb(req, status);
}

static int send_install(struct ioshim *sh,
                        struct raft_io_send *req,
                        const struct raft_message *m,
                        raft_io_send_cb cb)
{
    const struct raft_install_snapshot *is = &m->install_snapshot;
    struct ioshim_sending *w;
    struct send_ctx *c;
    int rv;

    sh->n_installs_out++;
    w = sending_open(
        sh, m->server_id, is->last_index,
        sending_base_ms(sh) + is->data.len / IOSHIM_SEND_BYTES_PER_MS);
    c = w != NULL ? flip_malloc(sizeof *c) : NULL;
    if (c == NULL) {
        return sh->next_send(sh->io, req, m, cb);
    }
    c->sh = sh;
    c->cb = cb;
    c->data = req->data;
    c->id = m->server_id;
    c->gen = w->gen;
    req->data = c;
    rv = sh->next_send(sh->io, req, m, install_sent);
    if (rv != 0) {
        req->data = c->data;
        flip_free(c);
        w->id = 0;
    }
    return rv;
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
                return send_install(sh, req, &fixed, cb);
            }
        }
        return send_install(sh, req, m, cb);
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
static void recv_message(struct ioshim *sh, struct raft_message *m);

static void repeat_sent(struct raft_io_send *req, int status)
{
    struct ioshim *sh = req->data;
    (void)status; /* a lost repeat costs nothing: it was only a repeat */
    sh->repeat_inflight = 0;
}

void ioshim_tick(struct ioshim *sh)
{
    struct raft *r = sh->raft;
    raft_time now = sh->io->time(sh->io);

    keep_quiet_followers(sh);
    sh->tick_timer_start = r->election_timer_start;
    sh->in_tick = 1;
    sh->raft_tick(sh->io);
    sh->in_tick = 0;
    sh->last_tick = now;
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
    recv_message(sh, &m);
}

void ioshim_recv(struct ioshim *sh, struct raft_message *m)
{
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        sh->n_installs_in++;
    }
    if (m->type == RAFT_APPEND_ENTRIES_RESULT) {
        if (m->server_id != 0) {
            note_heard(sh, m);
        }
        if (absorb_rejection(sh, m)) {
            sh->raft_recv(sh->io, m);
            return;
        }
        /* a snapshot load started meanwhile is for this follower (#19) */
        sh->rejecting =
            m->append_entries_result.rejected != 0 && m->server_id != 0 ? m
                                                                        : NULL;
        sh->raft_recv(sh->io, m);
        sh->rejecting = NULL;
        return;
    }
    recv_message(sh, m);
}

static void recv_message(struct ioshim *sh, struct raft_message *m)
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
        /* Heartbeats flow: answers do too. Entries are answered only once
         * they are on disk, and a disk slower than the leader's tick left
         * that tick without contact (#4): the previous answer, repeated
         * on the ticks until the real one goes out, fills the gap. */
        sh->repeats_left =
            sh->got_entries && sh->have_answer ? IOSHIM_REPEATS : 0;
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
    if (status == 0 && c.index > sh->last_snapshot) {
        sh->last_snapshot = c.index;
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
