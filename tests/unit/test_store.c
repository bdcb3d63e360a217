/* The LMDB store: rows, prefix scans, applied index, change-log trimming,
 * and snapshot round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
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
