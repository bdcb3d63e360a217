/* The watch's pure pieces: the flag table, prefix sets, CHANGE batches,
 * snapshot staging, and the last-known-good file format, through
 * client/wcache.h and client/lkg.h (the unit binary links the library's
 * objects). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "client/flag.h"
#include "client/lkg.h"
#include "client/wcache.h"
#include "lib/heap.h"

/* ---- helpers ------------------------------------------------------------ */

static struct flip_flag *mk_flag(const char *key, int64_t v, uint64_t rev)
{
    struct flip_flag *f = wcache_flag_new();

    CHECK(f != NULL);
    f->key = flip_strdup(key);
    f->actor = flip_strdup("tester");
    f->reason = flip_strdup("");
    f->value.type = FLIP_TYPE_INT;
    f->value.u.i = v;
    f->revision = rev;
    f->create_revision = rev;
    return f;
}

static void put(struct wcache *c, const char *key, int64_t v, uint64_t rev)
{
    struct flip_flag *old = NULL;

    CHECK_EQ_INT(wcache_put(c, mk_flag(key, v, rev), &old), FLIP_OK);
    wcache_flag_free(old);
}

static int64_t int_of(const struct wcache *c, const char *key)
{
    const struct flip_flag *f = wcache_get(c, key);

    CHECK(f != NULL);
    CHECK_EQ_INT(f->value.type, FLIP_TYPE_INT);
    return f->value.u.i;
}

static void mk_prefixes(struct wprefixes *ps, const char *const *p, size_t n)
{
    const char *why = NULL;

    CHECK_EQ_INT(wprefixes_make(ps, p, n, &why), FLIP_OK);
}

/* Wire flags for events, living as long as the test. */
struct wflag
{
    Flip__Flag f;
    Flip__Value v;
};

static Flip__Flag *wire_int(struct wflag *w, const char *key, int64_t v)
{
    flip__flag__init(&w->f);
    flip__value__init(&w->v);
    w->f.key = (char *)key;
    w->v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    w->v.int_value = v;
    w->f.value = &w->v;
    return &w->f;
}

static Flip__Flag *wire_del(struct wflag *w, const char *key)
{
    flip__flag__init(&w->f);
    w->f.key = (char *)key;
    w->f.has_deleted = 1;
    w->f.deleted = 1;
    return &w->f;
}

static void change_event(Flip__Event *ev,
                         uint64_t rev,
                         Flip__Flag **flags,
                         size_t n)
{
    flip__event__init(ev);
    ev->has_type = 1;
    ev->type = FLIP__EVENT_TYPE__CHANGE;
    ev->has_revision = 1;
    ev->revision = rev;
    ev->flags = flags;
    ev->n_flags = n;
}

/* ---- the table ---------------------------------------------------------- */

/* Many inserts, replacements and deletions keep every remaining key
 * findable (backward-shift deletion never loses a probe chain). */
TEST(watch_cache_put_take_many, 10)
{
    struct wcache c;
    char key[32];
    struct flip_flag *gone;

    wcache_init(&c);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(&c, key, i, (uint64_t)i + 1);
    }
    CHECK_EQ_INT(c.n, 2000);
    put(&c, "k7", 700, 9000); /* replace */
    CHECK_EQ_INT(c.n, 2000);
    CHECK_EQ_INT(int_of(&c, "k7"), 700);
    for (int i = 0; i < 2000; i += 3) {
        snprintf(key, sizeof key, "k%d", i);
        gone = wcache_take(&c, key);
        CHECK(gone != NULL);
        wcache_flag_free(gone);
    }
    CHECK(wcache_take(&c, "k0") == NULL);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if (i % 3 == 0) {
            CHECK(wcache_get(&c, key) == NULL);
        } else {
            CHECK_EQ_INT(int_of(&c, key), i == 7 ? 700 : i);
        }
    }
    size_t pos = 0;
    size_t seen = 0;
    while (wcache_next(&c, &pos) != NULL) {
        seen++;
    }
    CHECK_EQ_INT(seen, c.n);
    wcache_clear(&c);
    CHECK_EQ_INT(c.n, 0);
    CHECK(wcache_get(&c, "k1") == NULL);
}

/* Prefix sets are normalised, and coverage is decided on the set. */
TEST(watch_prefixes_normalise_and_cover, 10)
{
    static const char *const many[] = { "b.x", "a.", "b.", "a.b", "a." };
    static const char *const a_only[] = { "a.b" };
    static const char *const bad[] = { "a b" };
    static const char *const empty[] = { "" };
    struct wprefixes ps;
    struct wprefixes all;
    struct wprefixes sub;
    const char *why = NULL;
    const char *lots[WCACHE_MAX_PREFIXES + 1];

    mk_prefixes(&ps, many, 5);
    CHECK_EQ_INT(ps.n, 2);
    CHECK(strcmp(ps.p[0], "a.") == 0 && strcmp(ps.p[1], "b.") == 0);
    CHECK(wprefixes_match(&ps, "a.z"));
    CHECK(!wprefixes_match(&ps, "c.z"));
    mk_prefixes(&all, NULL, 0);
    CHECK_EQ_INT(all.n, 1);
    CHECK(all.p[0][0] == '\0');
    mk_prefixes(&sub, a_only, 1);
    CHECK(wprefixes_cover(&all, &ps));
    CHECK(wprefixes_cover(&ps, &sub));
    CHECK(!wprefixes_cover(&sub, &ps));
    CHECK(!wprefixes_cover(&ps, &all));
    wprefixes_clear(&sub);
    mk_prefixes(&sub, empty, 1); /* "" is everything too */
    CHECK(wprefixes_cover(&sub, &all) && wprefixes_cover(&all, &sub));
    wprefixes_clear(&sub);
    CHECK_EQ_INT(wprefixes_make(&sub, bad, 1, &why), FLIP_INVALID);
    for (size_t i = 0; i <= WCACHE_MAX_PREFIXES; i++) {
        lots[i] = "x";
    }
    CHECK_EQ_INT(wprefixes_make(&sub, lots, WCACHE_MAX_PREFIXES + 1, &why),
                 FLIP_INVALID);
    wprefixes_clear(&ps);
    wprefixes_clear(&all);
}

/* ---- CHANGE batches ----------------------------------------------------- */

/* A batch sets and deletes at one revision; the replaced and removed
 * flags come back for the application, and the revision moves. */
TEST(watch_batch_applies_sets_and_deletes, 10)
{
    struct wcache c;
    struct wprefixes ps;
    struct wbatch b;
    struct wflag w[3];
    Flip__Flag *fl[3];
    Flip__Event ev;
    const struct flip_flag *f;
    const char *why = NULL;

    wcache_init(&c);
    mk_prefixes(&ps, NULL, 0);
    put(&c, "a", 1, 5);
    put(&c, "b", 2, 6);
    c.revision = 6;
    fl[0] = wire_int(&w[0], "a", 10);
    fl[1] = wire_del(&w[1], "b");
    fl[2] = wire_int(&w[2], "c", 30);
    change_event(&ev, 7, fl, 3);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_OK);
    CHECK_EQ_INT(c.revision, 6); /* nothing applied yet */
    CHECK_EQ_INT(wbatch_commit(&b, &c), FLIP_OK);
    CHECK_EQ_INT(c.revision, 7);
    CHECK_EQ_INT(int_of(&c, "a"), 10);
    CHECK(wcache_get(&c, "b") == NULL);
    CHECK_EQ_INT(int_of(&c, "c"), 30);
    f = wcache_get(&c, "c");
    CHECK(f != NULL);
    CHECK_EQ_INT(f->revision, 7);
    CHECK(b.items[0].old != NULL && b.items[0].old->value.u.i == 1);
    CHECK(b.items[1].deleted && b.items[1].old != NULL);
    CHECK(b.items[1].shown != NULL && strcmp(b.items[1].shown->key, "b") == 0);
    CHECK(b.items[2].old == NULL);
    CHECK(b.items[2].shown == wcache_get(&c, "c"));
    wbatch_free(&b);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

/* Group commit: one CHANGE of several flags is one step at one revision.
 * Every flag takes the event's revision whatever its own field says, and
 * once applied, no other CHANGE may come at that revision; a key named
 * twice in one event (set and delete) is refused whole. */
TEST(watch_batch_group_shares_event_revision, 10)
{
    struct wcache c;
    struct wprefixes ps;
    struct wbatch b;
    struct wflag w[3];
    Flip__Flag *fl[3];
    Flip__Event ev;
    const struct flip_flag *f;
    const char *why = NULL;

    wcache_init(&c);
    mk_prefixes(&ps, NULL, 0);
    put(&c, "g.b", 2, 4);
    c.revision = 4;
    fl[0] = wire_int(&w[0], "g.a", 1);
    w[0].f.has_revision = 1;
    w[0].f.revision = 3; /* wrong: the event's wins */
    fl[1] = wire_del(&w[1], "g.b");
    fl[2] = wire_int(&w[2], "g.c", 3); /* no revision of its own */
    change_event(&ev, 5, fl, 3);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_OK);
    CHECK_EQ_INT(b.n, 3);
    CHECK_EQ_INT(b.revision, 5);
    CHECK_EQ_INT(wbatch_commit(&b, &c), FLIP_OK);
    for (size_t i = 0; i < b.n; i++) {
        CHECK_EQ_INT(b.items[i].shown->revision, 5);
    }
    wbatch_free(&b);
    CHECK_EQ_INT(c.revision, 5);
    f = wcache_get(&c, "g.a");
    CHECK(f != NULL && f->revision == 5);
    f = wcache_get(&c, "g.c");
    CHECK(f != NULL && f->revision == 5);
    CHECK(wcache_get(&c, "g.b") == NULL);
    /* the same revision again, even for other keys: refused */
    fl[0] = wire_int(&w[0], "g.d", 4);
    change_event(&ev, 5, fl, 1);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    /* one key set and deleted in one event: refused, nothing applied */
    fl[0] = wire_int(&w[0], "g.a", 7);
    fl[1] = wire_del(&w[1], "g.a");
    change_event(&ev, 6, fl, 2);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    CHECK_EQ_INT(c.revision, 5);
    CHECK_EQ_INT(int_of(&c, "g.a"), 1);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

/* The revision never goes backwards: a CHANGE at or below the table's
 * revision is refused before anything changes, as are bad flags, keys
 * outside the prefixes and a key named twice. */
TEST(watch_batch_refuses_old_revision_and_bad_flags, 10)
{
    static const char *const only_a[] = { "a" };
    struct wcache c;
    struct wprefixes ps;
    struct wbatch b;
    struct wflag w[2];
    Flip__Flag *fl[2];
    Flip__Event ev;
    const char *why = NULL;

    wcache_init(&c);
    mk_prefixes(&ps, only_a, 1);
    put(&c, "a1", 1, 10);
    c.revision = 10;
    fl[0] = wire_int(&w[0], "a1", 2);
    change_event(&ev, 10, fl, 1);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    change_event(&ev, 9, fl, 1);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    ev.has_revision = 0;
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    fl[0] = wire_int(&w[0], "b1", 2); /* outside the prefixes */
    change_event(&ev, 11, fl, 1);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    fl[0] = wire_int(&w[0], "a1", 2);
    fl[1] = wire_int(&w[1], "a1", 3); /* twice */
    change_event(&ev, 11, fl, 2);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    w[1].f.value = NULL; /* a set without a value */
    w[1].f.key = (char *)"a2";
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    w[1].v.kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE; /* not finite */
    w[1].v.double_value = 1.0 / 0.0;
    w[1].f.value = &w[1].v;
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    w[1].f.key = (char *)"a 2"; /* bad key */
    w[1].v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_PROTO);
    CHECK_EQ_INT(c.revision, 10);
    CHECK_EQ_INT(int_of(&c, "a1"), 1);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

/* Every allocation of prepare and commit may fail: the result is then
 * FLIP_NOMEM with the table untouched, never a half-applied batch. */
static int fail_at;
static int allocs;
static int fault_nth(void *data)
{
    (void)data;
    return ++allocs == fail_at;
}

TEST(watch_batch_out_of_memory_is_clean, 20)
{
    struct wprefixes ps;
    struct wflag w[3];
    Flip__Flag *fl[3];
    Flip__Event ev;
    const char *why = NULL;
    int rv;

    mk_prefixes(&ps, NULL, 0);
    fl[0] = wire_int(&w[0], "a", 10);
    fl[1] = wire_del(&w[1], "b");
    fl[2] = wire_int(&w[2], "new.key", 30);
    change_event(&ev, 50, fl, 3);
    for (fail_at = 1;; fail_at++) {
        struct wcache c;
        struct wbatch b;
        char key[16];

        wcache_init(&c);
        for (int i = 0; i < 12; i++) { /* near a growth step */
            snprintf(key, sizeof key, "f%d", i);
            put(&c, key, i, 1);
        }
        put(&c, "a", 1, 2);
        put(&c, "b", 2, 3);
        c.revision = 3;
        allocs = 0;
        flip_heap_set_fault(fault_nth, NULL);
        rv = wbatch_prepare(&b, &c, &ps, &ev, &why);
        if (rv == FLIP_OK) {
            rv = wbatch_commit(&b, &c);
            if (rv != FLIP_OK) {
                wbatch_free(&b);
            }
        }
        flip_heap_set_fault(NULL, NULL);
        if (rv == FLIP_OK) {
            CHECK_EQ_INT(c.revision, 50);
            CHECK_EQ_INT(int_of(&c, "new.key"), 30);
            wbatch_free(&b);
            wcache_clear(&c);
            break;
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        CHECK_EQ_INT(c.revision, 3);
        CHECK_EQ_INT(int_of(&c, "a"), 1);
        CHECK(wcache_get(&c, "b") != NULL);
        CHECK(wcache_get(&c, "new.key") == NULL);
        wcache_clear(&c);
    }
    CHECK(fail_at > 3);
    wprefixes_clear(&ps);
}

/* ---- snapshots ---------------------------------------------------------- */

/* Items are staged aside; swapping them in replaces the whole state, and
 * what the old state had that the new lacks is what a resync reports as
 * deleted. */
TEST(watch_snapshot_staging_replaces_state, 10)
{
    struct wcache live;
    struct wcache staging;
    struct wprefixes ps;
    struct wflag w;
    Flip__Flag *fl[1];
    Flip__Event ev;
    const struct flip_flag *added = NULL;
    const struct flip_flag *f;
    const char *why = NULL;
    size_t pos = 0;
    int dropped = 0;

    wcache_init(&live);
    wcache_init(&staging);
    mk_prefixes(&ps, NULL, 0);
    put(&live, "keep", 1, 3);
    put(&live, "gone", 2, 4);
    live.revision = 4;
    flip__event__init(&ev);
    ev.has_type = 1;
    ev.type = FLIP__EVENT_TYPE__SNAPSHOT_ITEM;
    ev.n_flags = 1;
    ev.flags = fl;
    fl[0] = wire_int(&w, "keep", 5);
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why), FLIP_OK);
    CHECK(added != NULL && added->value.u.i == 5);
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO); /* the same key twice */
    fl[0] = wire_int(&w, "new", 6);
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why), FLIP_OK);
    fl[0] = wire_del(&w, "x");
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO); /* items are never deletions */
    ev.n_flags = 0;
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO);
    CHECK_EQ_INT(int_of(&live, "keep"), 1); /* readers still see the old */
    wcache_swap(&live, &staging);
    live.revision = 20;
    CHECK_EQ_INT(int_of(&live, "keep"), 5);
    CHECK_EQ_INT(int_of(&live, "new"), 6);
    CHECK(wcache_get(&live, "gone") == NULL);
    while ((f = wcache_next(&staging, &pos)) != NULL) {
        if (wcache_get(&live, f->key) == NULL) {
            CHECK(strcmp(f->key, "gone") == 0);
            dropped++;
        }
    }
    CHECK_EQ_INT(dropped, 1);
    wcache_clear(&live);
    wcache_clear(&staging);
    wprefixes_clear(&ps);
}

/* ---- last-known-good file ----------------------------------------------- */

/* A table with one flag of every type, strings with bytes that a text
 * format would have to escape. */
static void fill_all_types(struct wcache *c)
{
    struct flip_flag *f;
    struct flip_flag *old = NULL;

    wcache_init(c);
    f = mk_flag("t.bool", 0, 11);
    f->value.type = FLIP_TYPE_BOOL;
    f->value.u.b = 1;
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    put(c, "t.int", -9223372036854775807LL - 1, 12);
    f = mk_flag("t.double", 0, 13);
    f->value.type = FLIP_TYPE_DOUBLE;
    f->value.u.d = -0.125e-300;
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    f = mk_flag("t.string", 0, 14);
    f->value.type = FLIP_TYPE_STRING;
    f->value.u.s = flip_strdup("tab\there\nnewline \"quoted\" \xc3\xa9");
    flip_free(f->reason);
    f->reason = flip_strdup("incident\n42");
    f->time_ms = 1714646467312;
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    f = mk_flag("t.json", 0, 15);
    f->value.type = FLIP_TYPE_JSON;
    f->value.u.s = flip_strdup("{\"a\":[1,2,{\"b\":null}]}");
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    f = mk_flag("u.other", 0, 16);
    f->value.type = FLIP_TYPE_STRING;
    f->value.u.s = flip_strdup("");
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    c->revision = 99;
}

static void check_same_flag(const struct flip_flag *a,
                            const struct flip_flag *b)
{
    CHECK(strcmp(a->key, b->key) == 0);
    CHECK_EQ_INT(a->value.type, b->value.type);
    switch (a->value.type) {
    case FLIP_TYPE_BOOL:
        CHECK_EQ_INT(a->value.u.b, b->value.u.b);
        break;
    case FLIP_TYPE_INT:
        CHECK(a->value.u.i == b->value.u.i);
        break;
    case FLIP_TYPE_DOUBLE:
        CHECK(memcmp(&a->value.u.d, &b->value.u.d, sizeof(double)) == 0);
        break;
    default:
        CHECK(strcmp(a->value.u.s, b->value.u.s) == 0);
        break;
    }
    CHECK_EQ_INT(a->revision, b->revision);
    CHECK_EQ_INT(a->create_revision, b->create_revision);
    CHECK(strcmp(a->actor, b->actor) == 0);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(a->time_ms == b->time_ms);
}

/* Encoding then decoding gives back every flag, exactly, and the
 * revision; the file is a valid resume point for the same prefixes. */
TEST(watch_lkg_round_trip, 10)
{
    struct wcache c;
    struct wcache back;
    struct wprefixes ps;
    struct buf img;
    const struct flip_flag *f;
    const char *why = NULL;
    size_t pos = 0;
    int resumable = 0;

    fill_all_types(&c);
    mk_prefixes(&ps, NULL, 0);
    buf_init(&img);
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    CHECK(memcmp(buf_head(&img), "flipdLKG", 8) == 0);
    wcache_init(&back);
    CHECK_EQ_INT(
        lkg_decode(buf_head(&img), buf_len(&img), &ps, &back, &resumable, &why),
        FLIP_OK);
    CHECK(resumable);
    CHECK_EQ_INT(back.revision, 99);
    CHECK_EQ_INT(back.n, c.n);
    while ((f = wcache_next(&c, &pos)) != NULL) {
        CHECK(wcache_get(&back, f->key) != NULL);
        check_same_flag(f, wcache_get(&back, f->key));
    }
    /* An empty table round-trips too. */
    wcache_clear(&back);
    wcache_clear(&c);
    c.revision = 7;
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_decode(buf_head(&img), buf_len(&img), &ps, &back, &resumable, &why),
        FLIP_OK);
    CHECK_EQ_INT(back.n, 0);
    CHECK_EQ_INT(back.revision, 7);
    buf_close(&img);
    wprefixes_clear(&ps);
}

/* Any single damaged byte, any truncation, and trailing bytes are all
 * refused, and a refused file leaves nothing loaded: never garbage. */
TEST(watch_lkg_corrupt_or_truncated_is_refused, 30)
{
    struct wcache c;
    struct wcache back;
    struct wprefixes ps;
    struct buf img;
    uint8_t *copy;
    const char *why = NULL;
    size_t n;
    int resumable = 1;

    fill_all_types(&c);
    mk_prefixes(&ps, NULL, 0);
    buf_init(&img);
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    n = buf_len(&img);
    copy = flip_malloc(n + 1);
    wcache_init(&back);
    for (size_t i = 0; i < n; i++) { /* flip each byte */
        memcpy(copy, buf_head(&img), n);
        copy[i] ^= 0x20;
        CHECK_EQ_INT(lkg_decode(copy, n, &ps, &back, &resumable, &why),
                     FLIP_CORRUPT);
        CHECK_EQ_INT(back.n, 0);
        CHECK(!resumable);
    }
    for (size_t len = 0; len < n; len++) { /* every truncation */
        CHECK_EQ_INT(
            lkg_decode(buf_head(&img), len, &ps, &back, &resumable, &why),
            FLIP_CORRUPT);
        CHECK_EQ_INT(back.n, 0);
    }
    memcpy(copy, buf_head(&img), n);
    copy[n] = 0;
    CHECK_EQ_INT(lkg_decode(copy, n + 1, &ps, &back, &resumable, &why),
                 FLIP_CORRUPT);
    /* A future format version is refused by name, not misread. */
    memcpy(copy, buf_head(&img), n);
    copy[11] = LKG_VERSION + 1;
    CHECK_EQ_INT(lkg_decode(copy, n, &ps, &back, &resumable, &why),
                 FLIP_CORRUPT);
    CHECK(strstr(why, "version") != NULL);
    flip_free(copy);
    buf_close(&img);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

/* A file written for wider prefixes loads the watched subset and stays a
 * resume point; one written for narrower prefixes is served but is not a
 * resume point (its revision says nothing about the other keys). */
TEST(watch_lkg_prefix_coverage, 10)
{
    static const char *const t_only[] = { "t." };
    struct wcache c;
    struct wcache back;
    struct wprefixes all;
    struct wprefixes t;
    struct buf img;
    const char *why = NULL;
    int resumable = 0;

    fill_all_types(&c);
    mk_prefixes(&all, NULL, 0);
    mk_prefixes(&t, t_only, 1);
    buf_init(&img);
    wcache_init(&back);
    CHECK_EQ_INT(lkg_encode(&c, &all, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_decode(buf_head(&img), buf_len(&img), &t, &back, &resumable, &why),
        FLIP_OK);
    CHECK(resumable);
    CHECK_EQ_INT(back.n, 5);
    CHECK(wcache_get(&back, "u.other") == NULL);
    wcache_clear(&back);
    CHECK_EQ_INT(lkg_encode(&c, &t, &img), FLIP_OK);
    CHECK_EQ_INT(lkg_decode(buf_head(&img), buf_len(&img), &all, &back,
                            &resumable, &why),
                 FLIP_OK);
    CHECK(!resumable);
    wcache_clear(&back);
    wcache_clear(&c);
    buf_close(&img);
    wprefixes_clear(&all);
    wprefixes_clear(&t);
}

/* Storing replaces the file atomically and leaves no temporary file; a
 * missing file, a directory, garbage and an unwritable place all fail
 * with a message and never load anything. */
TEST(watch_lkg_store_and_load_files, 10)
{
    char dir[256];
    char path[512];
    char other[512];
    char msg[LKG_MSG_MAX];
    struct wcache c;
    struct wcache back;
    struct wprefixes ps;
    struct buf img;
    int resumable = 0;
    int fd;
    int entries = 0;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/app.lkg", dir);
    fill_all_types(&c);
    mk_prefixes(&ps, NULL, 0);
    buf_init(&img);
    wcache_init(&back);
    CHECK_EQ_INT(lkg_load(path, &ps, &back, &resumable, msg, sizeof msg),
                 FLIP_NOTFOUND);
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_store(path, buf_head(&img), buf_len(&img), msg, sizeof msg),
        FLIP_OK);
    c.revision = 100; /* a second store replaces the first */
    CHECK_EQ_INT(lkg_encode(&c, &ps, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_store(path, buf_head(&img), buf_len(&img), msg, sizeof msg),
        FLIP_OK);
    CHECK_EQ_INT(lkg_load(path, &ps, &back, &resumable, msg, sizeof msg),
                 FLIP_OK);
    CHECK_EQ_INT(back.revision, 100);
    CHECK_EQ_INT(back.n, c.n);
    wcache_clear(&back);
    {
        /* Only app.lkg: the temporary files were renamed away. */
        char cmd[600];
        FILE *p;
        snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
        p = popen(cmd, "r");
        CHECK(p != NULL && fscanf(p, "%d", &entries) == 1);
        pclose(p);
        CHECK_EQ_INT(entries, 1);
    }
    /* Garbage of the right size: refused with a message naming it. */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "flipdLKG-this-is-not-a-valid-file-at-all!", 41) == 41);
    close(fd);
    CHECK_EQ_INT(lkg_load(path, &ps, &back, &resumable, msg, sizeof msg),
                 FLIP_CORRUPT);
    CHECK(strstr(msg, path) != NULL && strstr(msg, "ignored") != NULL);
    CHECK_EQ_INT(back.n, 0);
    CHECK_EQ_INT(lkg_load(dir, &ps, &back, &resumable, msg, sizeof msg),
                 FLIP_IOERR);
    snprintf(other, sizeof other, "%s/no/such/dir/app.lkg", dir);
    CHECK_EQ_INT(
        lkg_store(other, buf_head(&img), buf_len(&img), msg, sizeof msg),
        FLIP_IOERR);
    CHECK(msg[0] != '\0');
    buf_close(&img);
    wcache_clear(&c);
    wprefixes_clear(&ps);
    tmpdir_remove(dir);
}

/* The checksum is the usual CRC-32, so the file can be checked with
 * ordinary tools. */
TEST(watch_lkg_crc32_known_value, 5)
{
    CHECK_EQ_INT(lkg_crc32(0, (const uint8_t *)"123456789", 9), 0xcbf43926u);
    CHECK_EQ_INT(lkg_crc32(lkg_crc32(0, (const uint8_t *)"1234", 4),
                           (const uint8_t *)"56789", 5),
                 0xcbf43926u);
}

/* ---- edges -------------------------------------------------------------- */

/* Keys whose home slot in a table of WCACHE_MIN_CAP slots is `home`. */
static void keys_with_home(size_t home, int n, char out[][16])
{
    int found = 0;

    for (int k = 0; found < n && k < 100000; k++) {
        char key[16];
        snprintf(key, sizeof key, "w%d", k);
        if (((size_t)wcache_hash_key(key) & (WCACHE_MIN_CAP - 1)) == home) {
            memcpy(out[found++], key, sizeof key);
        }
    }
    CHECK_EQ_INT(found, n);
}

/* A probe run that wraps past the table's last slot: removing any one of
 * its keys (backward shift across the end) leaves every other key
 * findable and the count right. */
TEST(watch_cache_take_across_the_end, 10)
{
    /* homes 14, 15, 15, 0, 0, 1, 1 fill slots 14, 15, 0, 1, ..., 4 */
    char keys[7][16];

    keys_with_home(WCACHE_MIN_CAP - 2, 1, keys);
    keys_with_home(WCACHE_MIN_CAP - 1, 2, keys + 1);
    keys_with_home(0, 2, keys + 3);
    keys_with_home(1, 2, keys + 5);
    for (int gone = 0; gone < 7; gone++) {
        struct wcache c;
        struct flip_flag *f;

        wcache_init(&c);
        for (int k = 0; k < 7; k++) {
            put(&c, keys[k], k, 1);
        }
        CHECK_EQ_INT(c.cap, WCACHE_MIN_CAP); /* 7 of 16: no growth */
        f = wcache_take(&c, keys[gone]);
        CHECK(f != NULL && strcmp(f->key, keys[gone]) == 0);
        wcache_flag_free(f);
        CHECK_EQ_INT(c.n, 6);
        for (int k = 0; k < 7; k++) {
            if (k == gone) {
                CHECK(wcache_get(&c, keys[k]) == NULL);
            } else {
                CHECK_EQ_INT(int_of(&c, keys[k]), k);
            }
        }
        wcache_clear(&c);
    }
}

/* The table's small promises: taking from an empty table finds nothing,
 * an impossible reservation fails without touching the table, a copy
 * gives "" for absent texts and fails whole when short of memory, a NULL
 * prefix is refused by name, and a CHANGE with no flags only moves the
 * revision. */
TEST(watch_cache_edges, 10)
{
    static const char *const with_null[] = { "a.", NULL };
    struct wcache c;
    struct wprefixes ps;
    struct flip_flag *f;
    struct flip_flag copy;
    struct wbatch b;
    Flip__Event ev;
    const char *why = NULL;

    wcache_init(&c);
    CHECK(wcache_take(&c, "a") == NULL);
    put(&c, "a", 1, 1);
    CHECK_EQ_INT(wcache_reserve(&c, SIZE_MAX), FLIP_NOMEM);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(int_of(&c, "a"), 1);
    f = mk_flag("s", 0, 3);
    f->value.type = FLIP_TYPE_STRING;
    f->value.u.s = flip_strdup("text");
    flip_free(f->actor);
    f->actor = NULL;
    CHECK_EQ_INT(flag_copy(f, &copy), FLIP_OK);
    CHECK(strcmp(copy.actor, "") == 0 && strcmp(copy.value.u.s, "text") == 0);
    flip_flag_clear(&copy);
    for (fail_at = 1; fail_at <= 4; fail_at++) {
        allocs = 0;
        flip_heap_set_fault(fault_nth, NULL);
        CHECK_EQ_INT(flag_copy(f, &copy), FLIP_NOMEM);
        flip_heap_set_fault(NULL, NULL);
        CHECK(copy.key == NULL && copy.actor == NULL && copy.reason == NULL);
        CHECK(copy.value.type == FLIP_TYPE_AUTO && copy.value.u.s == NULL);
    }
    wcache_flag_free(f);
    CHECK_EQ_INT(wprefixes_make(&ps, with_null, 2, &why), FLIP_INVALID);
    CHECK(strcmp(why, "NULL prefix") == 0);
    mk_prefixes(&ps, NULL, 0);
    c.revision = 4;
    change_event(&ev, 9, NULL, 0);
    CHECK_EQ_INT(wbatch_prepare(&b, &c, &ps, &ev, &why), FLIP_OK);
    CHECK_EQ_INT(b.n, 0);
    CHECK_EQ_INT(wbatch_commit(&b, &c), FLIP_OK);
    wbatch_free(&b);
    CHECK_EQ_INT(c.revision, 9);
    CHECK_EQ_INT(c.n, 1);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

/* A snapshot item must hold exactly one flag, not a deletion, inside the
 * prefixes; "deleted: false" is no deletion; with no memory for the flag
 * nothing is staged. */
TEST(watch_cache_stage_item_checks, 10)
{
    static const char *const a_only[] = { "a." };
    struct wcache staging;
    struct wprefixes ps;
    struct wflag w[2];
    Flip__Flag *fl[2];
    Flip__Event ev;
    const struct flip_flag *added = NULL;
    const char *why = NULL;

    wcache_init(&staging);
    mk_prefixes(&ps, a_only, 1);
    flip__event__init(&ev);
    fl[0] = wire_int(&w[0], "a.1", 1);
    fl[1] = wire_int(&w[1], "a.2", 2);
    ev.flags = fl;
    ev.n_flags = 2;
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO);
    CHECK(strcmp(why, "snapshot item without exactly one flag") == 0);
    ev.n_flags = 1;
    w[0].f.has_deleted = 1;
    w[0].f.deleted = 1;
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO);
    CHECK(strcmp(why, "snapshot item marked deleted") == 0);
    fl[0] = wire_int(&w[0], "b.1", 1);
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_PROTO);
    CHECK(strcmp(why, "snapshot item outside the subscribed prefixes") == 0);
    CHECK(added == NULL);
    fl[0] = wire_int(&w[0], "a.1", 1);
    fail_at = 1;
    allocs = 0;
    flip_heap_set_fault(fault_nth, NULL);
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why),
                 FLIP_NOMEM);
    flip_heap_set_fault(NULL, NULL);
    CHECK(added == NULL);
    CHECK_EQ_INT(staging.n, 0);
    w[0].f.has_deleted = 1;
    w[0].f.deleted = 0;
    CHECK_EQ_INT(wcache_stage_item(&staging, &ps, &ev, &added, &why), FLIP_OK);
    CHECK(added != NULL && strcmp(added->key, "a.1") == 0);
    CHECK_EQ_INT(int_of(&staging, "a.1"), 1);
    wcache_clear(&staging);
    wprefixes_clear(&ps);
}
