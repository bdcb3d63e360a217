/* The flag domain's on-disk bytes (storage/layout.h): the rows apply
 * writes into the flags db and the change log are compared, byte for
 * byte, with rows the FSM wrote before storage/flags.c existed (the
 * golden dump below), so existing data directories keep reading alike. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "lib/err.h"
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
