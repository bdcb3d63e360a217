/* The flag domain's on-disk bytes (storage/layout.h): the rows apply
 * writes into the flags db and the change log are compared, byte for
 * byte, with rows the FSM wrote before storage/flags.c existed (the
 * golden dump below), so existing data directories keep reading alike. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "storage/flags.h"
#include "storage/store.h"

#define T0 1700000000000

/* Written by raft/fsm.c before storage/flags.c (commit 0eaa305): keys,
 * then values, in hex; the flags db, "-", the change log. */
static const char golden[] =
    "612e737472 120522036f6666180620022a0474657374320038e1f7a7ffbc31\n"
    "632e696e74 12021053180320032a04746573743881d095ffbc31\n"
    "642e646f75626c65 120919000000000000d03f180420042a0474657374\n"
    "652e6a736f6e 120d2a0b7b2261223a5b312c325d7d180420042a0474657374320172\n"
    "-\n"
    "000000000000000200000000 "
    "0a05612e737472120422026f6e180220022a04746573743207736869702069743880d095ff"
    "bc31\n"
    "000000000000000300000000 "
    "0a06622e626f6f6c12020801180320032a04746573743881d095ffbc31\n"
    "000000000000000300000001 "
    "0a05632e696e7412021053180320032a04746573743881d095ffbc31\n"
    "000000000000000400000001 "
    "0a08642e646f75626c65120919000000000000d03f180420042a0474657374\n"
    "000000000000000400000002 "
    "0a06652e6a736f6e120d2a0b7b2261223a5b312c325d7d180420042a0474657374320172\n"
    "000000000000000500000000 "
    "0a06622e626f6f6c180520032a047465737438e0f7a7ffbc31\n"
    "000000000000000600000000 "
    "0a05612e737472120522036f6666180620022a0474657374320038e1f7a7ffbc31\n";

struct dump
{
    char text[8192];
    size_t len;
};

static void hex(struct dump *d, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        CHECK(d->len + 3 < sizeof d->text);
        d->len += (size_t)snprintf(d->text + d->len, sizeof d->text - d->len,
                                   "%02x", b[i]);
    }
}

static int dump_visit(void *arg,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen)
{
    struct dump *d = arg;

    hex(d, key, klen);
    CHECK(d->len + 2 < sizeof d->text);
    d->text[d->len++] = ' ';
    hex(d, val, vlen);
    d->text[d->len++] = '\n';
    d->text[d->len] = '\0';
    return 0;
}

/* Every row of the flags db and of the change log, as hex lines. */
static void dump_rows(struct store *s, struct dump *d)
{
    int more = 0;

    memset(d, 0, sizeof *d);
    CHECK_EQ_INT(
        store_scan(s, STORE_FLAGS, NULL, 0, NULL, 0, 0, dump_visit, d, &more),
        FLIP_OK);
    CHECK(d->len + 2 < sizeof d->text);
    d->text[d->len++] = '-';
    d->text[d->len++] = '\n';
    CHECK_EQ_INT(
        store_scan(s, STORE_CHANGES, NULL, 0, NULL, 0, 0, dump_visit, d, &more),
        FLIP_OK);
}

/* A fixed history through the real FSM: every value kind, a reason, an
 * update (create_revision kept), a delete, two changes in one entry. */
static void write_history(struct cluster *c)
{
    Flip__Value vb = FLIP__VALUE__INIT;
    Flip__Value vi = FLIP__VALUE__INIT;
    Flip__Value vd = FLIP__VALUE__INIT;
    Flip__Value vj = FLIP__VALUE__INIT;
    struct cluster_change one[] = {
        { .key = "a.str", .value = "on", .reason = "ship it" },
    };
    struct cluster_change two[] = {
        { .key = "b.bool", .v = &vb },
        { .key = "c.int", .v = &vi },
    };
    struct cluster_change three[] = {
        { .key = "a.str", .value = "off", .cas = 1, .expected = 0 },
        { .key = "d.double", .v = &vd },
        { .key = "e.json", .v = &vj, .reason = "r" },
    };
    struct cluster_change four[] = {
        { .key = "b.bool", .value = NULL },
    };
    struct cluster_change five[] = {
        { .key = "a.str", .value = "off", .reason = "" },
    };
    struct cluster_entry e[] = {
        { .changes = one, .n = 1, .time_ms = T0 },
        { .changes = two, .n = 2, .time_ms = T0 + 1 },
        { .changes = three, .n = 3, .time_ms = -1 },
        { .changes = four, .n = 1, .time_ms = T0 + 300000 },
        { .changes = five, .n = 1, .time_ms = T0 + 300001 },
    };
    uint64_t last = 0;

    vb.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    vb.bool_value = 1;
    vi.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    vi.int_value = -42;
    vd.kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
    vd.double_value = 0.25;
    vj.kind_case = FLIP__VALUE__KIND_JSON_VALUE;
    vj.json_value = "{\"a\":[1,2]}";
    /* three's CAS (must not exist) fails on a.str; its other two apply */
    three[0].expected = 0;
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        last = cluster_write(c, &e[i]);
        CHECK(last != 0);
        CHECK(cluster_wait_applied(c, last, 10000));
    }
}

/* The rows of the fixed history are the golden bytes on every replica. */
TEST(flags_rows_match_golden_bytes, 30)
{
    struct cluster c;
    struct dump d;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    write_history(&c);
    for (unsigned s = 0; s < c.n; s++) {
        dump_rows(c.stores[s], &d);
        if (strcmp(d.text, golden) != 0) {
            fprintf(stderr, "  store %u holds:\n%s", s, d.text);
            CHECK(0);
        }
    }
    cluster_stop(&c);
}

/* ---- reading rows an earlier flipd wrote ----------------------------------
 */

static size_t unhex(const char *p, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n / 2; i++) {
        unsigned b = 0;
        CHECK(sscanf(p + 2 * i, "%2x", &b) == 1);
        out[i] = (uint8_t)b;
    }
    return n / 2;
}

/* A store holding exactly the golden rows (a data directory of the
 * version before storage/flags.c), applied index 6. */
static struct store *golden_store(char *dir, size_t n)
{
    struct store *s = NULL;
    struct store_txn *t = NULL;
    enum store_db db = STORE_FLAGS;
    const char *p = golden;

    tmpdir_make(dir, n);
    CHECK_EQ_INT(store_open(&s, dir, 0), FLIP_OK);
    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    while (*p != '\0') {
        const char *sp = strchr(p, ' ');
        const char *nl = strchr(p, '\n');
        uint8_t k[64];
        uint8_t v[256];
        size_t klen;
        size_t vlen;

        if (*p == '-') {
            db = STORE_CHANGES;
            p = nl + 1;
            continue;
        }
        klen = unhex(p, (size_t)(sp - p), k);
        vlen = unhex(sp + 1, (size_t)(nl - sp - 1), v);
        CHECK_EQ_INT(store_put(t, db, k, klen, v, vlen), FLIP_OK);
        p = nl + 1;
    }
    CHECK_EQ_INT(store_txn_set_applied(t, 6), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    return s;
}

/* A flags row of any bytes. */
static void plant(struct store *s, const char *key, const char *rec, size_t n)
{
    struct store_txn *t = NULL;

    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    CHECK_EQ_INT(store_put(t, STORE_FLAGS, key, strlen(key), rec, n), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
}

struct seen
{
    char text[1024];
    size_t len;
    size_t stop_after; /* 0: never stop */
    size_t n;
};

/* "key@revision(create):value-or-deleted" per flag, "/position" for a
 * change-log row. */
static int seen_visit(void *arg, const struct flags_row *row)
{
    struct seen *s = arg;
    Flip__Flag *f = NULL;
    char val[32] = "deleted";

    CHECK_EQ_INT(flags_row_decode(row, &f), FLIP_OK);
    CHECK(f->key != NULL);
    if (f->value != NULL) {
        CHECK(!f->deleted);
        snprintf(val, sizeof val, "%d", (int)f->value->kind_case);
    } else {
        CHECK(f->has_deleted && f->deleted);
    }
    if (row->key != NULL) {
        CHECK_EQ_INT(row->klen, strlen(f->key));
        CHECK(memcmp(row->key, f->key, row->klen) == 0);
    } else {
        CHECK_EQ_INT(row->revision, f->revision);
    }
    s->len += (size_t)snprintf(
        s->text + s->len, sizeof s->text - s->len, "%s@%llu(%llu)/%u:%s ",
        f->key, (unsigned long long)f->revision,
        (unsigned long long)f->create_revision, (unsigned)row->position, val);
    CHECK(s->len < sizeof s->text);
    flags_free(f);
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

/* Flags written by the earlier FSM read back through flags_get,
 * flags_head and flags_scan with their keys, revisions and values. */
TEST(flags_read_golden_flags, 10)
{
    char dir[256];
    struct store *s = golden_store(dir, sizeof dir);
    struct seen seen;
    struct flags_head h;
    Flip__Flag *f = NULL;
    int more = 0;

    CHECK_EQ_INT(flags_get(s, "a.str", &f), FLIP_OK);
    CHECK(strcmp(f->key, "a.str") == 0);
    CHECK(strcmp(f->value->string_value, "off") == 0);
    CHECK_EQ_INT(f->revision, 6);
    CHECK_EQ_INT(f->create_revision, 2);
    CHECK(strcmp(f->actor, "test") == 0);
    CHECK_EQ_INT(f->time_ms, T0 + 300001);
    CHECK(!f->has_deleted);
    flags_free(f);
    CHECK_EQ_INT(flags_get(s, "b.bool", &f), FLIP_NOTFOUND);
    CHECK(f == NULL);
    CHECK_EQ_INT(flags_head(s, "c.int", 5, &h), FLIP_OK);
    CHECK_EQ_INT(h.revision, 3);
    CHECK_EQ_INT(h.create_revision, 3);
    CHECK_EQ_INT(h.kind, FLIP__VALUE__KIND_INT_VALUE);
    CHECK_EQ_INT(h.bytes, 5 + 21);
    CHECK_EQ_INT(flags_head(s, "b.bool", 6, &h), FLIP_OK);
    CHECK_EQ_INT(h.revision, 0);
    CHECK_EQ_INT(h.bytes, 0);

    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(flags_scan(s, NULL, NULL, 0, 0, seen_visit, &seen, &more),
                 FLIP_OK);
    CHECK(!more);
    CHECK(strcmp(seen.text,
                 "a.str@6(2)/0:4 c.int@3(3)/0:2 "
                 "d.double@4(4)/0:3 e.json@4(4)/0:5 ") == 0);
    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(flags_scan(s, "d", NULL, 0, 0, seen_visit, &seen, &more),
                 FLIP_OK);
    CHECK(strcmp(seen.text, "d.double@4(4)/0:3 ") == 0);
    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(flags_scan(s, NULL, "c.int", 5, 1, seen_visit, &seen, &more),
                 FLIP_OK);
    CHECK(more);
    CHECK(strcmp(seen.text, "d.double@4(4)/0:3 ") == 0);
    /* a row whose record does not decode: its size, no flag */
    plant(s, "z.bad", "\xff\xff", 2);
    CHECK_EQ_INT(flags_head(s, "z.bad", 5, &h), FLIP_CORRUPT);
    CHECK_EQ_INT(h.bytes, 5 + 2);
    CHECK_EQ_INT(h.kind, FLIP__VALUE__KIND__NOT_SET);
    CHECK_EQ_INT(flags_get(s, "z.bad", &f), FLIP_CORRUPT);
    CHECK(f == NULL);
    /* a flags row without value (no flipd writes one) reads as stored */
    plant(s, "y.none", "\x18\x07", 2);
    CHECK_EQ_INT(flags_get(s, "y.none", &f), FLIP_OK);
    CHECK(f->value == NULL && !f->has_deleted);
    CHECK_EQ_INT(f->revision, 7);
    flags_free(f);
    store_close(s);
    tmpdir_remove(dir);
}

/* changes_after(R) starts at the first row of revision R + 1, whatever
 * positions R had; deletions read as deleted; a visitor stops it. */
TEST(flags_changes_after_golden_log, 10)
{
    char dir[256];
    struct store *s = golden_store(dir, sizeof dir);
    struct seen seen;

    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(changes_after(s, 0, seen_visit, &seen), FLIP_OK);
    CHECK_EQ_INT(seen.n, 7);
    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(changes_after(s, 3, seen_visit, &seen), FLIP_OK);
    CHECK(strcmp(seen.text,
                 "d.double@4(4)/1:3 e.json@4(4)/2:5 "
                 "b.bool@5(3)/0:deleted a.str@6(2)/0:4 ") == 0);
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 1;
    CHECK_EQ_INT(changes_after(s, 4, seen_visit, &seen), FLIP_OK);
    CHECK(strcmp(seen.text, "b.bool@5(3)/0:deleted ") == 0);
    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(changes_after(s, 6, seen_visit, &seen), FLIP_OK);
    CHECK_EQ_INT(seen.n, 0);
    store_close(s);
    tmpdir_remove(dir);
}

/* The codec alone: each golden record decodes, and the record built for
 * its change packs back to the same bytes (flags db: without key). */
TEST(flags_record_round_trip, 10)
{
    static const char rec_hex[] =
        "120522036f6666180620022a0474657374320038e1f7a7ffbc31";
    static const char row_hex[] =
        "0a05612e737472120522036f6666180620022a0474"
        "657374320038e1f7a7ffbc31";
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change *chs[1] = { &ch };
    Flip__Value v = FLIP__VALUE__INIT;
    Flip__Value copy;
    Flip__Flag rec;
    Flip__Flag *f = NULL;
    uint8_t want[128];
    uint8_t got[FLAGS_RECORD_MAX];
    size_t n = unhex(rec_hex, sizeof rec_hex - 1, want);

    CHECK_EQ_INT(flags_decode(want, n, &f), FLIP_OK);
    CHECK(f->key == NULL);
    CHECK_EQ_INT(flags_pack(f, got), n);
    CHECK(memcmp(got, want, n) == 0);
    flags_free(f);
    CHECK_EQ_INT(flags_decode("\xff\xff", 2, &f), FLIP_CORRUPT);

    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = "off";
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.key = "a.str";
    ch.value = &v;
    ch.actor = "test";
    ch.reason = "";
    cmd.n_changes = 1;
    cmd.changes = chs;
    cmd.has_time_ms = 1;
    cmd.time_ms = T0 + 300001;
    flags_record_of_change(&cmd, 0, 6, 2, &rec, &copy);
    CHECK(rec.value == &copy);
    CHECK_EQ_INT(flags_pack(&rec, got), n);
    CHECK(memcmp(got, want, n) == 0);
    rec.key = "a.str";
    n = unhex(row_hex, sizeof row_hex - 1, want);
    CHECK_EQ_INT(flags_pack(&rec, got), n);
    CHECK(memcmp(got, want, n) == 0);
    CHECK_EQ_INT(flags_change_row_bytes(26, 5), 12 + 26 + 5 + 3);
    /* an event built from the entry points at the change's value */
    flags_record_of_change(&cmd, 0, 6, 2, &rec, NULL);
    CHECK(rec.value == &v);
    ch.op = FLIPCMD__OP__DELETE;
    flags_record_of_change(&cmd, 0, 7, 2, &rec, &copy);
    CHECK(rec.value == NULL);
    flags_as_read(&rec, "a.str");
    CHECK(rec.has_deleted && rec.deleted);
}
