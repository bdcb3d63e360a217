/* flip_watch's typed reads (client/watch.c) on values served from a
 * last-known-good file while no node answers: each type, a type that
 * does not match, an int a double cannot hold, buffers too small, NULL
 * arguments; and flip_watch_start's argument checks and allocation
 * failures.
 *
 * watch.c, wloop.c, lkg.c and wcache.c are compiled into the unit binary
 * by test_watch_stream.c and test_watch_cache.c; this file uses their
 * headers. */
#include <string.h>
#include <unistd.h>

#include "../lib/fakelisten.h"
#include "../lib/faultnth.h"
#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "client/flip.h"
#include "client/lkg.h"
#include "client/watch.h"
#include "client/wcache.h"
#include "lib/err.h"
#include "lib/heap.h"

static void put(struct wcache *c,
                const char *key,
                enum flip_type type,
                int64_t i,
                double d,
                const char *s)
{
    struct flip_flag *f = wcache_flag_new();
    struct flip_flag *old = NULL;

    CHECK(f != NULL);
    f->key = flip_strdup(key);
    f->actor = flip_strdup("ops");
    f->reason = flip_strdup("test");
    f->value.type = type;
    if (type == FLIP_TYPE_BOOL) {
        f->value.u.b = (int)i;
    } else if (type == FLIP_TYPE_INT) {
        f->value.u.i = i;
    } else if (type == FLIP_TYPE_DOUBLE) {
        f->value.u.d = d;
    } else {
        f->value.u.s = flip_strdup(s);
    }
    f->revision = 10;
    f->create_revision = 10;
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    CHECK(old == NULL);
}

/* Writes a last-known-good file at path with one flag of each kind. */
static void write_lkg(const char *path)
{
    struct wcache c;
    struct wprefixes all = { NULL, 0 };
    struct buf img;
    const char *why = NULL;
    char msg[LKG_MSG_MAX];

    wcache_init(&c);
    put(&c, "b", FLIP_TYPE_BOOL, 1, 0, NULL);
    put(&c, "i", FLIP_TYPE_INT, -5, 0, NULL);
    put(&c, "big", FLIP_TYPE_INT, ((int64_t)1 << 53) + 1, 0, NULL);
    put(&c, "d", FLIP_TYPE_DOUBLE, 0, 2.5, NULL);
    put(&c, "s", FLIP_TYPE_STRING, 0, 0, "hello");
    put(&c, "j", FLIP_TYPE_JSON, 0, 0, "[1]");
    c.revision = 10;
    CHECK_EQ_INT(wprefixes_make(&all, NULL, 0, &why), FLIP_OK);
    buf_init(&img);
    CHECK_EQ_INT(lkg_encode(&c, &all, &img), FLIP_OK);
    CHECK_EQ_INT(
        lkg_store(path, buf_head(&img), buf_len(&img), msg, sizeof msg),
        FLIP_OK);
    buf_close(&img);
    wprefixes_clear(&all);
    wcache_clear(&c);
}

/* Bit for bit: the value read is exactly the value stored. */
static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Every read answers from the file's values as "cached" (the watch is not
 * live), or the caller's default as "default" when the key is missing, of
 * another type, NULL, or (for a double) an int it cannot hold exactly;
 * strings are cut to the caller's buffer with FLIP_TOOBIG, never
 * overrun it. Each read works with why NULL. */
TEST(watch_reads_from_cache_every_type, 20)
{
    struct flip_watch_options o = { 0 };
    struct flip_watch *w = NULL;
    struct flip_flag fl;
    enum flip_reason why = FLIP_REASON_LIVE;
    char dir[256];
    char path[300];
    char addr[32];
    char buf[16];
    int hold;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/app.lkg", dir);
    write_lkg(path);
    hold = fakelisten_refusing(addr, sizeof addr);
    o.endpoints = addr;
    o.cache_path = path;
    o.cache_readonly = 1;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_OK);
    CHECK_EQ_INT(flip_watch_revision(w), 10);
    CHECK_EQ_INT(flip_watch_bool(w, "b", 0, &why), 1);
    CHECK(why == FLIP_REASON_CACHED);
    CHECK_EQ_INT(flip_watch_bool(w, "b", 0, NULL), 1);
    CHECK_EQ_INT(flip_watch_bool(w, "i", 0, &why), 0); /* an int */
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_bool(w, NULL, 1, &why), 1);
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_int(w, "i", 0, NULL), -5);
    CHECK_EQ_INT(flip_watch_int(w, "d", 7, &why), 7);
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK(same(flip_watch_double(w, "d", 0, &why), 2.5));
    CHECK(why == FLIP_REASON_CACHED);
    CHECK(same(flip_watch_double(w, "i", 0, NULL), -5.0));
    CHECK(same(flip_watch_double(w, "big", 1.5, &why), 1.5));
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK(same(flip_watch_double(w, "s", 0.5, &why), 0.5));
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_string(w, "s", "x", buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "hello") == 0 && why == FLIP_REASON_CACHED);
    CHECK_EQ_INT(flip_watch_string(w, "j", "x", buf, sizeof buf, NULL),
                 FLIP_OK);
    CHECK(strcmp(buf, "[1]") == 0);
    /* "hello" needs 6 bytes: the default goes in instead, cut to fit */
    CHECK_EQ_INT(flip_watch_string(w, "s", "defaults", buf, 5, &why),
                 FLIP_TOOBIG);
    CHECK(strcmp(buf, "defa") == 0 && why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_string(w, "s", NULL, buf, 5, NULL), FLIP_TOOBIG);
    CHECK(strcmp(buf, "") == 0);
    CHECK_EQ_INT(flip_watch_string(w, "missing", NULL, buf, sizeof buf, &why),
                 FLIP_OK);
    CHECK(strcmp(buf, "") == 0 && why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(
        flip_watch_string(w, "missing", "longer than five", buf, 5, NULL),
        FLIP_TOOBIG);
    CHECK(strcmp(buf, "long") == 0);
    CHECK_EQ_INT(flip_watch_string(w, "s", "x", NULL, 5, &why), FLIP_INVALID);
    CHECK_EQ_INT(flip_watch_string(w, "s", "x", buf, 0, &why), FLIP_INVALID);
    CHECK(why == FLIP_REASON_DEFAULT);
    CHECK_EQ_INT(flip_watch_get(w, "s", &fl, NULL), FLIP_OK);
    CHECK(strcmp(fl.value.u.s, "hello") == 0 && fl.revision == 10);
    flip_flag_clear(&fl);
    CHECK_EQ_INT(flip_watch_get(w, "missing", &fl, &why), FLIP_NOTFOUND);
    CHECK(why == FLIP_REASON_DEFAULT && fl.key == NULL);
    CHECK_EQ_INT(flip_watch_get(w, NULL, &fl, &why), FLIP_INVALID);
    CHECK_EQ_INT(flip_watch_get(w, NULL, &fl, NULL), FLIP_INVALID);
    CHECK(flip_watch_state(w) != FLIP_WATCH_LIVE);
    flip_watch_stop(w);
    close(hold);
    CHECK(strcmp(flip_watch_state_name((enum flip_watch_state)99), "unknown") ==
          0);
    CHECK(strcmp(flip_reason_name((enum flip_reason)99), "unknown") == 0);
    CHECK(strcmp(flip_reason_name(FLIP_REASON_CACHED), "cached") == 0);
    tmpdir_remove(dir);
}

/* Options without endpoints, with prefixes missing, a bad prefix, an
 * endpoint that is not host:port, or more than 16 endpoints are refused;
 * blanks around endpoints are not part of them; every allocation of the
 * start may fail, with FLIP_NOMEM and nothing started. */
TEST(watch_start_checks_and_out_of_memory, 20)
{
    static const char *const bad_prefix[] = { "has space" };
    struct flip_watch_options o = { 0 };
    struct flip_watch *w = (struct flip_watch *)&o;
    char many[600];
    char addr[32];
    size_t len = 0;
    int hold;
    int rv;
    int failures = 0;

    CHECK_EQ_INT(flip_watch_start(&w, NULL), FLIP_INVALID);
    CHECK(w == NULL);
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    hold = fakelisten_refusing(addr, sizeof addr);
    o.endpoints = addr;
    o.n_prefixes = 1;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.prefixes = bad_prefix;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    o.prefixes = NULL;
    o.n_prefixes = 0;
    o.endpoints = "nonsense";
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    for (int i = 0; i < WATCH_MAX_EPS + 1; i++) {
        len += (size_t)snprintf(many + len, sizeof many - len, "%s%s",
                                i > 0 ? "," : "", addr);
    }
    o.endpoints = many;
    CHECK_EQ_INT(flip_watch_start(&w, &o), FLIP_INVALID);
    CHECK(w == NULL);
    snprintf(many, sizeof many, " \t%s\t , %s ", addr, addr);
    o.endpoints = many;
    o.client_name = "reads-test";
    for (int nth = 1;; nth++) {
        faultnth_start(nth);
        rv = flip_watch_start(&w, &o);
        faultnth_stop();
        if (rv == FLIP_OK) {
            break;
        }
        failures++;
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        CHECK(w == NULL);
    }
    CHECK(failures >= 4);
    flip_watch_stop(w);
    close(hold);
}
