/* One fixture-stress seed; see stress.h.
 *
 * Shape of a run (every choice comes from the seed's PRNG):
 *   1. n servers (3, or 5 for a quarter of the seeds), each with our real
 *      struct fsm over its own LMDB store; pre-vote on for half the seeds;
 *      a low snapshot threshold/trailing for three quarters of them, so
 *      local snapshots and InstallSnapshot happen; snapshots gated as
 *      raft/node.c does (opts.gate).
 *   2. Chaos for opts.chaos_ms of simulated time, one action every 5-255 or
 *      5-600 ms, in storm and calm windows: bursts of writes (set, delete,
 *      compare-and-set, multi-change, invalid change) through the real
 *      raft/propose.c of a live leader (an undecodable entry straight to
 *      raft), and linearizable reads through its propose_read, sometimes
 *      killing it right after; kill/revive (half the revives restart the
 *      proposer process: a new incarnation, see struct host);
 *      one-way, two-way, refused and split partitions, isolating the leader;
 *      heals; election timeouts, network and disk latency; raft_io faults
 *      only with opts.io_faults. Calm windows only write, revive and heal.
 *   3. Heal: revive all, clear every cut, reset latencies, stop faults; wait
 *      for a stable leader; one final write until it is acknowledged; every
 *      server must apply it within a bound (else STUCK).
 *
 * Oracle, checked while running:
 *   - divergence: every index is recorded once, from the first server that
 *     applied it (hash of the entry's bytes plus a hash of the FSM's
 *     outcomes, or "not a command" for barrier/configuration entries, seen
 *     as a gap before an FSM apply or a snapshot); every later server must
 *     match;
 *   - model: the first application of each command is checked against an
 *     independent model of flag revisions (set, delete, compare-and-set,
 *     invalid changes), so the agreed sequence also has the right outcomes;
 *   - acknowledgements (propose.c's answers): a change answered OK was
 *     applied by the cluster, with exactly the outcome it was told, OK
 *     outcomes with revision == that index (no false ack); a change is
 *     applied at most once, and never after its client was told NOT_LEADER
 *     ("not applied": the client resends it; no double apply); every
 *     accepted change and read gets exactly one callback;
 *   - reads: a linearizable read answered OK comes from a state holding
 *     every write acknowledged before it was issued;
 *   - snapshots: two snapshots at the same index carry the same content;
 *     a server that installed one holds exactly that content;
 *   - harness: each server's appends complete in submission order (a
 *     lowered disk latency must not reorder them; see set_disk_latency).
 * At the end: every server applied the final write, stores are
 * byte-identical (store_hash) and agree with the model.
 *
 * libraft 0.22.1 defects the harness handles (each by interposing on the
 * fixture's raft_io; details at each function):
 *   - fixture only: its in-memory truncate ignores an installed snapshot's
 *     start index (heap overflow): corrected, counted (wrap_truncate);
 *   - a follower ignoring an InstallSnapshot while installing another leaks
 *     its payload: freed, counted (wrap_recv);
 *   - stale last_term in InstallSnapshot (wrap_send) and an install racing
 *     a local snapshot write (wrap_recv, known-issues.md #1): detected by
 *     signature before they crash a server; the seed ends as KNOWN, or
 *     with opts.shim they are avoided the way a raft_io shim in node.c
 *     could;
 *   - a follower whose compacted prefix covers the leader's probe point
 *     livelocks (rejects, then ignores the InstallSnapshot): avoided by
 *     keeping trailing above max_inflight, as flipd's defaults do (setup). */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <raft/fixture.h>

#include "lib/err.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "raft/fsm.h"
#include "raft/ioshim.h"
#include "raft/propose.h"
#include "storage/flags.h"
#include "storage/store.h"
#include "stress.h"

#define MAX_NODES    5
#define ELECTION_MS  1000 /* the fixture's election timeout */
#define MAPSIZE      ((size_t)4 << 20)
#define N_KEYS       6
#define STEP_BUDGET  20000000ull
#define HOLD_EXTRA   3000 /* raft/node.c SNAPSHOT_HOLD_EXTRA_MS */
#define SETTLE_MS    30000
#define ACK_WAIT_MS  10000
#define FINAL_ROUNDS 4

static const char *const keys[N_KEYS] = { "k0",         "k1",
                                          "app/flag.x", "app/flag.y",
                                          "svc:beta",   "svc:ramp_pct" };

enum prop_kind
{
    P_SET,
    P_DELETE,
    P_CAS,
    P_MULTI,
    P_INVALID,
    P_GARBAGE
};

enum ref_kind
{
    REF_NONE = 0,
    REF_CMD,   /* an entry the FSM applied */
    REF_OTHER, /* applied by raft itself (barrier, configuration) */
};

struct ref
{
    uint8_t kind;
    uint8_t server; /* first server that applied it */
    uint64_t entry; /* FNV-1a of the entry's bytes */
    uint64_t result;
};

struct run;

/* One tracked raft_io_append, to check completion order. */
struct pending_append
{
    struct raft_io_append *req;
    raft_io_append_cb cb;
    unsigned n;
};

struct srv
{
    struct run *run;
    unsigned i;
    struct fsm fsm; /* fsm.raft_fsm is what raft calls */
    struct store *store;
    char dir[512];
    int (*orig_apply)(struct raft_fsm *, const struct raft_buffer *, void **);
    int (*orig_snapshot)(struct raft_fsm *, struct raft_buffer *[], unsigned *);
    int (*orig_append)(struct raft_io *,
                       struct raft_io_append *,
                       const struct raft_entry[],
                       unsigned,
                       raft_io_append_cb);
    int (*orig_truncate)(struct raft_io *, raft_index);
    int (*orig_start)(struct raft_io *,
                      unsigned,
                      raft_io_tick_cb,
                      raft_io_recv_cb);
    raft_io_recv_cb orig_recv;
    int (*orig_send)(struct raft_io *,
                     struct raft_io_send *,
                     const struct raft_message *,
                     raft_io_send_cb);
    int (*orig_snapshot_put)(struct raft_io *,
                             unsigned,
                             struct raft_io_snapshot_put *,
                             const struct raft_snapshot *,
                             raft_io_snapshot_put_cb);
    struct raft_io *io;
    struct pending_append *appends; /* FIFO, submission order */
    size_t n_appends;
    size_t cap_appends;
    unsigned n_puts;       /* snapshot puts in flight */
    unsigned n_local_puts; /* ... of them, local snapshots (trailing > 0) */
    struct ioshim shim;    /* opts.shim: raft/ioshim.c, as node.c uses it */
    struct
    {
        raft_index index;
        raft_term term;
    } stored[16]; /* last snapshots this server stored, a ring */
    unsigned n_stored;
    /* Mirror of the fixture io's persisted log: entries io_start+1 ..
     * io_start+io_n (see wrap_truncate). */
    raft_index io_start;
    raft_index io_n;
    uint64_t cur_entry;
    Flipcmd__Command *cur_cmd; /* our decoding of the entry being applied */
    int in_apply;
    unsigned n_apply;
    uint64_t last_seen;  /* highest index the FSM applied or restored */
    uint64_t hold_until; /* PROD gate: no local snapshot before this time */
    struct host *host;   /* its proposer process now */
    unsigned disk_latency;
    unsigned disk_target; /* lowered latency waiting for a quiet disk */
};

/* One proposer process on a server: the real raft/propose.c, its host
 * interface implemented over the fixture's clock (host_* below). A revive
 * may restart it (a new incarnation, sequence numbers from 1 again, as a
 * restarted flipd); the old one stays as a zombie until teardown, because
 * libraft still holds its requests, and its answers reach no client. */
struct host
{
    struct run *run;
    unsigned i;
    int zombie;
    struct propose pr;
    int armed[PROPOSE_N_TIMERS];
    raft_time due[PROPOSE_N_TIMERS];
    struct host *next; /* all hosts of the run */
};

/* One client change through propose_submit. Its actor "p<seq>" names it
 * in the log, so the oracle knows where the cluster applied it. */
struct prop
{
    struct proposal p;
    struct run *run;
    struct host *host;
    unsigned server;
    int kind;
    uint64_t seq;
    Flip__Value value;
    char sbuf[24];
    char actor[24];
    int n_cb;
    int status;
    uint64_t applied_at;        /* first index the cluster applied it at */
    struct fsm_outcome cluster; /* its outcome there */
};

/* One linearizable read through propose_read. */
struct sread
{
    struct read_wait w;
    struct run *run;
    struct host *host;
    uint64_t need; /* highest index acknowledged when it was issued */
    int n_cb;
};

struct model_key
{
    uint64_t rev; /* 0 = absent */
    uint64_t create;
};

struct run
{
    struct raft_fixture f;
    int fixture_up;
    struct srv s[MAX_NODES];
    unsigned n;
    uint64_t rng;
    const struct stress_opts *o;
    struct stress_stats *st;
    /* per-seed scenario */
    int io_faults;
    uint64_t keep;
    unsigned gap_max;
    int calm; /* current window is calm (see act) */
    raft_time window_end;
    /* links */
    uint8_t cut_drop[MAX_NODES][MAX_NODES];
    uint8_t cut_refuse[MAX_NODES][MAX_NODES];
    uint8_t refused[MAX_NODES][MAX_NODES];
    /* oracle */
    struct ref *refs;
    size_t cap_refs;
    uint64_t max_ref;
    uint64_t *snaps; /* content hash of snapshots by index, 0 = none */
    size_t cap_snaps;
    struct model_key model[N_KEYS];
    uint64_t fingerprint;
    struct prop **props; /* by seq - 1 */
    size_t n_props;
    size_t cap_props;
    uint64_t seq;
    struct sread **reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t acked_max; /* highest index of an acknowledged write */
    struct host *hosts; /* every proposer process, zombies too */
    uint64_t seed;
    raft_id leader_id;
    raft_term leader_term;
    uint64_t steps;
    int closing;
    int failed;
    int known; /* the failure is a documented libraft bug */
    char *err;
    size_t errlen;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    return fnv(h, &v, sizeof v);
}

static uint64_t rnd(struct run *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned below(struct run *r, unsigned n)
{
    return (unsigned)(rnd(r) % n);
}

static unsigned between(struct run *r, unsigned lo, unsigned hi)
{
    return lo + below(r, hi - lo + 1);
}

static int pct(struct run *r, unsigned p)
{
    return below(r, 100) < p;
}

static raft_time now(struct run *r)
{
    return raft_fixture_time(&r->f);
}

__attribute__((format(printf, 2, 3))) static void fail(struct run *r,
                                                       const char *fmt,
                                                       ...)
{
    va_list ap;
    int len;

    if (r->failed) {
        return;
    }
    r->failed = 1;
    len = snprintf(r->err, r->errlen, "t=%llums: ",
                   (unsigned long long)(r->fixture_up ? now(r) : 0));
    if (len < 0 || (size_t)len >= r->errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(r->err + len, r->errlen - (size_t)len, fmt, ap);
    va_end(ap);
}

/* A documented libraft bug fired (its precise signature, before it can
 * crash or shut a server down): ends the seed as KNOWN, not FAIL. */
__attribute__((format(printf, 2, 3))) static void known(struct run *r,
                                                        const char *fmt,
                                                        ...)
{
    va_list ap;
    int len;

    if (r->failed) {
        return;
    }
    r->failed = 1;
    r->known = 1;
    len = snprintf(r->err, r->errlen,
                   "t=%llums: KNOWN libraft bug: ", (unsigned long long)now(r));
    if (len < 0 || (size_t)len >= r->errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(r->err + len, r->errlen - (size_t)len, fmt, ap);
    va_end(ap);
}

static struct raft *raft_of(struct run *r, unsigned i)
{
    return raft_fixture_get(&r->f, i);
}

static int alive(struct run *r, unsigned i)
{
    return raft_fixture_alive(&r->f, i);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap == 0 ? 64 : *cap;
    unsigned char *np;

    if (need <= *cap) {
        return p;
    }
    while (ncap < need) {
        ncap *= 2;
    }
    np = realloc(p, ncap * elem);
    if (np == NULL) {
        fprintf(stderr, "fixture-stress: out of memory\n");
        abort();
    }
    memset(np + *cap * elem, 0, (ncap - *cap) * elem);
    *cap = ncap;
    return np;
}

/* Removes the files directly inside `dir` (a store directory). */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static const char *status_name(enum fsm_status s)
{
    switch (s) {
    case FSM_OK:
        return "OK";
    case FSM_CONFLICT:
        return "CONFLICT";
    case FSM_NOTFOUND:
        return "NOTFOUND";
    case FSM_INVALID:
        return "INVALID";
    case FSM_TYPE_MISMATCH:
        return "TYPE_MISMATCH";
    case FSM_STORE_FULL:
        return "STORE_FULL";
    }
    return "?";
}

/* ---- snapshot content ------------------------------------------------------
 * Hash of a store snapshot (format in storage/store.h) without the header
 * index and without meta "applied_index": a snapshot taken at a barrier
 * index carries the taker's last command index there, and restore replaces
 * it by the header index. Everything else must be identical. */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int snap_content(const void *buf, size_t len, uint64_t *out)
{
    const uint8_t *p = buf;
    size_t off = 16;
    uint64_t h = FNV0;

    if (len < 24) {
        return -1;
    }
    len -= 8; /* trailer */
    for (int db = 0; db < STORE_NDB; db++) {
        uint64_t rows;
        if (len - off < 12 || be32(p + off) != (uint32_t)db) {
            return -1;
        }
        rows = be64(p + off + 4);
        off += 12;
        h = fnv_u64(h, (uint64_t)db);
        for (uint64_t i = 0; i < rows; i++) {
            size_t kl;
            size_t vl;
            if (len - off < 8) {
                return -1;
            }
            kl = be32(p + off);
            vl = be32(p + off + 4);
            off += 8;
            if (len - off < kl || len - off - kl < vl) {
                return -1;
            }
            if (!(db == STORE_META && kl == 13 &&
                  memcmp(p + off, "applied_index", 13) == 0)) {
                h = fnv_u64(h, kl);
                h = fnv(h, p + off, kl);
                h = fnv_u64(h, vl);
                h = fnv(h, p + off + kl, vl);
            }
            off += kl + vl;
        }
    }
    *out = off == len ? h | 1 : 0; /* never 0: 0 means "none" */
    return off == len ? 0 : -1;
}

/* ---- model ------------------------------------------------------------------
 */

static int key_slot(const char *key)
{
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i], key) == 0) {
            return i;
        }
    }
    return -1;
}

/* Applies the first application of a command at `index` to the model and
 * compares the FSM's outcomes with the model's. `cmd` is the harness's own
 * decoding of the entry's bytes, `seen` what the FSM reported. */
static void model_apply(struct run *r,
                        uint64_t index,
                        const Flipcmd__Command *cmd,
                        const Flipcmd__Command *seen,
                        const struct fsm_outcome *outs,
                        unsigned server)
{
    const char *why = NULL;

    if ((cmd == NULL) != (seen == NULL) ||
        (cmd != NULL && cmd->n_changes != seen->n_changes)) {
        fail(r,
             "model: server %u applied index %llu as %s, its bytes decode "
             "to %s",
             server, (unsigned long long)index,
             seen == NULL ? "undecodable" : "a command",
             cmd == NULL ? "nothing" : "a command");
        return;
    }
    if (cmd == NULL) {
        return;
    }
    for (size_t i = 0; i < cmd->n_changes && i < FSM_MAX_CHANGES; i++) {
        const Flipcmd__Change *ch = cmd->changes[i];
        struct fsm_outcome want = { .status = FSM_INVALID };
        int valid =
            ch->has_op &&
            (ch->op == FLIPCMD__OP__SET || ch->op == FLIPCMD__OP__DELETE) &&
            codec_check_key(ch->key, &why) == FLIP_OK &&
            (ch->op != FLIPCMD__OP__SET ||
             codec_check_value(ch->value, &why) == FLIP_OK);
        int slot = valid ? key_slot(ch->key) : -1;

        for (size_t j = 0; valid && j < i; j++) {
            if (strcmp(cmd->changes[j]->key, ch->key) == 0) {
                valid = 0;
            }
        }
        if (valid && slot < 0) {
            fail(r, "harness: key '%s' at index %llu is not modelled", ch->key,
                 (unsigned long long)index);
            return;
        }
        if (valid) {
            struct model_key *m = &r->model[slot];
            if (ch->has_expected_revision && ch->expected_revision != m->rev) {
                want.status = FSM_CONFLICT;
                want.revision = m->rev;
            } else if (ch->op == FLIPCMD__OP__DELETE && m->rev == 0) {
                want.status = FSM_NOTFOUND;
                want.revision = 0;
            } else {
                want.status = FSM_OK;
                want.revision = index;
                if (ch->op == FLIPCMD__OP__SET) {
                    m->create = m->rev == 0 ? index : m->create;
                    m->rev = index;
                } else {
                    m->rev = 0;
                    m->create = 0;
                }
            }
        }
        if (outs[i].status != want.status ||
            outs[i].revision != want.revision) {
            fail(r,
                 "model: server %u applied change %zu of index %llu as "
                 "%s@%llu, model says %s@%llu",
                 server, i, (unsigned long long)index,
                 status_name(outs[i].status),
                 (unsigned long long)outs[i].revision, status_name(want.status),
                 (unsigned long long)want.revision);
            return;
        }
    }
}

/* ---- oracle -----------------------------------------------------------------
 */

static const char *kind_name(int kind)
{
    return kind == REF_CMD     ? "command"
           : kind == REF_OTHER ? "non-command"
                               : "-";
}

/* Records what server `s` applied at `index`, or compares it with what the
 * first server recorded there. Returns 1 when this created the record. */
static int ref_check(struct run *r,
                     struct srv *s,
                     uint64_t index,
                     int kind,
                     uint64_t entry,
                     uint64_t result)
{
    struct ref *x;

    r->refs = grow(r->refs, &r->cap_refs, (size_t)index + 1, sizeof *r->refs);
    x = &r->refs[index];
    if (x->kind == REF_NONE) {
        if (index != r->max_ref + 1) {
            fail(r,
                 "harness: server %u is first to apply index %llu but "
                 "the highest recorded index is %llu",
                 s->i, (unsigned long long)index,
                 (unsigned long long)r->max_ref);
        }
        x->kind = (uint8_t)kind;
        x->server = (uint8_t)s->i;
        x->entry = entry;
        x->result = result;
        r->max_ref = index;
        r->fingerprint =
            fnv_u64(fnv_u64(fnv_u64(r->fingerprint, index), entry), result);
        return 1;
    }
    if (x->kind != kind || x->entry != entry) {
        fail(r,
             "DIVERGENCE at index %llu: server %u applied %s entry %016llx, "
             "server %u applied %s entry %016llx",
             (unsigned long long)index, x->server, kind_name(x->kind),
             (unsigned long long)x->entry, s->i, kind_name(kind),
             (unsigned long long)entry);
    } else if (x->result != result) {
        fail(r,
             "DIVERGENCE at index %llu: same entry %016llx, different "
             "outcomes on server %u and server %u (state differs)",
             (unsigned long long)index, (unsigned long long)entry, x->server,
             s->i);
    }
    return 0;
}

static struct prop *prop_of_actor(struct run *r, const char *actor)
{
    unsigned long long seq;
    char end;

    if (actor == NULL || sscanf(actor, "p%llu%c", &seq, &end) != 1 ||
        seq == 0 || seq > r->n_props) {
        return NULL;
    }
    return r->props[seq - 1];
}

/* The cluster applied index for the first time: which proposals it
 * carries. One applied twice, or after its client was told NOT_LEADER
 * ("not applied": it would send it again), is a double apply. */
static void first_applied(struct run *r,
                          uint64_t index,
                          const Flipcmd__Command *cmd,
                          const struct fsm_outcome *outcomes,
                          size_t n)
{
    for (size_t j = 0; j < n; j++) {
        struct prop *p = prop_of_actor(r, cmd->changes[j]->actor);
        if (p == NULL) {
            continue;
        }
        if (p->applied_at != 0) {
            fail(r, "DOUBLE APPLY: proposal %llu applied at %llu and %llu",
                 (unsigned long long)p->seq, (unsigned long long)p->applied_at,
                 (unsigned long long)index);
            return;
        }
        if (p->n_cb > 0 && p->status == FLIP_NOTLEADER && !p->host->zombie) {
            fail(r,
                 "DOUBLE APPLY: proposal %llu answered NOT_LEADER (not "
                 "applied, the client resends) is applied at %llu",
                 (unsigned long long)p->seq, (unsigned long long)index);
            return;
        }
        p->applied_at = index;
        p->cluster = outcomes[j];
    }
}

static void on_applied(void *data,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes)
{
    struct srv *s = data;
    struct run *r = s->run;
    uint64_t result = FNV0;
    size_t n = cmd != NULL ? cmd->n_changes : 0;

    r->st->applied++;
    if (!s->in_apply) {
        fail(r, "server %u: observer called outside apply", s->i);
    }
    if (index <= s->last_seen) {
        fail(r, "server %u applied index %llu after %llu", s->i,
             (unsigned long long)index, (unsigned long long)s->last_seen);
        return;
    }
    for (uint64_t k = s->last_seen + 1; k < index; k++) {
        ref_check(r, s, k, REF_OTHER, 0, 0);
    }
    if (n > FSM_MAX_CHANGES) {
        n = FSM_MAX_CHANGES;
    }
    result = fnv_u64(result, cmd != NULL ? n : ~0ull);
    for (size_t i = 0; i < n; i++) {
        const struct fsm_outcome *o = &outcomes[i];
        int ok = (o->status == FSM_OK && o->revision == index) ||
                 (o->status == FSM_CONFLICT && o->revision < index) ||
                 ((o->status == FSM_NOTFOUND || o->status == FSM_INVALID) &&
                  o->revision == 0);
        if (!ok) {
            fail(r, "server %u index %llu change %zu: outcome %s@%llu", s->i,
                 (unsigned long long)index, i, status_name(o->status),
                 (unsigned long long)o->revision);
        }
        result = fnv_u64(fnv_u64(result, (uint64_t)o->status), o->revision);
    }
    if (ref_check(r, s, index, REF_CMD, s->cur_entry, result)) {
        model_apply(r, index, s->cur_cmd, cmd, outcomes, s->i);
        if (cmd != NULL) {
            first_applied(r, index, cmd, outcomes, n);
        }
    }
    s->last_seen = index;
    for (struct host *h = r->hosts; h != NULL; h = h->next) {
        if (h->i == s->i) {
            propose_on_applied(&h->pr, index, cmd, outcomes);
        }
    }
}

static void on_restored(void *data, uint64_t index)
{
    struct srv *s = data;
    struct run *r = s->run;
    void *buf = NULL;
    size_t len = 0;
    uint64_t h = 0;

    r->st->restored++;
    if (index <= s->last_seen) {
        fail(r, "server %u restored index %llu after applying %llu", s->i,
             (unsigned long long)index, (unsigned long long)s->last_seen);
        return;
    }
    if (store_snapshot(s->store, index, malloc, &buf, &len) != FLIP_OK ||
        snap_content(buf, len, &h) != 0) {
        free(buf);
        fail(r, "server %u: re-reading restored store failed", s->i);
        return;
    }
    free(buf);
    if (index >= r->cap_snaps || r->snaps[index] == 0) {
        fail(r, "server %u restored a snapshot at %llu nobody took", s->i,
             (unsigned long long)index);
    } else if (r->snaps[index] != h) {
        fail(r,
             "server %u: store after installing snapshot %llu differs from "
             "the snapshot",
             s->i, (unsigned long long)index);
    }
    s->last_seen = index;
    for (struct host *ho = r->hosts; ho != NULL; ho = ho->next) {
        if (ho->i == s->i) {
            propose_on_restored(&ho->pr, index);
        }
    }
}

static struct srv *srv_of_fsm(struct raft_fsm *rf)
{
    return (struct srv *)(void *)((char *)rf -
                                  offsetof(struct srv, fsm.raft_fsm));
}

static int wrap_apply(struct raft_fsm *rf,
                      const struct raft_buffer *buf,
                      void **result)
{
    struct srv *s = srv_of_fsm(rf);
    uint64_t lost[1] = { 0 };
    struct raft_buffer other = { lost, sizeof lost };
    int rv;

    s->cur_entry = fnv(FNV0, buf->base, buf->len);
    if (command_decode(buf->base, buf->len, &s->cur_cmd) != FLIP_OK) {
        s->cur_cmd = NULL;
    }
    s->in_apply = 1;
    s->n_apply++;
    if (s->i == 0 && s->run->o->mutate != 0 &&
        s->n_apply == s->run->o->mutate) {
        /* harness self-test: server 0 loses this entry's changes (applies
         * an undecodable entry in its place, under the same hash) */
        buf = &other;
        /* only a command the FSM would have applied can be missed */
        s->run->st->mutated =
            s->cur_cmd != NULL &&
            raft_last_applied(s->fsm.raft) + 1 > store_applied_index(s->store);
    }
    rv = s->orig_apply(rf, buf, result);
    s->in_apply = 0;
    command_free(s->cur_cmd);
    s->cur_cmd = NULL;
    if (rv != 0) {
        fail(s->run, "server %u: fsm apply returned %d", s->i, rv);
    }
    return rv;
}

static int wrap_snapshot(struct raft_fsm *rf,
                         struct raft_buffer *bufs[],
                         unsigned *n_bufs)
{
    struct srv *s = srv_of_fsm(rf);
    struct run *r = s->run;
    uint64_t index = 0;
    uint64_t h = 0;
    int rv = s->orig_snapshot(rf, bufs, n_bufs);

    if (rv == RAFT_BUSY) {
        r->st->declined++;
        return rv;
    }
    if (rv != 0) {
        fail(r, "server %u: fsm snapshot failed: %d", s->i, rv);
        return rv;
    }
    r->st->snapshots++;
    if (*n_bufs != 1 ||
        store_snapshot_index((*bufs)[0].base, (*bufs)[0].len, &index) !=
            FLIP_OK ||
        snap_content((*bufs)[0].base, (*bufs)[0].len, &h) != 0) {
        fail(r, "server %u: fsm produced a malformed snapshot", s->i);
        return rv;
    }
    if (index < s->last_seen) {
        fail(r, "server %u: snapshot at %llu but FSM applied %llu", s->i,
             (unsigned long long)index, (unsigned long long)s->last_seen);
    }
    /* raft applied everything up to the snapshot; what the FSM did not see
     * were barriers or configuration changes */
    for (uint64_t k = s->last_seen + 1; k <= index; k++) {
        ref_check(r, s, k, REF_OTHER, 0, 0);
    }
    if (index > s->last_seen) {
        s->last_seen = index;
    }
    r->snaps =
        grow(r->snaps, &r->cap_snaps, (size_t)index + 1, sizeof *r->snaps);
    if (r->snaps[index] == 0) {
        r->snaps[index] = h;
    } else if (r->snaps[index] != h) {
        fail(r, "DIVERGENCE: two snapshots at index %llu differ (server %u)",
             (unsigned long long)index, s->i);
    }
    return rv;
}

/* PROD gate: raft/node.c's snapshot_gate on fixture time. */
static int gate_prod(void *data)
{
    struct srv *s = data;
    struct run *r = s->run;

    if (raft_state(raft_of(r, s->i)) == RAFT_LEADER) {
        return 1;
    }
    return now(r) >= s->hold_until;
}

static void hold(struct srv *s)
{
    uint64_t until = now(s->run) + 2 * ELECTION_MS + HOLD_EXTRA;
    if (until > s->hold_until) {
        s->hold_until = until;
    }
}

/* ---- raft_io wrappers: append completion order ------------------------------
 */

static struct srv *srv_of_io(struct run *r, struct raft_io *io)
{
    for (unsigned i = 0; i < r->n; i++) {
        if (r->s[i].io == io) {
            return &r->s[i];
        }
    }
    abort();
}

static struct run *current_run; /* one run per process at a time */

static void append_done(struct raft_io_append *req, int status)
{
    struct run *r = current_run;
    raft_io_append_cb cb = NULL;

    for (unsigned i = 0; i < r->n && cb == NULL; i++) {
        struct srv *s = &r->s[i];
        for (size_t k = 0; k < s->n_appends; k++) {
            if (s->appends[k].req != req) {
                continue;
            }
            cb = s->appends[k].cb;
            if (status == 0) {
                s->io_n += s->appends[k].n;
            }
            if (k != 0) {
                fail(r,
                     "harness: server %u completed an append before %zu "
                     "earlier ones (disk latency artefact)",
                     i, k);
            }
            memmove(&s->appends[k], &s->appends[k + 1],
                    (s->n_appends - k - 1) * sizeof *s->appends);
            s->n_appends--;
            break;
        }
    }
    if (cb == NULL) {
        fprintf(stderr, "fixture-stress: unknown append completed\n");
        abort();
    }
    cb(req, status);
}

static int wrap_append(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    struct srv *s = srv_of_io(current_run, io);
    int rv = s->orig_append(io, req, entries, n, append_done);

    if (rv == 0) {
        s->appends = grow(s->appends, &s->cap_appends, s->n_appends + 1,
                          sizeof *s->appends);
        s->appends[s->n_appends].req = req;
        s->appends[s->n_appends].cb = cb;
        s->appends[s->n_appends].n = n;
        s->n_appends++;
    }
    return rv;
}

static void wrap_recv(struct raft_io *io, struct raft_message *m);

struct put_ctx
{
    struct srv *s;
    raft_io_snapshot_put_cb cb;
    void *data;
    unsigned trailing;
    raft_index index;
    raft_term term;
};

static void put_done(struct raft_io_snapshot_put *req, int status)
{
    struct put_ctx *c = req->data;
    struct put_ctx copy = *c;

    free(c);
    req->data = copy.data;
    copy.s->n_puts--;
    copy.s->n_local_puts -= copy.trailing != 0 ? 1u : 0u;
    if (status == 0) {
        struct srv *s = copy.s;
        unsigned k = s->n_stored++ % 16;
        s->stored[k].index = copy.index;
        s->stored[k].term = copy.term;
    }
    if (status == 0 && copy.trailing == 0) {
        copy.s->io_start = copy.index; /* an install replaced the log */
        copy.s->io_n = 0;
    }
    copy.cb(req, status);
}

static int wrap_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    struct srv *s = srv_of_io(current_run, io);
    struct put_ctx *c = malloc(sizeof *c);
    int rv;

    if (c == NULL) {
        abort();
    }
    c->s = s;
    c->cb = cb;
    c->data = req->data;
    c->trailing = trailing;
    c->index = snapshot->index;
    c->term = snapshot->term;
    req->data = c;
    rv = s->orig_snapshot_put(io, trailing, req, snapshot, put_done);
    if (rv != 0) {
        req->data = c->data;
        free(c);
        return rv;
    }
    s->n_puts++;
    s->n_local_puts += trailing != 0 ? 1u : 0u;
    return rv;
}

/* libraft 0.22.1, src/legacy.c legacyLoadSnapshotCb: to send an
 * InstallSnapshot the leader loads "the" snapshot with io->snapshot_get,
 * which returns the newest one; when the leader stored a newer snapshot
 * meanwhile, the message gets the new last_index but keeps the old
 * last_term. The follower installs (index, wrong term); the next
 * AppendEntries hits "conflicting terms ... -> shutdown" in
 * replication.c, which recvCb asserts never happens (compiled out in
 * Debian's build, where it ends in a double free). Caught here, when the
 * message is sent; with opts.shim the term is corrected instead (what a
 * raft_io shim in raft/node.c could do: it sees every snapshot_put). */
static int wrap_send(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *m,
                     raft_io_send_cb cb)
{
    struct srv *s = srv_of_io(current_run, io);

    if (m->type == RAFT_INSTALL_SNAPSHOT && !current_run->o->raw) {
        const struct raft_install_snapshot *is = &m->install_snapshot;
        unsigned n = s->n_stored < 16 ? s->n_stored : 16;
        for (unsigned k = 0; k < n; k++) {
            if (s->stored[k].index != is->last_index ||
                s->stored[k].term == is->last_term) {
                continue;
            }
            known(current_run,
                  "server %u sends InstallSnapshot (%llu^%llu) to %llu; "
                  "its snapshot at %llu has term %llu (stale term, "
                  "legacyLoadSnapshotCb)",
                  s->i, (unsigned long long)is->last_index,
                  (unsigned long long)is->last_term,
                  (unsigned long long)m->server_id - 1,
                  (unsigned long long)is->last_index,
                  (unsigned long long)s->stored[k].term);
        }
    }
    return s->orig_send(io, req, m, cb);
}

/* libraft 0.22.1, src/replication.c replicationInstallSnapshot: an
 * InstallSnapshot that reaches a follower still installing an earlier one
 * is ignored with *async = true, so recvInstallSnapshot frees neither its
 * data nor its configuration: a leak of one snapshot per occurrence (the
 * same path serves raft_uv). The harness predicts exactly that case (term
 * not stale, r->snapshot.installing set) and frees the payload after the
 * call; stats count it. */
static void drop_install(struct raft_install_snapshot *is)
{
    raft_configuration_close(&is->conf);
    raft_free(is->data.base);
}

static void wrap_recv(struct raft_io *io, struct raft_message *m)
{
    struct srv *s = srv_of_io(current_run, io);
    struct raft *rf = raft_of(current_run, s->i);
    struct raft_install_snapshot is;
    int live = m->type == RAFT_INSTALL_SNAPSHOT && !rf->legacy.closing &&
               m->install_snapshot.term >= rf->current_term;
    int leaks = live && rf->snapshot.installing;

    if (current_run->o->shim) {
        s->orig_recv(io, m); /* raft/ioshim.c handles all three */
        return;
    }

    /* docs/known-issues.md item 1, pinned down: an InstallSnapshot that the
     * core accepts (not already installing, beyond the local log) while a
     * local snapshot is being written resets the trail under it; when the
     * local write completes, TrailSnapshot asserts on the missing term
     * (debug build) and legacy.c takeSnapshotCb starts the held-back
     * install from a pointer it has just set to NULL (lines 531-532:
     * SIGSEGV in Debian's build). Caught before delivery; with opts.shim
     * the message is held back until the local write is done instead (what
     * a raft_io shim in raft/node.c could do). */
    if (live && !leaks && s->n_local_puts > 0 && !current_run->o->raw &&
        m->install_snapshot.last_index > raft_last_index(rf)) {
        known(current_run,
              "server %u receives InstallSnapshot (%llu^%llu) while writing "
              "its own snapshot (install/snapshot race, known-issues.md #1)",
              s->i, (unsigned long long)m->install_snapshot.last_index,
              (unsigned long long)m->install_snapshot.last_term);
        drop_install(&m->install_snapshot);
        return;
    }

    if (leaks) {
        is = m->install_snapshot;
    }
    s->orig_recv(io, m);
    if (leaks) {
        drop_install(&is);
        current_run->st->leaks++;
    }
}

/* opts.shim: the production shim (raft/ioshim.c) on top of the wrappers
 * above, entered the way raft/node.c enters it. */
static int shim_send(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *m,
                     raft_io_send_cb cb)
{
    return ioshim_send(&srv_of_io(current_run, io)->shim, req, m, cb);
}

static void shim_recv(struct raft_io *io, struct raft_message *m)
{
    ioshim_recv(&srv_of_io(current_run, io)->shim, m);
}

static void shim_tick(struct raft_io *io)
{
    ioshim_tick(&srv_of_io(current_run, io)->shim);
}

static int shim_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    return ioshim_start(&srv_of_io(current_run, io)->shim, msecs, tick, recv,
                        shim_tick, shim_recv);
}

static int shim_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    return ioshim_snapshot_put(&srv_of_io(current_run, io)->shim, trailing, req,
                               snapshot, cb);
}

static int shim_snapshot_get(struct raft_io *io,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb)
{
    return ioshim_snapshot_get(&srv_of_io(current_run, io)->shim, req, cb);
}

static int shim_load(struct raft_io *io,
                     raft_term *term,
                     raft_id *voted_for,
                     struct raft_snapshot **snapshot,
                     raft_index *start_index,
                     struct raft_entry *entries[],
                     size_t *n_entries)
{
    return ioshim_load(&srv_of_io(current_run, io)->shim, term, voted_for,
                       snapshot, start_index, entries, n_entries);
}

static int shim_append(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    return ioshim_append(&srv_of_io(current_run, io)->shim, req, entries, n,
                         cb);
}

/* The shim follows the next append index through load, truncate and append
 * (known-issues #13); the stress runs that code as node.c does, without a
 * room check (no directory). */
static int shim_truncate(struct raft_io *io, raft_index index)
{
    return ioshim_truncate(&srv_of_io(current_run, io)->shim, index);
}

static int wrap_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    struct srv *s = srv_of_io(current_run, io);

    s->orig_recv = recv;
    return s->orig_start(io, msecs, tick, wrap_recv);
}

/* The fixture's in-memory truncate (libraft 0.22.1 src/fixture.c,
 * ioMethodTruncate) keeps `index - 1` entries, ignoring the start index an
 * installed snapshot set: the next truncation on a server that installed a
 * snapshot copies past the end of its entry array (heap overflow, then a
 * double free). raft_uv is not affected. Translate the index so the
 * fixture keeps the right entries; stats count these. */
static int wrap_truncate(struct raft_io *io, raft_index index)
{
    struct srv *s = srv_of_io(current_run, io);
    raft_index start = s->io_start;
    int rv;

    if (index > start + s->io_n) {
        return 0; /* nothing to drop */
    }
    if (start != 0) {
        current_run->st->fixups++;
    }
    rv = s->orig_truncate(io, index <= start + 1 ? 1 : index - start);
    if (rv == 0) {
        s->io_n = index <= start + 1 ? 0 : index - 1 - start;
    }
    return rv;
}

/* Disk latency: the fixture stamps each request with now + latency, so a
 * lower latency would complete a new append before older ones, which
 * neither raft_uv nor libraft 0.22 expects (docs/libraft.md §1: this
 * produced false "commit without majority" flags). A rise applies at once
 * (completion times stay ordered); a drop waits until the server has no
 * append or snapshot write in flight. append_done checks the order. */
static void set_disk_latency(struct run *r, unsigned i, unsigned ms)
{
    struct srv *s = &r->s[i];

    if (ms >= s->disk_latency) {
        s->disk_latency = ms;
        s->disk_target = 0;
        raft_fixture_set_disk_latency(&r->f, i, ms);
    } else {
        s->disk_target = ms;
    }
}

/* ---- links ------------------------------------------------------------------
 */

/* Makes the fixture's links match cut_* and liveness: the fixture's
 * kill/revive saturate and desaturate every link of a server, and a dead
 * server still receives messages on a desaturated link. The fixture asserts
 * (in a debug build of libraft) that a link is connected whenever its
 * saturation changes, so refused links are reconnected around that. */
static void sync_links(struct run *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        for (unsigned j = 0; j < r->n; j++) {
            int sat;
            if (i == j) {
                continue;
            }
            sat = r->cut_drop[i][j] || !alive(r, i) || !alive(r, j);
            if (sat != raft_fixture_saturated(&r->f, i, j)) {
                if (r->refused[i][j]) {
                    raft_fixture_reconnect(&r->f, i, j);
                    r->refused[i][j] = 0;
                }
                if (sat) {
                    raft_fixture_saturate(&r->f, i, j);
                } else {
                    raft_fixture_desaturate(&r->f, i, j);
                }
            }
            if (r->cut_refuse[i][j] && !r->refused[i][j]) {
                raft_fixture_disconnect(&r->f, i, j);
                r->refused[i][j] = 1;
            } else if (!r->cut_refuse[i][j] && r->refused[i][j]) {
                raft_fixture_reconnect(&r->f, i, j);
                r->refused[i][j] = 0;
            }
        }
    }
}

/* Reconnects server i's refused links before kill/revive touch them. */
static void unrefuse(struct run *r, unsigned i)
{
    for (unsigned j = 0; j < r->n; j++) {
        if (r->refused[i][j]) {
            raft_fixture_reconnect(&r->f, i, j);
            r->refused[i][j] = 0;
        }
        if (r->refused[j][i]) {
            raft_fixture_reconnect(&r->f, j, i);
            r->refused[j][i] = 0;
        }
    }
}

/* ---- the proposer's host: raft/propose.h over fixture time -----------------
 */

static uint64_t host_now(void *data)
{
    struct host *h = data;
    return now(h->run);
}

static int64_t host_wall_ms(void *data)
{
    return 1700000000000 + (int64_t)host_now(data);
}

static void host_arm(void *data, enum propose_timer t, uint64_t ms)
{
    struct host *h = data;

    h->armed[t] = 1;
    h->due[t] =
        now(h->run) + (t == PROPOSE_NUDGE || t == PROPOSE_LIMBO ? ms : 0);
}

static void host_disarm(void *data, enum propose_timer t)
{
    struct host *h = data;
    h->armed[t] = 0;
}

/* A zombie's process is gone: it starts nothing and parks nothing. */
static int host_closing(void *data)
{
    struct host *h = data;
    return h->zombie || h->run->closing;
}

static void host_fatal(void *data, int rv)
{
    struct host *h = data;
    (void)rv;
    h->run->st->apply_errors++; /* flipd aborts here; see propose.c */
}

static struct host *host_new(struct run *r, unsigned i)
{
    struct host *h = calloc(1, sizeof *h);
    struct propose_env env = {
        .raft = raft_of(r, i),
        .id = i + 1,
        .limbo_ms = ELECTION_MS,
        .now = host_now,
        .wall_ms = host_wall_ms,
        .arm = host_arm,
        .disarm = host_disarm,
        .closing = host_closing,
        .raft_closing = host_closing,
        .fatal = host_fatal,
    };

    if (h == NULL) {
        abort();
    }
    h->run = r;
    h->i = i;
    h->next = r->hosts;
    r->hosts = h;
    env.data = h;
    /* deterministic per seed, server and restart; never 0 (random) */
    env.incarnation =
        fnv_u64(fnv_u64(fnv_u64(FNV0, r->seed), i), r->st->restarts++) | 1;
    propose_init(&h->pr, &env, r->keep);
    r->s[i].host = h;
    return h;
}

/* What one loop turn of server i's process runs after its I/O: due
 * timers, deferred work, then the batch collected this turn. A dead
 * server's process is frozen. */
static void host_turn(struct run *r, struct host *h)
{
    static const enum propose_timer order[] = { PROPOSE_NUDGE, PROPOSE_LIMBO,
                                                PROPOSE_DEFER, PROPOSE_FLUSH };

    if (h->zombie || !alive(r, h->i) || r->closing) {
        return;
    }
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        enum propose_timer t = order[k];
        if (h->armed[t] && h->due[t] <= now(r)) {
            h->armed[t] = 0;
            propose_fire(&h->pr, t);
        }
    }
}

static void kill_server(struct run *r, unsigned i)
{
    unrefuse(r, i);
    raft_fixture_kill(&r->f, i);
    sync_links(r);
    r->st->kills++;
}

static void revive_server(struct run *r, unsigned i, int restart)
{
    if (restart) {
        /* a new flipd process over the same raft (see struct host) */
        r->s[i].host->zombie = 1;
        host_new(r, i);
    }
    unrefuse(r, i);
    raft_fixture_revive(&r->f, i);
    sync_links(r);
    hold(&r->s[i]); /* node.c: a stalled loop holds snapshots */
}

/* ---- stepping ---------------------------------------------------------------
 */

static void after_step(struct run *r)
{
    unsigned li = raft_fixture_leader_index(&r->f);

    for (unsigned i = 0; i < r->n; i++) {
        struct srv *s = &r->s[i];
        struct raft *rf = raft_of(r, i);
        if (s->disk_target != 0 && s->n_appends == 0 && s->n_puts == 0) {
            s->disk_latency = s->disk_target;
            s->disk_target = 0;
            raft_fixture_set_disk_latency(&r->f, i, s->disk_latency);
        }
        if (alive(r, i)) {
            raft_id id = 0;
            const char *addr = NULL;
            raft_leader(rf, &id, &addr);
            if (id == 0) {
                hold(s);
            }
        }
    }
    if (li < r->n) {
        struct raft *rf = raft_of(r, li);
        if (rf->id != r->leader_id || rf->current_term != r->leader_term) {
            r->leader_id = rf->id;
            r->leader_term = rf->current_term;
            r->st->leaders++;
        }
    }
}

static void step(struct run *r)
{
    if (++r->steps > STEP_BUDGET) {
        fail(r, "step budget exhausted (%llu steps)",
             (unsigned long long)STEP_BUDGET);
        return;
    }
    raft_fixture_step(&r->f);
    after_step(r);
    for (unsigned i = 0; i < r->n && !r->failed; i++) {
        host_turn(r, r->s[i].host);
    }
}

static int step_until(struct run *r,
                      int (*done)(struct run *, void *),
                      void *arg,
                      unsigned max_ms)
{
    raft_time start = now(r);
    while (!r->failed) {
        if (done(r, arg)) {
            return 1;
        }
        if (now(r) - start >= max_ms) {
            return 0;
        }
        step(r);
    }
    return 0;
}

/* ---- proposals --------------------------------------------------------------
 */

/* Revision and create revision of key slot k in server i's store. */
static void store_rev(struct run *r, unsigned i, int k, uint64_t out[2])
{
    Flip__Flag *f = NULL;

    out[0] = out[1] = 0;
    if (flags_get(r->s[i].store, keys[k], &f) == FLIP_OK) {
        out[0] = f->revision;
        out[1] = f->has_create_revision ? f->create_revision : 0;
        flags_free(f);
    }
}

static void prop_cb(struct proposal *pp, int status)
{
    struct prop *p = CONTAINER_OF(pp, struct prop, p);
    struct run *r = p->run;
    const struct fsm_outcome *o = &pp->outcome;
    int ok;

    p->n_cb++;
    p->status = status;
    if (p->n_cb > 1) {
        fail(r, "proposal %llu: callback fired %d times",
             (unsigned long long)p->seq, p->n_cb);
        return;
    }
    if (p->host->zombie) {
        return; /* its process is gone: no client hears this */
    }
    if (status == FLIP_NOTLEADER && p->applied_at != 0) {
        fail(r,
             "DOUBLE APPLY: proposal %llu answered NOT_LEADER (not applied, "
             "the client resends) but applied at %llu",
             (unsigned long long)p->seq, (unsigned long long)p->applied_at);
        return;
    }
    if (status == FLIP_INTERNAL) {
        fail(r, "proposal %llu: committed without an outcome",
             (unsigned long long)p->seq);
        return;
    }
    if (status != FLIP_OK) {
        return;
    }
    r->st->acked++;
    if (p->applied_at == 0) {
        fail(r,
             "FALSE ACK: proposal %llu acknowledged by server %u, but the "
             "cluster never applied it",
             (unsigned long long)p->seq, p->server);
        return;
    }
    if (o->status != p->cluster.status || o->revision != p->cluster.revision) {
        fail(r,
             "FALSE ACK: proposal %llu acknowledged with %s@%llu, the cluster "
             "applied it at %llu with %s@%llu",
             (unsigned long long)p->seq, status_name(o->status),
             (unsigned long long)o->revision, (unsigned long long)p->applied_at,
             status_name(p->cluster.status),
             (unsigned long long)p->cluster.revision);
        return;
    }
    if (p->applied_at > r->acked_max) {
        r->acked_max = p->applied_at;
    }
    switch (p->kind) {
    case P_SET:
        ok = o->status == FSM_OK;
        break;
    case P_CAS:
        ok = o->status == FSM_OK || o->status == FSM_CONFLICT ||
             o->status == FSM_NOTFOUND; /* delete of an absent key */
        break;
    case P_INVALID:
        ok = o->status == FSM_INVALID;
        break;
    default: /* P_DELETE, P_MULTI */
        ok = o->status == FSM_OK || o->status == FSM_NOTFOUND;
        break;
    }
    if (o->status == FSM_OK && o->revision != p->applied_at) {
        ok = 0;
    }
    if (!ok) {
        fail(r, "proposal %llu (kind %d) acknowledged at %llu with %s@%llu",
             (unsigned long long)p->seq, p->kind,
             (unsigned long long)p->applied_at, status_name(o->status),
             (unsigned long long)o->revision);
    }
}

static void fill_change(struct run *r,
                        Flipcmd__Change *ch,
                        Flip__Value *v,
                        char *sbuf,
                        size_t slen,
                        const char *key,
                        int del)
{
    ch->has_op = 1;
    ch->op = del ? FLIPCMD__OP__DELETE : FLIPCMD__OP__SET;
    ch->key = (char *)key;
    if (pct(r, 30)) {
        ch->reason = "because";
    }
    if (del) {
        return;
    }
    ch->value = v;
    switch (below(r, 4)) {
    case 0:
        v->kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        v->bool_value = pct(r, 50);
        break;
    case 1:
        v->kind_case = FLIP__VALUE__KIND_INT_VALUE;
        v->int_value = (int64_t)below(r, 1000) - 500;
        break;
    case 2:
        v->kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
        v->double_value = below(r, 10000) / 100.0;
        break;
    default:
        snprintf(sbuf, slen, "v%u", below(r, 100000));
        v->kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        v->string_value = sbuf;
        break;
    }
}

/* One random change on server i through propose_submit, key slot k.
 * Returns the proposal when propose.c took it. */
static struct prop *submit(struct run *r, unsigned i, int kind, unsigned k)
{
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    struct prop *p = calloc(1, sizeof *p);
    int rv;

    if (p == NULL) {
        abort();
    }
    p->run = r;
    p->host = r->s[i].host;
    p->server = i;
    p->kind = kind;
    p->seq = r->n_props + 1;
    flip__value__init(&p->value);
    snprintf(p->actor, sizeof p->actor, "p%llu", (unsigned long long)p->seq);
    switch (kind) {
    case P_CAS: {
        uint64_t cur[2];
        fill_change(r, &ch, &p->value, p->sbuf, sizeof p->sbuf, keys[k],
                    pct(r, 20));
        store_rev(r, i, (int)k, cur);
        ch.has_expected_revision = 1;
        switch (below(r, 5)) {
        case 0:
            ch.expected_revision = 0; /* create if absent */
            break;
        case 1:
            ch.expected_revision = cur[0] > 0 ? cur[0] - 1 : 1; /* stale */
            break;
        default:
            ch.expected_revision = cur[0];
            break;
        }
        break;
    }
    case P_INVALID:
        fill_change(r, &ch, &p->value, p->sbuf, sizeof p->sbuf,
                    pct(r, 50) ? "bad key!" : "", 0);
        break;
    default:
        fill_change(r, &ch, &p->value, p->sbuf, sizeof p->sbuf, keys[k],
                    kind == P_DELETE || (kind == P_MULTI && pct(r, 25)));
        break;
    }
    ch.actor = p->actor;
    rv = propose_submit(&p->host->pr, &p->p, &ch, prop_cb);
    if (rv != FLIP_OK) {
        if (rv != FLIP_NOTLEADER) {
            fail(r, "propose_submit on server %u: %d", i, rv);
        }
        free(p);
        return NULL;
    }
    r->props = grow(r->props, &r->cap_props, (size_t)p->seq, sizeof *r->props);
    r->props[r->n_props++] = p;
    r->st->proposed++;
    return p;
}

/* An entry no FSM can decode, straight to raft: apply must treat it as a
 * no-op on every server (propose.c never builds one). */
struct garbage
{
    struct raft_apply req;
};

static void garbage_done(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req->data);
}

static void propose_garbage(struct run *r, unsigned i)
{
    struct garbage *g = calloc(1, sizeof *g);
    struct raft_buffer buf;
    int rv;

    if (g == NULL) {
        abort();
    }
    buf.len = 8 * (size_t)between(r, 1, 6);
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        abort();
    }
    for (size_t b = 0; b < buf.len; b++) {
        ((uint8_t *)buf.base)[b] = (uint8_t)rnd(r);
    }
    memset((uint8_t *)buf.base + 4, 0xff, 4); /* unknown envelope format */
    g->req.data = g;
    rv = raft_apply(raft_of(r, i), &g->req, &buf, 1, garbage_done);
    if (rv != 0) {
        /* libraft 0.22.1 frees the entry before io->truncate/io->append
         * (legacyHandleUpdateEntries), so after an error from the io layer
         * (RAFT_IOERR here, from io_fault) the buffer is already gone;
         * only a refusal before that (not leader) leaves it to us. */
        if (rv == RAFT_NOTLEADER) {
            raft_free(buf.base);
        } else {
            r->st->apply_errors++;
        }
        free(g);
    }
}

/* Writes of one kind on leader i: MULTI is 2-3 changes to neighbouring
 * keys in one loop turn, so propose.c batches them into one entry (a
 * repeated key goes into the next one). */
static void write_kind(struct run *r, unsigned i, int kind)
{
    unsigned k = below(r, N_KEYS);

    if (kind == P_GARBAGE) {
        propose_garbage(r, i);
    } else if (kind == P_MULTI) {
        unsigned n = between(r, 2, 3);
        int dup = pct(r, 25);
        for (unsigned c = 0; c < n; c++) {
            submit(r, i, kind, dup && c == n - 1 ? k : (k + c) % N_KEYS);
        }
    } else {
        submit(r, i, kind, k);
    }
}

static void read_cb(struct read_wait *w, int status)
{
    struct sread *rd = CONTAINER_OF(w, struct sread, w);
    struct run *r = rd->run;
    struct srv *s = &r->s[rd->host->i];

    rd->n_cb++;
    if (rd->n_cb > 1) {
        fail(r, "read on server %u: callback fired %d times", s->i, rd->n_cb);
        return;
    }
    if (status == FLIP_OK) {
        r->st->reads++;
    }
    if (status == FLIP_OK && !rd->host->zombie && s->last_seen < rd->need) {
        fail(r,
             "STALE READ: server %u answered a linearizable read at applied "
             "index %llu; index %llu was acknowledged before it was issued",
             s->i, (unsigned long long)s->last_seen,
             (unsigned long long)rd->need);
    }
}

/* A linearizable read on server i: once answered OK, its state must hold
 * every write acknowledged before the read was issued. */
static void read_on(struct run *r, unsigned i)
{
    struct sread *rd = calloc(1, sizeof *rd);

    if (rd == NULL) {
        abort();
    }
    rd->run = r;
    rd->host = r->s[i].host;
    rd->need = r->acked_max;
    if (propose_read(&rd->host->pr, &rd->w, read_cb) != FLIP_OK) {
        free(rd);
        return;
    }
    r->reads = grow(r->reads, &r->cap_reads, r->n_reads + 1, sizeof *r->reads);
    r->reads[r->n_reads++] = rd;
}

static int random_kind(struct run *r)
{
    unsigned x = below(r, 100);
    return x < 40   ? P_SET
           : x < 55 ? P_DELETE
           : x < 75 ? P_CAS
           : x < 88 ? P_MULTI
           : x < 94 ? P_INVALID
                    : P_GARBAGE;
}

/* ---- chaos ------------------------------------------------------------------
 */

static int pick(struct run *r, int want_alive)
{
    unsigned c[MAX_NODES];
    unsigned n = 0;
    for (unsigned i = 0; i < r->n; i++) {
        if ((alive(r, i) != 0) == want_alive) {
            c[n++] = i;
        }
    }
    return n == 0 ? -1 : (int)c[below(r, n)];
}

static unsigned n_alive(struct run *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->n; i++) {
        n += alive(r, i) ? 1u : 0u;
    }
    return n;
}

static int live_leader(struct run *r)
{
    unsigned c[MAX_NODES];
    unsigned n = 0;
    for (unsigned i = 0; i < r->n; i++) {
        if (alive(r, i) && raft_state(raft_of(r, i)) == RAFT_LEADER) {
            c[n++] = i;
        }
    }
    return n == 0 ? -1 : (int)c[below(r, n)];
}

static void cut(struct run *r, unsigned i, unsigned j, int both, int refuse)
{
    uint8_t(*m)[MAX_NODES] = refuse ? r->cut_refuse : r->cut_drop;
    m[i][j] = 1;
    if (both) {
        m[j][i] = 1;
    }
}

static void partition(struct run *r)
{
    unsigned i = below(r, r->n);
    unsigned j = (i + 1 + below(r, r->n - 1)) % r->n;
    unsigned how = below(r, 100);

    r->st->cuts++;
    if (how < 25) {
        cut(r, i, j, 0, 0); /* one way */
    } else if (how < 50) {
        cut(r, i, j, 1, 0);
    } else if (how < 60) {
        cut(r, i, j, 1, 1); /* sends fail instead of vanishing */
    } else if (how < 80) {
        int l = live_leader(r);
        unsigned x = l >= 0 ? (unsigned)l : i;
        for (unsigned k = 0; k < r->n; k++) {
            if (k != x) {
                cut(r, x, k, 1, 0);
            }
        }
    } else {
        /* split: a random minority against the rest */
        unsigned in = 0;
        unsigned size = between(r, 1, (r->n - 1) / 2);
        for (unsigned k = 0; k < size; k++) {
            in |= 1u << ((i + k) % r->n);
        }
        for (unsigned a = 0; a < r->n; a++) {
            for (unsigned b = 0; b < r->n; b++) {
                if (((in >> a) & 1u) != ((in >> b) & 1u)) {
                    r->cut_drop[a][b] = 1;
                }
            }
        }
    }
    sync_links(r);
}

static void heal(struct run *r, int all)
{
    if (all) {
        memset(r->cut_drop, 0, sizeof r->cut_drop);
        memset(r->cut_refuse, 0, sizeof r->cut_refuse);
    } else {
        unsigned i = below(r, r->n);
        unsigned j = (i + 1 + below(r, r->n - 1)) % r->n;
        r->cut_drop[i][j] = r->cut_drop[j][i] = 0;
        r->cut_refuse[i][j] = r->cut_refuse[j][i] = 0;
    }
    sync_links(r);
}

static void act(struct run *r)
{
    unsigned x = below(r, 100);
    int i;

    if (r->io_faults && pct(r, 3)) {
        unsigned s = below(r, r->n);
        raft_fixture_io_fault(&r->f, s, (int)below(r, 20),
                              (int)between(r, 1, 2));
        r->st->faults++;
        return;
    }
    if (r->calm) {
        /* a calm window: writes pile up, laggards come back, so logs grow
         * past the snapshot threshold and installs happen */
        x = x < 75 ? 0 : x < 90 ? 55 : 75;
    }
    if (x < 40) {
        unsigned burst = between(r, 1, 6);
        i = live_leader(r);
        if (i < 0) {
            return;
        }
        for (unsigned b = 0; b < burst; b++) {
            write_kind(r, (unsigned)i, random_kind(r));
        }
        for (unsigned b = below(r, 3); b > 0; b--) {
            read_on(r, pct(r, 80) ? (unsigned)i : (unsigned)pick(r, 1));
        }
        host_turn(r, r->s[i].host); /* the loop turn ends: batch goes out */
        if (!r->calm && pct(r, 25) && n_alive(r) > 1) {
            kill_server(r, (unsigned)i);
        }
    } else if (x < 50) {
        i = pick(r, 1);
        if (i >= 0 && n_alive(r) > 1) {
            kill_server(r, (unsigned)i);
        }
    } else if (x < 64) {
        i = pick(r, 0);
        if (i >= 0) {
            revive_server(r, (unsigned)i, pct(r, 50));
        }
    } else if (x < 73) {
        partition(r);
    } else if (x < 82) {
        heal(r, pct(r, 40));
    } else if (x < 90) {
        raft_fixture_set_randomized_election_timeout(
            &r->f, below(r, r->n), between(r, ELECTION_MS, 2 * ELECTION_MS));
    } else if (x < 95) {
        raft_fixture_set_network_latency(&r->f, below(r, r->n),
                                         between(r, 5, 65));
    } else {
        set_disk_latency(r, below(r, r->n), between(r, 5, 125));
    }
}

/* ---- final phase ------------------------------------------------------------
 */

static int has_leader(struct run *r, void *arg)
{
    (void)arg;
    return raft_fixture_leader_index(&r->f) < r->n;
}

static int prop_done(struct run *r, void *arg)
{
    (void)r;
    return ((struct prop *)arg)->n_cb > 0;
}

static int all_applied(struct run *r, void *arg)
{
    uint64_t index = *(uint64_t *)arg;
    for (unsigned i = 0; i < r->n; i++) {
        if (raft_last_applied(raft_of(r, i)) < index) {
            return 0;
        }
    }
    return 1;
}

static void describe(struct run *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < r->n && len < n; i++) {
        struct raft *rf = raft_of(r, i);
        int w = snprintf(out + len, n - len,
                         "%s[%u %s term %llu commit %llu applied %llu "
                         "stored %llu/%llu fsm %llu]",
                         i ? " " : "", i, raft_state_name(raft_state(rf)),
                         (unsigned long long)rf->current_term,
                         (unsigned long long)raft_commit_index(rf),
                         (unsigned long long)raft_last_applied(rf),
                         (unsigned long long)rf->last_stored,
                         (unsigned long long)raft_last_index(rf),
                         (unsigned long long)r->s[i].last_seen);
        if (w < 0) {
            break;
        }
        len += (size_t)w;
    }
}

/* One acknowledged write after healing; 0 if none within the bounds. */
static uint64_t final_write(struct run *r)
{
    for (int attempt = 0; attempt < 8 && !r->failed; attempt++) {
        unsigned li;
        struct prop *p;
        if (!step_until(r, has_leader, NULL, SETTLE_MS)) {
            return 0;
        }
        li = raft_fixture_leader_index(&r->f);
        p = submit(r, li, P_SET, below(r, N_KEYS));
        if (p == NULL) {
            step(r);
            continue;
        }
        step_until(r, prop_done, p, ACK_WAIT_MS);
        if (p->n_cb > 0 && p->status == FLIP_OK) {
            return p->applied_at;
        }
    }
    return 0;
}

static void final_checks(struct run *r)
{
    char desc[1024];
    uint64_t target = 0;
    int settled = 0;

    memset(r->cut_drop, 0, sizeof r->cut_drop);
    memset(r->cut_refuse, 0, sizeof r->cut_refuse);
    for (unsigned i = 0; i < r->n; i++) {
        if (!alive(r, i)) {
            revive_server(r, i, 0);
        }
        raft_fixture_io_fault(&r->f, i, -1, 0);
        /* The fixture's election timeouts are fixed per server, not drawn
         * per round: two equal ones can split the vote forever. */
        raft_fixture_set_randomized_election_timeout(&r->f, i,
                                                     ELECTION_MS + 150 * i);
        raft_fixture_set_network_latency(&r->f, i, 15);
        set_disk_latency(r, i, 10);
    }
    sync_links(r);
    /* A snapshot restored at a barrier index leaves that store's applied
     * index past the last command; another write evens them out. */
    for (int round = 0; round < FINAL_ROUNDS && !r->failed && !settled;
         round++) {
        target = final_write(r);
        if (r->failed) {
            return;
        }
        if (target == 0) {
            describe(r, desc, sizeof desc);
            fail(r, "STUCK: no write acknowledged after healing: %s", desc);
            return;
        }
        if (!step_until(r, all_applied, &target, SETTLE_MS)) {
            describe(r, desc, sizeof desc);
            fail(r, "STUCK: not every server applied %llu after healing: %s",
                 (unsigned long long)target, desc);
            return;
        }
        settled = 1;
        for (unsigned i = 0; i < r->n; i++) {
            if (store_applied_index(r->s[i].store) != target) {
                settled = 0;
            }
        }
    }
    if (r->failed) {
        return;
    }
    if (!settled) {
        describe(r, desc, sizeof desc);
        fail(r, "stores never reached the same applied index: %s", desc);
        return;
    }
    r->st->last_index = target;
    uint64_t h0 = store_hash(r->s[0].store);
    for (unsigned i = 1; i < r->n; i++) {
        if (store_hash(r->s[i].store) != h0) {
            fail(r, "DIVERGENCE: store %u differs from store 0 at index %llu",
                 i, (unsigned long long)target);
            return;
        }
    }
    for (unsigned i = 0; i < r->n; i++) {
        for (int k = 0; k < N_KEYS; k++) {
            uint64_t cur[2];
            store_rev(r, i, k, cur);
            if (cur[0] != r->model[k].rev || cur[1] != r->model[k].create) {
                fail(r,
                     "model: server %u key %s at revision %llu (created "
                     "%llu), model says %llu (%llu)",
                     i, keys[k], (unsigned long long)cur[0],
                     (unsigned long long)cur[1],
                     (unsigned long long)r->model[k].rev,
                     (unsigned long long)r->model[k].create);
                return;
            }
        }
    }
}

/* ---- setup and teardown -----------------------------------------------------
 */

static void silent_emit(struct raft_tracer *t, int type, const void *info)
{
    (void)t;
    (void)type;
    (void)info;
}

static struct raft_tracer silent_tracer = { NULL, 2, silent_emit };

static int setup(struct run *r, unsigned snap_threshold, unsigned trailing)
{
    struct raft_configuration conf;
    unsigned inflight = pct(r, 20) ? between(r, 1, 4) : 0;
    int pre_vote = r->st->pre_vote;

    /* Keep trailing above the in-flight window, as flipd's defaults do
     * (trailing 2048, 32 in flight). Otherwise a follower can run more than
     * `trailing` entries past the leader's view of it (acks lost), compact
     * them, and then reject every probe below its trail ("missing previous
     * entry") while ignoring the leader's older InstallSnapshot ("have more
     * recent snapshot"): a livelock in libraft 0.22.1 (seed 9868 showed it
     * with trailing 4 and 32 in flight). */
    if (snap_threshold != 0 && !r->o->raw &&
        (inflight == 0 || inflight >= trailing)) {
        inflight = trailing > 1 ? trailing - 1 : 1;
    }

    if (raft_fixture_init(&r->f) != 0) {
        fail(r, "raft_fixture_init failed");
        return -1;
    }
    r->fixture_up = 1;
    for (unsigned i = 0; i < r->n; i++) {
        struct srv *s = &r->s[i];
        struct raft *rf;
        s->run = r;
        s->i = i;
        snprintf(s->dir, sizeof s->dir, "%s/s%u", r->o->dir, i);
        empty_dir(s->dir);
        if (store_open(&s->store, s->dir, MAPSIZE) != FLIP_OK) {
            fail(r, "store_open %s failed", s->dir);
            return -1;
        }
        fsm_init(&s->fsm, s->store);
        s->fsm.observer.data = s;
        s->fsm.observer.on_applied = on_applied;
        s->fsm.observer.on_restored = on_restored;
        if (r->o->gate != STRESS_GATE_OFF) {
            s->fsm.gate = gate_prod;
            s->fsm.gate_data = s;
        }
        s->orig_apply = s->fsm.raft_fsm.apply;
        s->orig_snapshot = s->fsm.raft_fsm.snapshot;
        s->fsm.raft_fsm.apply = wrap_apply;
        s->fsm.raft_fsm.snapshot = wrap_snapshot;
        if (raft_fixture_grow(&r->f, &s->fsm.raft_fsm) != 0) {
            fail(r, "raft_fixture_grow failed");
            return -1;
        }
        rf = raft_of(r, i);
        s->fsm.raft = rf;
        if (!r->o->trace) {
            rf->tracer = &silent_tracer;
        }
        raft_set_pre_vote(rf, pre_vote != 0);
        if (snap_threshold != 0) {
            raft_set_snapshot_threshold(rf, snap_threshold);
            raft_set_snapshot_trailing(rf, trailing);
        }
        if (inflight != 0) {
            raft_set_max_inflight_entries(rf, inflight);
        }
        s->io = rf->io;
        s->orig_append = s->io->append;
        s->io->append = wrap_append;
        s->orig_send = s->io->send;
        s->io->send = wrap_send;
        s->orig_start = s->io->start;
        s->io->start = wrap_start;
        s->orig_truncate = s->io->truncate;
        s->io->truncate = wrap_truncate;
        s->orig_snapshot_put = s->io->snapshot_put;
        s->io->snapshot_put = wrap_snapshot_put;
        if (r->o->shim) {
            ioshim_init(&s->shim, rf, s->io);
            s->io->send = shim_send;
            s->io->start = shim_start;
            s->io->snapshot_put = shim_snapshot_put;
            s->io->snapshot_get = shim_snapshot_get;
            s->io->load = shim_load;
            s->io->truncate = shim_truncate;
            s->io->append = shim_append;
        }
        s->disk_latency = 10; /* fixture default */
    }
    if (raft_fixture_configuration(&r->f, r->n, &conf) != 0) {
        fail(r, "raft_fixture_configuration failed");
        return -1;
    }
    if (raft_fixture_bootstrap(&r->f, &conf) != 0) {
        raft_configuration_close(&conf);
        fail(r, "raft_fixture_bootstrap failed");
        return -1;
    }
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < r->n; i++) {
        r->s[i].io_n = 1; /* the bootstrap configuration entry */
    }
    if (raft_fixture_start(&r->f) != 0) {
        fail(r, "raft_fixture_start failed");
        return -1;
    }
    for (unsigned i = 0; i < r->n; i++) {
        hold(&r->s[i]); /* node.c holds snapshots at start-up */
        host_new(r, i);
    }
    return 0;
}

static void teardown(struct run *r)
{
    if (r->fixture_up) {
        r->closing = 1;
        /* Flushes pending I/O (may still apply) and fires every pending
         * apply callback with RAFT_LEADERSHIPLOST. */
        raft_fixture_close(&r->f);
    }
    /* Then what flipd does after raft closed: answer what is left. */
    while (r->hosts != NULL) {
        struct host *h = r->hosts;
        r->hosts = h->next;
        if (h->armed[PROPOSE_DEFER]) {
            h->armed[PROPOSE_DEFER] = 0;
            propose_fire(&h->pr, PROPOSE_DEFER);
        }
        propose_close(&h->pr);
        free(h);
    }
    for (size_t k = 0; k < r->n_props; k++) {
        struct prop *p = r->props[k];
        if (p->n_cb != 1 && r->fixture_up) {
            fail(r, "proposal %llu got %d callbacks",
                 (unsigned long long)p->seq, p->n_cb);
        }
        free(p);
    }
    for (size_t k = 0; k < r->n_reads; k++) {
        if (r->reads[k]->n_cb != 1 && r->fixture_up) {
            fail(r, "read %zu got %d callbacks", k, r->reads[k]->n_cb);
        }
        free(r->reads[k]);
    }
    free(r->reads);
    for (unsigned i = 0; i < r->n; i++) {
        if (r->o->shim) {
            ioshim_close(&r->s[i].shim);
            r->st->shimmed += r->s[i].shim.n_terms_fixed;
            r->st->deferred += r->s[i].shim.n_deferred;
            r->st->leaks += r->s[i].shim.n_freed;
        }
        store_close(r->s[i].store);
        r->s[i].store = NULL;
        empty_dir(r->s[i].dir);
        free(r->s[i].appends);
    }
    free(r->props);
    free(r->refs);
    free(r->snaps);
}

int stress_run_seed(uint64_t seed,
                    const struct stress_opts *o,
                    struct stress_stats *st,
                    char *err,
                    size_t errlen)
{
    struct run *r = calloc(1, sizeof *r);
    unsigned nodes;
    unsigned threshold = 0;
    unsigned trailing = 0;
    unsigned profile;
    int faults;
    raft_time end;
    int rv;

    if (r == NULL) {
        abort();
    }
    memset(st, 0, sizeof *st);
    err[0] = '\0';
    r->o = o;
    r->st = st;
    r->err = err;
    r->errlen = errlen;
    r->rng = seed * 0x2545f4914f6cdd1dull + 0x9e3779b97f4a7c15ull;
    r->seed = seed;
    r->fingerprint = FNV0;
    current_run = r;

    /* The scenario: every draw happens whatever the options override, so
     * --nodes/--io-faults change nothing else about a seed. */
    nodes = pct(r, 25) ? 5 : 3;
    st->pre_vote = pct(r, 50);
    profile = below(r, 100);
    if (profile < 40) {
        threshold = 16;
        trailing = 4;
    } else if (profile < 75) {
        threshold = between(r, 8, 40);
        trailing = between(r, 1, 12);
    }
    faults = pct(r, 15);
    r->keep = (uint64_t[]){ 0, 3, 10, 50 }[below(r, 4)];
    r->gap_max = pct(r, 50) ? 255 : 600;

    r->n = o->nodes != 0 ? o->nodes : nodes;
    r->io_faults = o->io_faults >= 0 ? o->io_faults : faults;
    st->nodes = r->n;
    st->snap_threshold = threshold;
    st->io_faults = r->io_faults;

    if (setup(r, threshold, trailing) == 0) {
        raft_time next = now(r) + between(r, 5, r->gap_max);
        end = now(r) + o->chaos_ms;
        while (!r->failed && now(r) < end) {
            step(r);
            if (now(r) >= r->window_end) {
                r->calm = pct(r, 35);
                r->window_end = now(r) + between(r, 500, 3000);
            }
            if (now(r) >= next) {
                act(r);
                next = now(r) + between(r, 5, r->gap_max);
            }
        }
        if (!r->failed) {
            final_checks(r);
        }
    }
    st->steps = r->steps;
    st->sim_ms = r->fixture_up ? now(r) : 0;
    teardown(r);
    if (!r->failed && o->verbose) {
        snprintf(err, errlen, "fp=%016llx", (unsigned long long)r->fingerprint);
    }
    rv = r->known ? 2 : r->failed ? 1 : 0;
    current_run = NULL;
    free(r);
    return rv;
}
