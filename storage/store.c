/* LMDB store; see store.h and layout.h. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "fault.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "snapshot.h"

static const char *const db_names[STORE_NDB] = { "flags", "changes", "meta" };

struct store
{
    MDB_env *env;
    MDB_dbi dbi[STORE_NDB];
    char dir[512];
    uint64_t applied;   /* cache of meta applied_index */
    uint64_t compacted; /* cache of meta compacted */
    uint64_t bytes[2];  /* cache of meta flag_bytes, change_bytes */
    unsigned psize;     /* LMDB's page size */
};

struct store_txn
{
    struct store *s;
    MDB_txn *txn;
    uint64_t applied;
    uint64_t compacted;
    uint64_t bytes[2]; /* flags, changes as of this txn (see store_bytes) */
    uint64_t appended; /* bytes of the change rows this txn appended */
    int bytes_dirty;   /* bytes changed: written to meta at commit */
};

static int map_err(int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS:
        return FLIP_OK;
    case MDB_NOTFOUND:
        return FLIP_NOTFOUND;
    case MDB_MAP_FULL:
        flip_errorf("store: %s: %s", what, mdb_strerror(rc));
        return FLIP_NOSPACE;
    case ENOSPC:
        flip_errorf("store: %s: %s", what, mdb_strerror(rc));
        return FLIP_NOSPACE;
    case ENOMEM:
        return FLIP_NOMEM;
    case MDB_READERS_FULL:
        return FLIP_BUSY; /* every reader slot taken: retry later */
    default:
        flip_errorf("store: %s: %s", what, mdb_strerror(rc));
        return FLIP_IOERR;
    }
}

static uint64_t meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
    MDB_val k = { strlen(name), (void *)(uintptr_t)name };
    MDB_val v;

    if (mdb_get(txn, dbi, &k, &v) != MDB_SUCCESS || v.mv_size != 8) {
        return 0;
    }
    return buf_get_u64be(v.mv_data);
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t x)
{
    uint8_t raw[8];
    MDB_val k = { strlen(name), (void *)(uintptr_t)name };
    MDB_val v = { 8, raw };

    buf_put_u64be(raw, x);
    return map_err(STORE_MDB("put", mdb_put(txn, dbi, &k, &v, 0)), "meta put");
}

/* ---- logical size (the budget's measure, see store_bytes) ---------------- */

static uint64_t row_bytes(const MDB_val *k, const MDB_val *v)
{
    return (uint64_t)k->mv_size + v->mv_size;
}

static int counted(enum store_db db)
{
    return db == STORE_FLAGS || db == STORE_CHANGES;
}

static const char *const bytes_key[2] = { "flag_bytes", "change_bytes" };

/* Sums the rows of the counted dbs: for a store written before the size
 * was kept, or restored from such a snapshot. The result depends only on
 * the content, so every replica computes the same numbers. */
static int recount_bytes(MDB_txn *txn, const MDB_dbi *dbi, uint64_t *out)
{
    for (int db = STORE_FLAGS; db <= STORE_CHANGES; db++) {
        MDB_cursor *cur = NULL;
        MDB_val k;
        MDB_val v;
        int rc = STORE_MDB("cursor_open", mdb_cursor_open(txn, dbi[db], &cur));
        if (rc != MDB_SUCCESS) {
            return map_err(rc, "cursor");
        }
        out[db] = 0;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            out[db] += row_bytes(&k, &v);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND) {
            return map_err(rc, "count");
        }
    }
    return FLIP_OK;
}

/* A size row is present exactly when the size is not 0, so a replica that
 * restored an empty store and one that never wrote hash alike. */
static int save_bytes(MDB_txn *txn, const MDB_dbi *dbi, const uint64_t *bytes)
{
    for (int db = STORE_FLAGS; db <= STORE_CHANGES; db++) {
        const char *name = bytes_key[db];
        MDB_val k = { strlen(name), (void *)(uintptr_t)name };
        int rv;
        if (bytes[db] > 0) {
            rv = meta_put_u64(txn, dbi[STORE_META], name, bytes[db]);
        } else {
            int rc = STORE_MDB("del", mdb_del(txn, dbi[STORE_META], &k, NULL));
            rv = rc == MDB_NOTFOUND ? FLIP_OK : map_err(rc, "meta del");
        }
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    return FLIP_OK;
}

/* Reads the size rows; a store with rows but no size (written by an older
 * flipd) gets them counted and recorded in `txn` (a write txn). */
static int load_bytes(MDB_txn *txn, const MDB_dbi *dbi, uint64_t *out)
{
    MDB_stat st;
    int rv;

    out[STORE_FLAGS] = meta_u64(txn, dbi[STORE_META], bytes_key[STORE_FLAGS]);
    out[STORE_CHANGES] =
        meta_u64(txn, dbi[STORE_META], bytes_key[STORE_CHANGES]);
    if (out[STORE_FLAGS] > 0 || out[STORE_CHANGES] > 0 ||
        mdb_stat(txn, dbi[STORE_CHANGES], &st) != MDB_SUCCESS ||
        st.ms_entries == 0) {
        return FLIP_OK;
    }
    rv = recount_bytes(txn, dbi, out);
    if (rv == FLIP_OK) {
        rv = save_bytes(txn, dbi, out);
    }
    return rv;
}

/* ---- crash-consistency markers (see layout.h) --------------------------- */

static void read_boot_id(char *out, size_t n)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    out[0] = '\0';
    if (f == NULL) {
        return;
    }
    if (fgets(out, (int)n, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
}

static int path_in(char *out, size_t n, const char *dir, const char *name)
{
    int len = snprintf(out, n, "%s/%s", dir, name);
    return len < 0 || (size_t)len >= n ? FLIP_INVALID : FLIP_OK;
}

/* Makes the creation or removal of a marker file durable: fsync of the
 * file covers its contents, not the directory entry, and on a filesystem
 * that does not order metadata a `clean` removed before a power loss could
 * come back and vouch for a torn environment. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rv;

    if (fd < 0) {
        return FLIP_IOERR;
    }
    rv = fsync(fd) == 0 ? FLIP_OK : FLIP_IOERR;
    close(fd);
    return rv;
}

/* The env runs with MDB_NOSYNC; after a reboot without a clean close its
 * pages may be torn, so it is discarded and raft replays into a fresh one. A
 * process crash (same boot) keeps every page in the page cache. */
static int check_markers(const char *dir)
{
    char path[600];
    char prev[64] = "";
    char now[64];
    FILE *f;
    int fd;

    read_boot_id(now, sizeof now);
    if (path_in(path, sizeof path, dir, "boot_id") != FLIP_OK) {
        return FLIP_INVALID;
    }
    f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(prev, sizeof prev, f) == NULL) {
            prev[0] = '\0';
        }
        fclose(f);
        char clean[600];
        path_in(clean, sizeof clean, dir, "clean");
        if (strcmp(prev, now) != 0 && access(clean, F_OK) != 0) {
            char data[600];
            flip_warnf(
                "store: machine rebooted without a clean close; "
                "discarding %s/data.mdb, raft will rebuild it",
                dir);
            path_in(data, sizeof data, dir, "data.mdb");
            unlink(data);
            path_in(data, sizeof data, dir, "lock.mdb");
            unlink(data);
        }
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        flip_errorf("store: %s: %s", path, strerror(errno));
        return FLIP_IOERR;
    }
    if (write(fd, now, strlen(now)) < 0 || fsync(fd) != 0) {
        close(fd);
        return FLIP_IOERR;
    }
    close(fd);
    path_in(path, sizeof path, dir, "clean");
    unlink(path);
    /* the new boot_id, the removed clean (and a discarded env) must be on
     * disk before anything is written into the env */
    if (sync_dir(dir) != FLIP_OK) {
        flip_errorf("store: fsync of %s: %s", dir, strerror(errno));
        return FLIP_IOERR;
    }
    return FLIP_OK;
}

static void mark_clean(const char *dir)
{
    char path[600];
    int fd;

    if (path_in(path, sizeof path, dir, "clean") != FLIP_OK) {
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
        /* without it a power loss may drop the marker: the next start then
         * rebuilds a good env from raft, which is slow but safe */
        sync_dir(dir);
    }
}

/* ---- open / close -------------------------------------------------------- */

size_t store_mapsize(uint64_t budget)
{
    uint64_t want = budget * 3 + ((uint64_t)256 << 20);

    if (budget == 0 || want < STORE_MAPSIZE_DEFAULT) {
        return STORE_MAPSIZE_DEFAULT;
    }
    return want > SIZE_MAX ? SIZE_MAX : (size_t)want;
}

static size_t grown_mapsize(const char *dir, size_t mapsize)
{
    char path[600];
    struct stat st;
    uint64_t grown;

    if (path_in(path, sizeof path, dir, "data.mdb") != FLIP_OK ||
        stat(path, &st) != 0) {
        return mapsize;
    }
    grown = (uint64_t)st.st_size + (uint64_t)st.st_size / 2;
    if (grown <= mapsize) {
        return mapsize;
    }
    flip_infof("store: data file is %lld bytes; map grown to %llu bytes",
               (long long)st.st_size, (unsigned long long)grown);
    return grown > SIZE_MAX ? SIZE_MAX : (size_t)grown;
}

int store_open(struct store **out, const char *dir, size_t mapsize)
{
    struct store *s = NULL;
    MDB_txn *txn = NULL;
    MDB_stat st;
    int rv;
    int rc;

    if (strlen(dir) >= sizeof s->dir) {
        return FLIP_INVALID;
    }
    rv = check_markers(dir);
    if (rv != FLIP_OK) {
        return rv;
    }
    s = flip_calloc(1, sizeof *s);
    if (s == NULL) {
        return FLIP_NOMEM;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    rc = mdb_env_create(&s->env);
    if (rc != MDB_SUCCESS) {
        rv = map_err(rc, "env create");
        goto err_after_alloc;
    }
    mdb_env_set_maxdbs(s->env, STORE_NDB);
    /* Every subscriber streaming a snapshot pins a read view; the default
     * 126 slots run out when a failed node's clients all move here. */
    mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
    mdb_env_set_mapsize(s->env, grown_mapsize(dir, mapsize));
    rc = mdb_env_open(s->env, dir, MDB_NOSYNC | MDB_NOTLS, 0644);
    if (rc != MDB_SUCCESS) {
        rv = map_err(rc, "env open");
        goto err_after_env;
    }
    rc = mdb_env_stat(s->env, &st);
    if (rc != MDB_SUCCESS) {
        rv = map_err(rc, "env stat");
        goto err_after_env;
    }
    s->psize = st.ms_psize;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS) {
        rv = map_err(rc, "txn begin");
        goto err_after_env;
    }
    for (int i = 0; i < STORE_NDB; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc != MDB_SUCCESS) {
            rv = map_err(rc, "dbi open");
            goto err_after_txn;
        }
    }
    s->applied = meta_u64(txn, s->dbi[STORE_META], "applied_index");
    s->compacted = meta_u64(txn, s->dbi[STORE_META], "compacted");
    rv = load_bytes(txn, s->dbi, s->bytes);
    if (rv != FLIP_OK) {
        goto err_after_txn;
    }
    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        rv = map_err(rc, "txn commit");
        goto err_after_env;
    }
    *out = s;
    return FLIP_OK;

err_after_txn:
    mdb_txn_abort(txn);
err_after_env:
    mdb_env_close(s->env);
err_after_alloc:
    flip_free(s);
    return rv;
}

void store_close(struct store *s)
{
    if (s == NULL) {
        return;
    }
    if (mdb_env_sync(s->env, 1) == MDB_SUCCESS) {
        mark_clean(s->dir);
    }
    mdb_env_close(s->env);
    flip_free(s);
}

int store_sync(struct store *s)
{
    return map_err(mdb_env_sync(s->env, 1), "sync");
}

int store_data_extent(struct store *s, uint64_t *end, uint64_t *limit)
{
    MDB_envinfo info;

    if (mdb_env_info(s->env, &info) != MDB_SUCCESS) {
        return FLIP_IOERR;
    }
    *end = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    *limit = info.me_mapsize;
    return FLIP_OK;
}

int store_data_fd(struct store *s)
{
    mdb_filehandle_t fd;

    if (mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS) {
        errno = EBADF;
        return -1;
    }
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

uint64_t store_applied_index(struct store *s)
{
    return s->applied;
}

uint64_t store_compacted(struct store *s)
{
    return s->compacted;
}

uint64_t store_bytes(struct store *s)
{
    return s->bytes[STORE_FLAGS] + s->bytes[STORE_CHANGES];
}

uint64_t store_flag_bytes(struct store *s)
{
    return s->bytes[STORE_FLAGS];
}

uint64_t store_txn_bytes(const struct store_txn *t)
{
    return t->bytes[STORE_FLAGS] + t->bytes[STORE_CHANGES];
}

uint64_t store_txn_floor_bytes(const struct store_txn *t)
{
    return t->bytes[STORE_FLAGS] + t->appended;
}

uint64_t store_count(struct store *s, enum store_db db)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    uint64_t n = 0;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != MDB_SUCCESS) {
        return 0;
    }
    if (mdb_stat(txn, s->dbi[db], &st) == MDB_SUCCESS) {
        n = st.ms_entries;
    }
    mdb_txn_abort(txn);
    return n;
}

/* ---- writes -------------------------------------------------------------- */

int store_begin(struct store *s, struct store_txn **out)
{
    struct store_txn *t = flip_malloc(sizeof *t);
    int rc;

    if (t == NULL) {
        return FLIP_NOMEM;
    }
    t->s = s;
    t->applied = s->applied;
    t->compacted = s->compacted;
    memcpy(t->bytes, s->bytes, sizeof t->bytes);
    t->bytes_dirty = 0;
    t->appended = 0;
    rc = STORE_MDB("txn_begin", mdb_txn_begin(s->env, NULL, 0, &t->txn));
    if (rc != MDB_SUCCESS) {
        flip_free(t);
        return map_err(rc, "txn begin");
    }
    *out = t;
    return FLIP_OK;
}

int store_commit(struct store_txn *t)
{
    struct store *s = t->s;
    int rv = t->bytes_dirty ? save_bytes(t->txn, s->dbi, t->bytes) : FLIP_OK;
    int rc;

    if (rv != FLIP_OK) {
        mdb_txn_abort(t->txn);
        flip_free(t);
        return rv; /* e.g. FLIP_NOSPACE for a full map, as store.h says */
    }
    rc = store_fault("commit");
    if (rc != 0) {
        mdb_txn_abort(t->txn); /* as a failed mdb_txn_commit does */
    } else {
        rc = mdb_txn_commit(t->txn);
    }
    if (rc == MDB_SUCCESS) {
        s->applied = t->applied;
        s->compacted = t->compacted;
        memcpy(s->bytes, t->bytes, sizeof s->bytes);
    }
    flip_free(t);
    return map_err(rc, "txn commit");
}

void store_abort(struct store_txn *t)
{
    if (t != NULL) {
        mdb_txn_abort(t->txn);
        flip_free(t);
    }
}

/* What the row at `k` counts in store_bytes now (0: absent or not
 * counted), in *out; a read error is returned, not counted as absent (the
 * size would then differ from the other replicas'). */
static int stored_bytes(struct store_txn *t,
                        enum store_db db,
                        MDB_val *k,
                        uint64_t *out)
{
    MDB_val old;
    int rc;

    *out = 0;
    if (!counted(db)) {
        return MDB_SUCCESS;
    }
    rc = STORE_MDB("get", mdb_get(t->txn, t->s->dbi[db], k, &old));
    if (rc == MDB_SUCCESS) {
        *out = row_bytes(k, &old);
    }
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/* Puts a row that replaces one of `before` counted bytes (0: a new row). */
static int put_row(struct store_txn *t,
                   enum store_db db,
                   MDB_val *k,
                   const void *val,
                   size_t vlen,
                   uint64_t before)
{
    MDB_val v = { vlen, (void *)(uintptr_t)val };
    int rc = STORE_MDB("put", mdb_put(t->txn, t->s->dbi[db], k, &v, 0));

    if (rc == MDB_SUCCESS && counted(db)) {
        t->bytes[db] = t->bytes[db] - before + row_bytes(k, &v);
        t->bytes_dirty = 1;
    }
    return map_err(rc, "put");
}

int store_put(struct store_txn *t,
              enum store_db db,
              const void *key,
              size_t klen,
              const void *val,
              size_t vlen)
{
    MDB_val k = { klen, (void *)(uintptr_t)key };
    uint64_t before = 0;
    int rc = stored_bytes(t, db, &k, &before);

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "get");
    }
    return put_row(t, db, &k, val, vlen, before);
}

int store_del(struct store_txn *t,
              enum store_db db,
              const void *key,
              size_t klen)
{
    MDB_val k = { klen, (void *)(uintptr_t)key };
    uint64_t before = 0;
    int rc = stored_bytes(t, db, &k, &before);

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "get");
    }
    rc = STORE_MDB("del", mdb_del(t->txn, t->s->dbi[db], &k, NULL));
    if (rc == MDB_SUCCESS && counted(db)) {
        t->bytes[db] -= before;
        t->bytes_dirty = 1;
    }
    return map_err(rc, "del");
}

int store_txn_first(struct store_txn *t,
                    enum store_db db,
                    const void *prefix,
                    size_t plen,
                    const void **key,
                    size_t *klen,
                    const void **val,
                    size_t *vlen)
{
    MDB_cursor *cur = NULL;
    MDB_val k = { plen, (void *)(uintptr_t)prefix };
    MDB_val v;
    int rc =
        STORE_MDB("cursor_open", mdb_cursor_open(t->txn, t->s->dbi[db], &cur));

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "cursor");
    }
    rc = STORE_MDB(
        "cursor_get",
        mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST));
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS) {
        return map_err(rc, "first");
    }
    if (plen > 0 &&
        (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)) {
        return FLIP_NOTFOUND;
    }
    *key = k.mv_data;
    *klen = k.mv_size;
    *val = v.mv_data;
    *vlen = v.mv_size;
    return FLIP_OK;
}

int store_txn_get(struct store_txn *t,
                  enum store_db db,
                  const void *key,
                  size_t klen,
                  const void **val,
                  size_t *vlen)
{
    MDB_val k = { klen, (void *)(uintptr_t)key };
    MDB_val v;
    int rc = STORE_MDB("get", mdb_get(t->txn, t->s->dbi[db], &k, &v));

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "get");
    }
    *val = v.mv_data;
    *vlen = v.mv_size;
    return FLIP_OK;
}

int store_txn_set_applied(struct store_txn *t, uint64_t index)
{
    int rv =
        meta_put_u64(t->txn, t->s->dbi[STORE_META], "applied_index", index);
    if (rv == FLIP_OK) {
        t->applied = index;
    }
    return rv;
}

int store_change_append(struct store_txn *t,
                        uint64_t revision,
                        uint32_t position,
                        const void *val,
                        size_t vlen)
{
    uint8_t key[STORE_CHANGE_KEY];
    MDB_val k = { sizeof key, key };
    int rv;

    store_change_key(key, revision, position);
    /* A change row is always new (its revision is the entry being
     * applied), so the apply path skips looking up a row to replace. */
    rv = put_row(t, STORE_CHANGES, &k, val, vlen, 0);
    if (rv == FLIP_OK) {
        t->appended += sizeof key + vlen;
    }
    return rv;
}

/* Deletes the oldest change rows, whole revisions at a time and never
 * one at or above `below`, while more than `keep` rows remain (keep 0: no
 * row bound) or the store is larger than `max_bytes` (0: no byte bound). */
static int trim(struct store_txn *t,
                uint64_t keep,
                uint64_t max_bytes,
                uint64_t below)
{
    MDB_cursor *cur = NULL;
    MDB_stat st;
    MDB_val k;
    MDB_val v;
    uint64_t rows;
    uint64_t highest = t->compacted;
    int rc;
    int rv = FLIP_OK;

    rc = STORE_MDB("stat", mdb_stat(t->txn, t->s->dbi[STORE_CHANGES], &st));
    if (rc != MDB_SUCCESS) {
        return map_err(rc, "stat");
    }
    rows = st.ms_entries;
    if ((keep == 0 || rows <= keep) &&
        (max_bytes == 0 || store_txn_bytes(t) <= max_bytes)) {
        return FLIP_OK;
    }
    rc = STORE_MDB("cursor_open",
                   mdb_cursor_open(t->txn, t->s->dbi[STORE_CHANGES], &cur));
    if (rc != MDB_SUCCESS) {
        return map_err(rc, "cursor");
    }
    /* Trim whole revisions only, so a revision is either fully retained or
     * fully compacted: resume logic compares against `compacted`. */
    for (;;) {
        uint64_t rev;
        rc = STORE_MDB("cursor_get", mdb_cursor_get(cur, &k, &v, MDB_FIRST));
        if (rc != MDB_SUCCESS || k.mv_size != STORE_CHANGE_KEY) {
            break;
        }
        rev = store_change_key_revision(k.mv_data);
        if (rev >= below) {
            break;
        }
        if (rev != highest && (keep == 0 || rows <= keep) &&
            (max_bytes == 0 || store_txn_bytes(t) <= max_bytes)) {
            break;
        }
        t->bytes[STORE_CHANGES] -= row_bytes(&k, &v);
        t->bytes_dirty = 1;
        rc = STORE_MDB("cursor_del", mdb_cursor_del(cur, 0));
        if (rc != MDB_SUCCESS) {
            rv = map_err(rc, "trim");
            goto out;
        }
        rows--;
        highest = rev;
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        /* a read error is not the end of the log: trimming less than the
         * other replicas would make this store differ from theirs */
        rv = map_err(rc, "trim");
        goto out;
    }
    if (highest != t->compacted) {
        rv = meta_put_u64(t->txn, t->s->dbi[STORE_META], "compacted", highest);
        if (rv == FLIP_OK) {
            t->compacted = highest;
        }
    }
out:
    mdb_cursor_close(cur);
    return rv;
}

int store_change_trim(struct store_txn *t, uint64_t keep)
{
    if (keep == 0) {
        return FLIP_OK;
    }
    return trim(t, keep, 0, UINT64_MAX);
}

int store_change_trim_bytes(struct store_txn *t,
                            uint64_t max_bytes,
                            uint64_t below)
{
    return trim(t, 0, max_bytes, below);
}

/* ---- reads --------------------------------------------------------------- */

int store_get(struct store *s,
              enum store_db db,
              const void *key,
              size_t klen,
              store_visit_cb cb,
              void *arg)
{
    MDB_txn *txn = NULL;
    MDB_val k = { klen, (void *)(uintptr_t)key };
    MDB_val v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "read txn");
    }
    rc = mdb_get(txn, s->dbi[db], &k, &v);
    if (rc == MDB_SUCCESS) {
        cb(arg, key, klen, v.mv_data, v.mv_size);
    }
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? FLIP_NOTFOUND : map_err(rc, "get");
}

static int has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
    return plen == 0 ||
           (k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

/* Prefix scan inside an open read txn; see store_scan. */
static int scan_txn(struct store *s,
                    MDB_txn *txn,
                    enum store_db db,
                    const void *prefix,
                    size_t plen,
                    const void *after,
                    size_t alen,
                    size_t limit,
                    store_visit_cb cb,
                    void *arg,
                    int *more)
{
    MDB_cursor *cur = NULL;
    MDB_val k;
    MDB_val v;
    size_t n = 0;
    int rc;
    int rv = FLIP_OK;

    *more = 0;
    rc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (rc != MDB_SUCCESS) {
        return map_err(rc, "cursor");
    }
    if (after != NULL && alen > 0 &&
        (plen == 0 || memcmp(after, prefix, plen < alen ? plen : alen) >= 0)) {
        k.mv_size = alen;
        k.mv_data = (void *)(uintptr_t)after;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_SUCCESS && k.mv_size == alen &&
            memcmp(k.mv_data, after, alen) == 0) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    } else if (plen > 0) {
        k.mv_size = plen;
        k.mv_data = (void *)(uintptr_t)prefix;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    while (rc == MDB_SUCCESS && has_prefix(&k, prefix, plen)) {
        if (limit > 0 && n == limit) {
            *more = 1;
            break;
        }
        n++;
        if (cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size) != 0) {
            /* the visitor stopped early: there may be more rows */
            *more = 1;
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        rv = map_err(rc, "scan");
    }
    mdb_cursor_close(cur);
    return rv;
}

static int note_seen(void *arg,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    *(int *)arg = 1;
    return 1;
}

int store_has(struct store *s, enum store_db db, const void *key, size_t klen)
{
    int seen = 0;

    (void)store_get(s, db, key, klen, note_seen, &seen);
    return seen;
}

int store_scan(struct store *s,
               enum store_db db,
               const void *prefix,
               size_t plen,
               const void *after,
               size_t alen,
               size_t limit,
               store_visit_cb cb,
               void *arg,
               int *more)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    int rv;

    if (rc != MDB_SUCCESS) {
        *more = 0;
        return map_err(rc, "read txn");
    }
    rv = scan_txn(s, txn, db, prefix, plen, after, alen, limit, cb, arg, more);
    mdb_txn_abort(txn);
    return rv;
}

struct store_reader
{
    struct store *s;
    MDB_txn *txn;
    uint64_t applied;
    uint64_t compacted;
};

int store_reader_open(struct store *s, struct store_reader **out)
{
    struct store_reader *r = flip_malloc(sizeof *r);
    int rc;

    if (r == NULL) {
        return FLIP_NOMEM;
    }
    r->s = s;
    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != MDB_SUCCESS) {
        flip_free(r);
        return map_err(rc, "read txn");
    }
    r->applied = meta_u64(r->txn, s->dbi[STORE_META], "applied_index");
    r->compacted = meta_u64(r->txn, s->dbi[STORE_META], "compacted");
    *out = r;
    return FLIP_OK;
}

void store_reader_close(struct store_reader *r)
{
    if (r != NULL) {
        mdb_txn_abort(r->txn);
        flip_free(r);
    }
}

uint64_t store_reader_applied(const struct store_reader *r)
{
    return r->applied;
}

uint64_t store_reader_compacted(const struct store_reader *r)
{
    return r->compacted;
}

int store_reader_scan(struct store_reader *r,
                      enum store_db db,
                      const void *prefix,
                      size_t plen,
                      const void *after,
                      size_t alen,
                      size_t limit,
                      store_visit_cb cb,
                      void *arg,
                      int *more)
{
    return scan_txn(r->s, r->txn, db, prefix, plen, after, alen, limit, cb, arg,
                    more);
}

/* ---- snapshots (the format lives in snapshot.c) ------------------------- */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME  1099511628211ull

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Walks every row of every db in one read txn (store_hash). */
typedef void (*row_fn)(void *arg, int db, const MDB_val *k, const MDB_val *v);
typedef void (*db_fn)(void *arg, int db, uint64_t rows);

static int walk_all(struct store *s, db_fn on_db, row_fn on_row, void *arg)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_stat st;
    MDB_val k;
    MDB_val v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    if (rc != MDB_SUCCESS) {
        return map_err(rc, "read txn");
    }
    for (int db = 0; db < STORE_NDB; db++) {
        rc = mdb_stat(txn, s->dbi[db], &st);
        if (rc != MDB_SUCCESS) {
            break;
        }
        on_db(arg, db, st.ms_entries);
        rc = mdb_cursor_open(txn, s->dbi[db], &cur);
        if (rc != MDB_SUCCESS) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == MDB_SUCCESS) {
            on_row(arg, db, &k, &v);
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND) {
            break;
        }
        rc = MDB_SUCCESS;
    }
    mdb_txn_abort(txn);
    return map_err(rc, "walk");
}

int store_snapshot(struct store *s,
                   uint64_t index,
                   void *(*alloc)(size_t),
                   void **buf,
                   size_t *len)
{
    struct store_reader *r = NULL;
    uint64_t at = 0;
    int rv = store_reader_open(s, &r);

    *buf = NULL;
    *len = 0;
    if (rv != FLIP_OK) {
        return rv;
    }
    if (store_reader_applied(r) != index) {
        /* a header below or above its content is review finding M4 */
        store_reader_close(r);
        return FLIP_INVALID;
    }
    rv = snapshot_write(r, alloc, NULL, buf, len, &at);
    store_reader_close(r);
    return rv;
}

int store_snapshot_index(const void *buf, size_t len, uint64_t *index)
{
    return snapshot_index(buf, len, index);
}

static int restore_row(void *arg,
                       enum store_db db,
                       const void *key,
                       size_t klen,
                       const void *val,
                       size_t vlen)
{
    return store_put(arg, db, key, klen, val, vlen);
}

int store_restore(struct store *s, const void *buf, size_t len)
{
    struct store_txn *t = NULL;
    uint64_t index;
    uint64_t applied;
    int rv;
    int rc;

    /* everything is checked before the store is touched */
    if (snapshot_index(buf, len, &index) != FLIP_OK ||
        snapshot_check(buf, len) != FLIP_OK) {
        return FLIP_CORRUPT;
    }
    rv = store_begin(s, &t);
    if (rv != FLIP_OK) {
        return rv;
    }
    for (int db = 0; db < STORE_NDB; db++) {
        rc = STORE_MDB("drop", mdb_drop(t->txn, s->dbi[db], 0));
        if (rc != MDB_SUCCESS) {
            rv = map_err(rc, "drop");
            goto err;
        }
    }
    /* counted afresh as the rows go in: the snapshot's own size rows may
     * be missing (an older flipd took it) */
    memset(t->bytes, 0, sizeof t->bytes);
    t->bytes_dirty = 1;
    rv = snapshot_rows(buf, len, restore_row, t);
    if (rv != FLIP_OK) {
        goto err;
    }
    /* The content's own applied index, written with it, is the truth: a
     * snapshot of an older flipd may carry raft's index in its header
     * instead (review M4). The header only stands in for a snapshot
     * without that row (an empty store). */
    applied = meta_u64(t->txn, s->dbi[STORE_META], "applied_index");
    rv = store_txn_set_applied(t, applied != 0 ? applied : index);
    if (rv != FLIP_OK) {
        goto err;
    }
    t->compacted = meta_u64(t->txn, s->dbi[STORE_META], "compacted");
    return store_commit(t);

err:
    store_abort(t);
    return rv;
}

struct hash_state
{
    uint64_t h;
};

static void hash_db(void *arg, int db, uint64_t rows)
{
    struct hash_state *hs = arg;
    hs->h = fnv1a(hs->h, &db, sizeof db);
    hs->h = fnv1a(hs->h, &rows, sizeof rows);
}

static void hash_row(void *arg, int db, const MDB_val *k, const MDB_val *v)
{
    struct hash_state *hs = arg;
    (void)db;
    hs->h = fnv1a(hs->h, k->mv_data, k->mv_size);
    hs->h = fnv1a(hs->h, v->mv_data, v->mv_size);
}

uint64_t store_hash(struct store *s)
{
    struct hash_state hs = { FNV_OFFSET };
    walk_all(s, hash_db, hash_row, &hs);
    return hs.h;
}
