/* The raft FSM over LMDB; see fsm.h for the happy path and failure modes. */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "dedup.h"
#include "storage/identity.h"

static void die(const char *what, int rv)
{
    flip_errorf("fsm: %s: %s; aborting so raft can replay on restart", what,
                flip_strerror(rv));
    abort();
}

int fsm_decode_record(const void *buf, size_t len, Flip__Flag **out)
{
    *out = flip__flag__unpack(&codec_allocator, len, buf);
    return *out == NULL ? FLIP_CORRUPT : FLIP_OK;
}

void fsm_free_record(Flip__Flag *flag)
{
    if (flag != NULL) {
        flip__flag__free_unpacked(flag, &codec_allocator);
    }
}

/* A packed record: at most a 64 KiB value, a 256-byte key, 128-byte actor,
 * 1 KiB reason and a few varints (change_valid checked the sizes). */
#define FSM_RECORD_MAX (CODEC_VALUE_MAX + 4096)

/* Packs `flag` into `out` (FSM_RECORD_MAX bytes, the caller's stack: no
 * allocation on the apply path; LMDB copies it on put). FLIP_TOOBIG when
 * it does not fit: every replica computes the same size. */
static int pack_flag(const Flip__Flag *flag, uint8_t *out, size_t *len)
{
    *len = flip__flag__get_packed_size(flag);
    if (*len > FSM_RECORD_MAX) {
        return FLIP_TOOBIG;
    }
    flip__flag__pack(flag, out);
    return FLIP_OK;
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
    flip_warnf("fsm: entry %llu: change to %s refused: %s",
               (unsigned long long)index, ch->key != NULL ? ch->key : "?",
               why);
    set_outcome(out, FSM_INVALID, 0);
}

/* The flag as stored now: revision (0 = absent), create revision, value
 * type. FLIP_CORRUPT for a record that does not decode. */
struct current
{
    uint64_t rev;
    uint64_t create_rev;
    Flip__Value__KindCase kind;
    size_t bytes; /* key + record, as store_bytes counts it */
};

static int read_current(struct store_txn *txn,
                        const char *key,
                        size_t klen,
                        struct current *cur)
{
    Flip__Flag *rec = NULL;
    const void *old = NULL;
    size_t old_len = 0;
    int rv;

    memset(cur, 0, sizeof *cur);
    rv = store_txn_get(txn, STORE_FLAGS, key, klen, &old, &old_len);
    if (rv == FLIP_NOTFOUND) {
        return FLIP_OK;
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    if (fsm_decode_record(old, old_len, &rec) != FLIP_OK) {
        return FLIP_CORRUPT;
    }
    cur->rev = rec->revision;
    cur->create_rev =
        rec->has_create_revision ? rec->create_revision : rec->revision;
    cur->kind = rec->value != NULL ? rec->value->kind_case
                                   : FLIP__VALUE__KIND__NOT_SET;
    cur->bytes = klen + old_len;
    fsm_free_record(rec);
    return FLIP_OK;
}

/* Size of the change row that goes with a flag record of `plen` bytes:
 * the row key, the record and its key field (tag + length + key). */
static uint64_t change_row_bytes(size_t plen, size_t klen)
{
    return STORE_CHANGE_KEY + plen + klen + 3;
}

/* What a SET adds to store_bytes: its record's growth (0 for a record no
 * larger than the one it replaces) and its change row. */
static uint64_t growth(const struct current *cur, size_t klen, size_t plen)
{
    uint64_t rec = klen + plen;

    return (rec > cur->bytes ? rec - cur->bytes : 0) +
           change_row_bytes(plen, klen);
}

/* Room for a SET that grows the store by `grow` bytes: the oldest
 * change-log rows (history, not state) go first; FSM_STORE_FULL when the
 * live flags alone leave no room. Deterministic: it depends only on the
 * entry and the store. */
static int make_room(struct store_txn *txn,
                     uint64_t max,
                     uint64_t grow,
                     uint64_t index,
                     int *full)
{
    int rv;

    *full = 0;
    if (max == 0 || store_txn_bytes(txn) + grow <= max) {
        return FLIP_OK;
    }
    if (grow > max) {
        *full = 1;
        return FLIP_OK;
    }
    rv = store_change_trim_bytes(txn, max - grow, index);
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
    Flip__Flag rec = FLIP__FLAG__INIT;
    Flip__Value value;
    struct current cur;
    size_t klen = strlen(ch->key);
    uint8_t packed[FSM_RECORD_MAX];
    size_t plen = 0;
    int full = 0;
    int rv;

    rv = read_current(txn, ch->key, klen, &cur);
    if (rv == FLIP_CORRUPT) {
        reject(f, ch, index, "the stored record does not decode", out);
        return FLIP_OK;
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    if (ch->has_expected_revision && ch->expected_revision != cur.rev) {
        set_outcome(out, FSM_CONFLICT, cur.rev);
        return FLIP_OK;
    }
    if (ch->op == FLIPCMD__OP__DELETE && cur.rev == 0) {
        set_outcome(out, FSM_NOTFOUND, 0);
        return FLIP_OK;
    }
    if (ch->op == FLIPCMD__OP__SET && cur.rev != 0 && ch->has_change_type &&
        !ch->change_type && cur.kind != ch->value->kind_case) {
        set_outcome(out, FSM_TYPE_MISMATCH, cur.rev);
        return FLIP_OK;
    }
    rec.has_revision = 1;
    rec.revision = index;
    rec.has_create_revision = 1;
    rec.create_revision = cur.rev != 0 ? cur.create_rev : index;
    rec.actor = ch->actor;
    rec.reason = ch->reason;
    rec.has_time_ms = cmd->has_time_ms;
    rec.time_ms = cmd->time_ms;
    if (ch->op == FLIPCMD__OP__SET) {
        command_value_copy(ch->value, &value);
        rec.value = &value;
        if (pack_flag(&rec, packed, &plen) != FLIP_OK) {
            reject(f, ch, index, "record larger than its bound", out);
            return FLIP_OK;
        }
        rv = make_room(txn, cmd->max_store_bytes, growth(&cur, klen, plen),
                       index, &full);
        if (rv != FLIP_OK) {
            return rv;
        }
        /* Only a set that grows the live state is refused: flipping an
         * existing kill switch must work on a full store. */
        if (full && klen + plen > cur.bytes) {
            set_outcome(out, FSM_STORE_FULL, cur.rev);
            return FLIP_OK;
        }
        rv = store_put(txn, STORE_FLAGS, ch->key, klen, packed, plen);
    } else {
        rv = store_del(txn, STORE_FLAGS, ch->key, klen);
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    /* The change row carries the key; a deletion is a row without value. */
    rec.key = ch->key;
    if (pack_flag(&rec, packed, &plen) != FLIP_OK) {
        return FLIP_TOOBIG; /* cannot be: the record without key fit */
    }
    rv = store_change_append(txn, index, (uint32_t)pos, packed, plen);
    if (rv != FLIP_OK) {
        return rv;
    }
    set_outcome(out, FSM_OK, index);
    out->create_revision = rec.create_revision;
    return FLIP_OK;
}

/* One change: a repeat of a recorded request id gets the recorded
 * outcome; otherwise it is applied and, with an id, its outcome recorded. */
static int apply_one(struct fsm *f,
                     struct store_txn *txn,
                     const Flipcmd__Command *cmd,
                     size_t i,
                     uint64_t index,
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
        have_id = dedup_id_parse(ch->request_id, &id, &why) == FLIP_OK;
    }
    if (have_id) {
        rv = dedup_lookup(txn, &id, out);
        if (rv == FLIP_OK) {
            f->n_duplicate++;
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
        return dedup_record(txn, &id, cmd->time_ms, out);
    }
    return FLIP_OK;
}

static int apply_command(struct fsm *f,
                         struct store_txn *txn,
                         const Flipcmd__Command *cmd,
                         uint64_t index,
                         struct fsm_outcome *outcomes)
{
    size_t n = cmd->n_changes < FSM_MAX_CHANGES ? cmd->n_changes
                                                : FSM_MAX_CHANGES;
    uint64_t window = cmd->dedup_window_ms != 0 ? cmd->dedup_window_ms
                                                : DEDUP_WINDOW_DEFAULT_MS;
    int rv = FLIP_OK;

    for (size_t i = 0; i < n && rv == FLIP_OK; i++) {
        rv = apply_one(f, txn, cmd, i, index, &outcomes[i]);
    }
    if (rv == FLIP_OK) {
        rv = store_change_trim(txn, cmd->changelog_keep);
    }
    if (rv == FLIP_OK && cmd->has_time_ms) {
        rv = dedup_expire(txn, cmd->time_ms, window, n + DEDUP_EXPIRE_SLACK);
    }
    return rv;
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
    if (command_decode(buf->base, buf->len, &cmd) != FLIP_OK) {
        f->n_invalid++;
        flip_warnf("fsm: entry %llu does not decode; recorded as a no-op",
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
    f->n_applied++;
    if (f->observer.on_applied != NULL) {
        f->observer.on_applied(f->observer.data, index, cmd, outcomes);
    }
    command_free(cmd);
    return 0;
}

static int fsm_snapshot(struct raft_fsm *rf,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    struct raft_buffer *b;
    void *data = NULL;
    size_t len = 0;
    int rv;

    /* libraft 0.22.1 applies committed entries on a follower before they
     * are on its own disk, and a local snapshot taken past last_stored
     * corrupts its log trail (docs/known-issues.md): wait until they are. */
    if (f->raft->last_stored < raft_last_applied(f->raft) ||
        (f->gate != NULL && !f->gate(f->gate_data))) {
        f->n_declined++;
        return RAFT_BUSY;
    }
    b = raft_malloc(sizeof *b);
    if (b == NULL) {
        return RAFT_NOMEM;
    }
    rv = store_snapshot(f->store, raft_last_applied(f->raft), raft_malloc,
                        &data, &len);
    if (rv != FLIP_OK) {
        raft_free(data);
        raft_free(b);
        flip_errorf("fsm: snapshot failed: %s", flip_strerror(rv));
        return rv == FLIP_NOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    b->base = data;
    b->len = len;
    *bufs = b;
    *n_bufs = 1;
    flip_infof("fsm: snapshot at index %llu, %zu bytes",
               (unsigned long long)raft_last_applied(f->raft), len);
    return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    uint64_t index;
    int rv;

    rv = store_snapshot_index(buf->base, buf->len, &index);
    if (rv != FLIP_OK) {
        flip_errorf("fsm: snapshot header is corrupt");
        return RAFT_CORRUPT;
    }
    /* Normal restart: LMDB already holds this snapshot's state or newer. */
    if (index <= store_applied_index(f->store)) {
        raft_free(buf->base);
        return 0;
    }
    rv = store_restore(f->store, buf->base, buf->len);
    if (rv == FLIP_CORRUPT) {
        flip_errorf("fsm: snapshot at %llu failed validation",
                    (unsigned long long)index);
        return RAFT_CORRUPT;
    }
    if (rv != FLIP_OK) {
        die("restore", rv);
    }
    raft_free(buf->base);
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
    f->raft_fsm.version = 1;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm_apply;
    f->raft_fsm.snapshot = fsm_snapshot;
    f->raft_fsm.restore = fsm_restore;
}
