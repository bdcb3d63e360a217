/* The LMDB store: rows, prefix scans, applied index, change-log trimming,
 * and snapshot round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "../lib/shape.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "storage/snapshot.h"
#include "storage/store.h"

struct collect
{
    char keys[64][32];
    int n;
};

static int collect_visit(void *arg,
                         const void *key,
                         size_t klen,
                         const void *val,
                         size_t vlen)
{
    struct collect *c = arg;
    (void)val;
    (void)vlen;
    snprintf(c->keys[c->n], sizeof c->keys[0], "%.*s", (int)klen,
             (const char *)key);
    c->n++;
    return 0;
}

static void put(struct store *s, const char *k, const char *v, uint64_t idx)
{
    struct store_txn *t = NULL;
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_put(t, STORE_FLAGS, k, strlen(k), v, strlen(v)),
                 FLIP_OK);
    CHECK_EQ_INT(store_change_append(t, idx, 0, k, strlen(k)), FLIP_OK);
    CHECK_EQ_INT(store_txn_set_applied(t, idx), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
}

/* put/get/delete and prefix scans with paging. */
TEST(store_rows_and_scan, 10)
{
    char dir[256];
    struct store *s = NULL;
    struct collect c;
    struct store_txn *t = NULL;
    int more = 0;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    put(s, "a.1", "x", 1);
    put(s, "a.2", "y", 2);
    put(s, "a.3", "z", 3);
    put(s, "b.1", "w", 4);
    CHECK_EQ_INT(store_applied_index(s), 4);
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_scan(s, STORE_FLAGS, "a.", 2, NULL, 0, 0, collect_visit,
                            &c, &more),
                 FLIP_OK);
    CHECK_EQ_INT(c.n, 3);
    CHECK(strcmp(c.keys[2], "a.3") == 0);
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_scan(s, STORE_FLAGS, "a.", 2, "a.1", 3, 1, collect_visit,
                            &c, &more),
                 FLIP_OK);
    CHECK_EQ_INT(c.n, 1);
    CHECK(strcmp(c.keys[0], "a.2") == 0);
    CHECK(more);
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_del(t, STORE_FLAGS, "a.2", 3), FLIP_OK);
    CHECK_EQ_INT(store_del(t, STORE_FLAGS, "nope", 4), FLIP_NOTFOUND);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_get(s, STORE_FLAGS, "a.2", 3, collect_visit, &c),
                 FLIP_NOTFOUND);
    CHECK_EQ_INT(store_get(s, STORE_FLAGS, "a.3", 3, collect_visit, &c),
                 FLIP_OK);
    CHECK_EQ_INT(store_count(s, STORE_FLAGS), 3);
    store_close(s);
    /* reopen: applied index survives */
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_applied_index(s), 4);
    store_close(s);
    tmpdir_remove(dir);
}

/* An aborted txn leaves nothing behind, applied index included. */
TEST(store_abort, 10)
{
    char dir[256];
    struct store *s = NULL;
    struct store_txn *t = NULL;
    struct collect c;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_put(t, STORE_FLAGS, "k", 1, "v", 1), FLIP_OK);
    CHECK_EQ_INT(store_txn_set_applied(t, 9), FLIP_OK);
    store_abort(t);
    CHECK_EQ_INT(store_applied_index(s), 0);
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_get(s, STORE_FLAGS, "k", 1, collect_visit, &c),
                 FLIP_NOTFOUND);
    store_close(s);
    tmpdir_remove(dir);
}

/* The change log keeps the newest rows and records what it trimmed. */
TEST(store_change_trim, 10)
{
    char dir[256];
    struct store *s = NULL;
    struct store_txn *t = NULL;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    for (uint64_t i = 1; i <= 20; i++) {
        put(s, "k", "v", i);
    }
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_change_trim(t, 5), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    CHECK_EQ_INT(store_count(s, STORE_CHANGES), 5);
    CHECK_EQ_INT(store_compacted(s), 15);
    store_close(s);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_compacted(s), 15);
    store_close(s);
    tmpdir_remove(dir);
}

/* A snapshot restores into another store byte-identically; a corrupted one
 * is refused and leaves the target unchanged. */
TEST(store_snapshot_round_trip, 10)
{
    char d1[256];
    char d2[256];
    struct store *a = NULL;
    struct store *b = NULL;
    void *snap = NULL;
    size_t len = 0;
    uint64_t idx = 0;
    uint64_t before;

    tmpdir_make(d1, sizeof d1);
    tmpdir_make(d2, sizeof d2);
    CHECK_EQ_INT(store_open(&a, d1, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_open(&b, d2, 1u << 24), FLIP_OK);
    for (uint64_t i = 1; i <= 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "flag.%03llu", (unsigned long long)i);
        put(a, k, "value", i);
    }
    put(b, "other", "junk", 3);
    CHECK_EQ_INT(store_snapshot(a, 100, malloc, &snap, &len), FLIP_OK);
    CHECK_EQ_INT(store_snapshot_index(snap, len, &idx), FLIP_OK);
    CHECK_EQ_INT(idx, 100);
    before = store_hash(b);
    ((unsigned char *)snap)[len / 2] ^= 0x40;
    CHECK_EQ_INT(store_restore(b, snap, len), FLIP_CORRUPT);
    CHECK(store_hash(b) == before);
    ((unsigned char *)snap)[len / 2] ^= 0x40;
    CHECK_EQ_INT(store_restore(b, snap, len - 3), FLIP_CORRUPT);
    CHECK_EQ_INT(store_restore(b, snap, len), FLIP_OK);
    CHECK(store_hash(a) == store_hash(b));
    CHECK_EQ_INT(store_applied_index(b), 100);
    CHECK_EQ_INT(store_count(b, STORE_FLAGS), 100);
    free(snap);
    store_close(a);
    store_close(b);
    tmpdir_remove(d1);
    tmpdir_remove(d2);
}

/* ---- snapshot refusals ---------------------------------------------------
 * The format (storage/snapshot.h): "FLS1" | u32be version | u64be index,
 * per db: u32be db | u64be rows | rows of (u32be klen | u32be vlen | k | v),
 * then u64be FNV-1a of everything before it. */

static void put_be(uint8_t *p, uint64_t x, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
    }
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Recomputes the checksum, so that only the structure is wrong. */
static void reseal(uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < len - 8; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    put_be(p + len - 8, h, 8);
}

/* Every malformed snapshot (short, another magic, a newer version, a bad
 * checksum; and, with a valid checksum, dbs out of order, a row count or a
 * length past the end, an empty key, bytes left over) is refused with
 * FLIP_CORRUPT before the target is touched: content, applied index,
 * compacted point and size unchanged. A good one then restores all four
 * as the source has them, the in-memory compacted point included. */
TEST(store_restore_refusals, 20)
{
    char d1[256];
    char d2[256];
    struct store *a = NULL;
    struct store *b = NULL;
    struct store_txn *t = NULL;
    uint8_t *snap = NULL;
    uint8_t *bad = NULL;
    size_t len = 0;
    size_t first_row; /* offset of the flags db's first row */
    struct shape target;
    struct shape source;
    struct shape got;
    uint64_t idx = 0;

    tmpdir_make(d1, sizeof d1);
    tmpdir_make(d2, sizeof d2);
    CHECK_EQ_INT(store_open(&a, d1, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_open(&b, d2, 1u << 24), FLIP_OK);
    for (uint64_t i = 1; i <= 30; i++) {
        char k[16];
        snprintf(k, sizeof k, "flag.%02llu", (unsigned long long)(i % 9));
        put(a, k, "value", i);
    }
    CHECK_EQ_INT(store_begin(a, &t), FLIP_OK);
    CHECK_EQ_INT(store_change_trim(t, 10), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    CHECK_EQ_INT(store_compacted(a), 20);
    source = shape_of(a);
    put(b, "other", "junk", 3);
    target = shape_of(b);
    CHECK_EQ_INT(store_snapshot(a, 30, malloc, (void **)&snap, &len), FLIP_OK);
    bad = malloc(len + 16);
    CHECK(bad != NULL);
    first_row = 16 + 12;

    /* a store_snapshot at another index than the applied one is refused */
    {
        void *other = NULL;
        size_t olen = 0;
        CHECK_EQ_INT(store_snapshot(a, 29, malloc, &other, &olen),
                     FLIP_INVALID);
        CHECK(other == NULL);
    }

#define REFUSED(buf, n)                                           \
    do {                                                          \
        CHECK_EQ_INT(store_restore(b, (buf), (n)), FLIP_CORRUPT); \
        got = shape_of(b);                                        \
        shape_check(&got, &target);                               \
    } while (0)

    REFUSED(snap, 0);
    REFUSED(snap, 23); /* header + checksum is 24 */
    CHECK_EQ_INT(store_snapshot_index(snap, 23, &idx), FLIP_CORRUPT);
    memcpy(bad, snap, len);
    bad[0] = 'X'; /* another magic */
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    put_be(bad + 4, 2, 4); /* a newer format */
    reseal(bad, len);
    REFUSED(bad, len);
    CHECK_EQ_INT(store_snapshot_index(bad, len, &idx), FLIP_CORRUPT);
    memcpy(bad, snap, len);
    bad[len / 2] ^= 0x01; /* checksum mismatch */
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    put_be(bad + 16, 1, 4); /* the changes db where flags belong */
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    put_be(bad + 20, 1000000, 8); /* more rows than bytes */
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    /* an empty key: the first row's key bytes become part of its value,
     * so every length still adds up */
    put_be(
        bad + first_row + 4,
        (uint64_t)get_be32(snap + first_row) + get_be32(snap + first_row + 4),
        4);
    put_be(bad + first_row, 0, 4);
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    put_be(bad + first_row, 1u << 30, 4); /* a key past the end */
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len);
    put_be(bad + first_row + 4, 1u << 30, 4); /* a value past the end */
    reseal(bad, len);
    REFUSED(bad, len);
    memcpy(bad, snap, len - 8); /* bytes left over after the last db */
    memset(bad + len - 8, 0, 8);
    reseal(bad, len + 8);
    REFUSED(bad, len + 8);
    memcpy(bad, snap, len);
    put_be(bad + 20, 0, 8); /* rows dropped: the next db header is off */
    reseal(bad, len);
    REFUSED(bad, len);
#undef REFUSED
    /* the readers on their own, below store_restore's first check */
    CHECK_EQ_INT(snapshot_check(snap, 23), FLIP_CORRUPT);
    CHECK_EQ_INT(snapshot_rows(snap, 23, NULL, NULL), FLIP_CORRUPT);
    memcpy(bad, snap, 16); /* a header and nothing else */
    reseal(bad, 24);
    CHECK_EQ_INT(snapshot_check(bad, 24), FLIP_CORRUPT);

    CHECK_EQ_INT(store_restore(b, snap, len), FLIP_OK);
    got = shape_of(b);
    shape_check(&got, &source);
    store_close(b);
    CHECK_EQ_INT(store_open(&b, d2, 1u << 24), FLIP_OK);
    got = shape_of(b);
    shape_check(&got, &source);
    free(bad);
    free(snap);
    store_close(a);
    store_close(b);
    tmpdir_remove(d1);
    tmpdir_remove(d2);
}

/* Writes `text` as the store directory's recorded boot id. */
static void write_boot_id(const char *dir, const char *text)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof path, "%s/boot_id", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A process that writes the entry at `idx` and dies without closing the
 * store (no clean marker). */
static void crash_after_put(const char *dir, const char *k, uint64_t idx)
{
    pid_t pid;
    int status = 0;

    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        if (store_open(&s, dir, 1u << 24) != FLIP_OK) {
            _exit(1);
        }
        put(s, k, "v", idx);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The crash-consistency markers (storage/layout.h): after a reboot
 * without a clean close the env (MDB_NOSYNC, maybe torn) is discarded and
 * the store opens empty, for raft to replay into; after a clean close, or
 * a crash within the same boot, it opens as it was. A directory path too
 * long for the store, or one that does not exist, is refused. */
TEST(store_reboot_markers, 20)
{
    char dir[256];
    char path[600];
    char longdir[700];
    struct store *s = NULL;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    put(s, "k", "v", 7);
    store_close(s); /* clean */
    write_boot_id(dir, "another boot\n");
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_applied_index(s), 7); /* clean close: kept */
    store_close(s);

    crash_after_put(dir, "k2", 8); /* same boot: kept */
    snprintf(path, sizeof path, "%s/clean", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_applied_index(s), 8);
    store_close(s);

    crash_after_put(dir, "k3", 9); /* then a reboot: discarded */
    write_boot_id(dir, "another boot\n");
    CHECK_EQ_INT(store_open(&s, dir, 1u << 24), FLIP_OK);
    CHECK_EQ_INT(store_applied_index(s), 0);
    CHECK_EQ_INT(store_count(s, STORE_FLAGS), 0);
    store_close(s);

    memset(longdir, 'd', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    CHECK_EQ_INT(store_open(&s, longdir, 1u << 24), FLIP_INVALID);
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(store_open(&s, path, 1u << 24) != FLIP_OK);
    tmpdir_remove(dir);
}

/* A store written before the sizes were kept (rows, but no size rows in
 * meta) gets them counted when it opens, to the same figures; a data file
 * larger than the map asked for grows the map. Scans that start after a
 * key below the prefix or between rows, and first-row lookups that miss,
 * answer as store.h says. */
TEST(store_sizes_counted_and_scan_edges, 20)
{
    char dir[256];
    char key[16];
    struct store *s = NULL;
    struct store_txn *t = NULL;
    struct collect c;
    const void *k = NULL;
    const void *v = NULL;
    size_t kl = 0;
    size_t vl = 0;
    uint64_t bytes;
    uint64_t flag_bytes;
    int more = 0;

    tmpdir_make(dir, sizeof dir);
    CHECK_EQ_INT(store_open(&s, dir, 1u << 20), FLIP_OK);
    for (uint64_t i = 1; i <= 40; i++) {
        snprintf(key, sizeof key, "c.%02llu", (unsigned long long)i);
        put(s, key, "0123456789abcdef0123456789abcdef", i);
    }
    bytes = store_bytes(s);
    flag_bytes = store_flag_bytes(s);
    CHECK(bytes > flag_bytes && flag_bytes > 0);
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_del(t, STORE_META, "flag_bytes", 10), FLIP_OK);
    CHECK_EQ_INT(store_del(t, STORE_META, "change_bytes", 12), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    store_close(s);
    CHECK_EQ_INT(store_open(&s, dir, 4096), FLIP_OK); /* map grown */
    CHECK_EQ_INT(store_bytes(s), bytes);
    CHECK_EQ_INT(store_flag_bytes(s), flag_bytes);
    CHECK(store_has(s, STORE_META, "flag_bytes", 10)); /* recorded again */

    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_scan(s, STORE_FLAGS, "c.3", 3, "b", 1, 0, collect_visit,
                            &c, &more),
                 FLIP_OK); /* `after` below the prefix: from its start */
    CHECK_EQ_INT(c.n, 10);
    CHECK(strcmp(c.keys[0], "c.30") == 0);
    CHECK(!more);
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(store_scan(s, STORE_FLAGS, NULL, 0, "c.395", 5, 0,
                            collect_visit, &c, &more),
                 FLIP_OK); /* `after` between rows: from the next one */
    CHECK_EQ_INT(c.n, 1);
    CHECK(strcmp(c.keys[0], "c.40") == 0);
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_txn_first(t, STORE_FLAGS, "d.", 2, &k, &kl, &v, &vl),
                 FLIP_NOTFOUND);
    CHECK_EQ_INT(store_txn_first(t, STORE_FLAGS, "c.41", 4, &k, &kl, &v, &vl),
                 FLIP_NOTFOUND);
    CHECK_EQ_INT(store_txn_first(t, STORE_FLAGS, NULL, 0, &k, &kl, &v, &vl),
                 FLIP_OK);
    CHECK(kl == 4 && memcmp(k, "c.01", 4) == 0);
    store_abort(t);
    store_close(s);
    tmpdir_remove(dir);
}
