/* The raft FSM over LMDB; see fsm.h for the happy path and failure modes. */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/command.h"
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
 * allocation on the apply path; LMDB copies it on put). */
static size_t pack_flag(const Flip__Flag *flag, uint8_t *out)
{
    size_t len = flip__flag__get_packed_size(flag);

    if (len > FSM_RECORD_MAX) {
        die("record larger than its validated bound", FLIP_TOOBIG);
    }
    return flip__flag__pack(flag, out);
}

static int change_valid(const Flipcmd__Change *ch)
{
    const char *why = NULL;

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

/* Applies change `pos` of `cmd` at revision `index` inside `txn`. */
static void apply_change(struct store_txn *txn,
                         const Flipcmd__Command *cmd,
                         size_t pos,
                         uint64_t index,
                         struct fsm_outcome *out)
{
    const Flipcmd__Change *ch = cmd->changes[pos];
    Flip__Flag *cur = NULL;
    Flip__Flag rec = FLIP__FLAG__INIT;
    const void *old = NULL;
    size_t old_len = 0;
    size_t klen = strlen(ch->key);
    uint64_t cur_rev = 0;
    uint64_t create_rev = index;
    uint8_t packed[FSM_RECORD_MAX];
    size_t plen;
    int rv;

    rv = store_txn_get(txn, STORE_FLAGS, ch->key, klen, &old, &old_len);
    if (rv == FLIP_OK) {
        if (fsm_decode_record(old, old_len, &cur) != FLIP_OK) {
            die("stored record does not decode", FLIP_CORRUPT);
        }
        cur_rev = cur->revision;
        create_rev = cur->has_create_revision ? cur->create_revision : cur_rev;
        fsm_free_record(cur);
    } else if (rv != FLIP_NOTFOUND) {
        die("read", rv);
    }
    if (ch->has_expected_revision && ch->expected_revision != cur_rev) {
        out->status = FSM_CONFLICT;
        out->revision = cur_rev;
        return;
    }
    if (ch->op == FLIPCMD__OP__DELETE && cur_rev == 0) {
        out->status = FSM_NOTFOUND;
        out->revision = 0;
        return;
    }
    rec.has_revision = 1;
    rec.revision = index;
    rec.has_create_revision = 1;
    rec.create_revision = create_rev;
    rec.actor = ch->actor;
    rec.reason = ch->reason;
    rec.has_time_ms = cmd->has_time_ms;
    rec.time_ms = cmd->time_ms;
    if (ch->op == FLIPCMD__OP__SET) {
        rec.value = ch->value;
        plen = pack_flag(&rec, packed);
        rv = store_put(txn, STORE_FLAGS, ch->key, klen, packed, plen);
    } else {
        rv = store_del(txn, STORE_FLAGS, ch->key, klen);
    }
    if (rv != FLIP_OK) {
        die("write flag", rv);
    }
    /* The change row carries the key; a deletion is a row without value. */
    rec.key = ch->key;
    plen = pack_flag(&rec, packed);
    rv = store_change_append(txn, index, (uint32_t)pos, packed, plen);
    if (rv != FLIP_OK) {
        die("append change", rv);
    }
    out->status = FSM_OK;
    out->revision = index;
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
        cmd = NULL;
    }
    rv = store_begin(f->store, &txn);
    if (rv != FLIP_OK) {
        die("begin", rv);
    }
    if (cmd != NULL) {
        for (size_t i = 0; i < cmd->n_changes; i++) {
            if (i >= FSM_MAX_CHANGES) {
                break;
            }
            if (!change_valid(cmd->changes[i]) || duplicate_key(cmd, i)) {
                outcomes[i].status = FSM_INVALID;
                outcomes[i].revision = 0;
                continue;
            }
            apply_change(txn, cmd, i, index, &outcomes[i]);
        }
        rv = store_change_trim(txn, cmd->changelog_keep);
        if (rv != FLIP_OK) {
            die("trim", rv);
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
