/* The last-known-good file (client/lkg.c) beyond the round trip of
 * test_watch_cache.c: hand-built images whose checksum is right but whose
 * records are wrong, the oldest format version, running out of memory
 * while encoding or decoding, and the file operations' failures (empty,
 * oversized and special files, a name too long, a directory in the way,
 * a write cut short by the file size limit).
 *
 * lkg.c and wcache.c are compiled into the unit binary by
 * test_watch_cache.c; this file only uses their headers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "client/lkg.h"
#include "client/wcache.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"

/* ---- hand-built images -------------------------------------------------- */

/* Starts an image: a zeroed header, filled in by img_seal. */
static void img_start(struct buf *b)
{
    buf_reset(b);
    CHECK_EQ_INT(buf_reserve(b, LKG_HEADER), FLIP_OK);
    memset(buf_tail(b), 0, LKG_HEADER);
    buf_commit(b, LKG_HEADER);
}

static void img_bytes(struct buf *b, const void *p, size_t n)
{
    CHECK_EQ_INT(buf_append(b, p, n), FLIP_OK);
}

/* A record: u32 length, then the bytes. */
static void img_rec(struct buf *b, const void *p, size_t n)
{
    uint8_t len[4];

    buf_put_u32be(len, (uint32_t)n);
    img_bytes(b, len, 4);
    img_bytes(b, p, n);
}

static void img_str(struct buf *b, const char *s)
{
    img_rec(b, s, strlen(s));
}

/* A flag record; value NULL leaves the flag without one. */
static void img_flag(struct buf *b,
                     const char *key,
                     const Flip__Value *value,
                     int deleted)
{
    Flip__Flag f = FLIP__FLAG__INIT;
    uint8_t packed[512];
    size_t n;

    f.key = (char *)key;
    f.value = (Flip__Value *)value;
    f.has_revision = 1;
    f.revision = 5;
    f.has_create_revision = 1;
    f.create_revision = 4;
    f.actor = "ops";
    f.reason = "r";
    f.has_deleted = deleted != 0;
    f.deleted = deleted != 0;
    n = flip__flag__get_packed_size(&f);
    CHECK(n <= sizeof packed);
    flip__flag__pack(&f, packed);
    img_rec(b, packed, n);
}

/* Starts a version 2 image of an unknown cluster for every flag: the
 * cluster id record "" and the one prefix "". */
static void img_every_flag(struct buf *b)
{
    img_start(b);
    img_str(b, "");
    img_str(b, "");
}

/* Fills in the header as lkg_encode does: the size and checksum match
 * the body, whatever the body holds. */
static void img_seal(struct buf *b,
                     uint32_t version,
                     uint64_t revision,
                     uint32_t n_prefixes,
                     uint32_t n_flags)
{
    uint8_t *h = buf_head(b);

    memcpy(h, LKG_MAGIC, 8);
    buf_put_u32be(h + 8, version);
    buf_put_u64be(h + 16, revision);
    buf_put_u32be(h + 24, n_prefixes);
    buf_put_u32be(h + 28, n_flags);
    buf_put_u64be(h + 32, (uint64_t)(buf_len(b) - LKG_HEADER));
    buf_put_u32be(h + 12, lkg_crc32(0, h + 16, buf_len(b) - 16));
}

static void int_value(Flip__Value *v, int64_t i)
{
    flip__value__init(v);
    v->kind_case = FLIP__VALUE__KIND_INT_VALUE;
    v->int_value = i;
}

/* Decodes b for every flag; on FLIP_CORRUPT checks that nothing was
 * loaded and that the reason is exactly `want_why`. */
static void expect_corrupt(const struct buf *b, const char *want_why)
{
    struct wprefixes all = { NULL, 0 };
    struct wcache back;
    const char *why = NULL;
    int resumable = 1;
    int rv;

    CHECK_EQ_INT(wprefixes_make(&all, NULL, 0, &why), FLIP_OK);
    wcache_init(&back);
    why = NULL;
    rv = lkg_decode(buf_head(b), buf_len(b), &all, &back, &resumable, &why);
    if (rv != FLIP_CORRUPT || why == NULL || strcmp(why, want_why) != 0) {
        fprintf(stderr, "  got %d (%s), want CORRUPT (%s)\n", rv,
                why != NULL ? why : "-", want_why);
    }
    CHECK_EQ_INT(rv, FLIP_CORRUPT);
    CHECK(why != NULL && strcmp(why, want_why) == 0);
    CHECK_EQ_INT(back.n, 0);
    CHECK_EQ_INT(back.revision, 0);
    CHECK(!resumable);
    wcache_clear(&back);
    wprefixes_clear(&all);
}

/* ---- decoding ----------------------------------------------------------- */

/* Version 1 files (no cluster id record) are still read: the flags and the
 * revision come back, the cluster is unknown, and the file is a resume
 * point for the prefixes it was written for. */
TEST(lkg_version_1_file_is_read, 10)
{
    struct wprefixes all = { NULL, 0 };
    struct wcache back;
    struct buf b;
    Flip__Value v;
    const struct flip_flag *f;
    const char *why = NULL;
    int resumable = 0;

    buf_init(&b);
    img_start(&b);
    img_str(&b, "");
    int_value(&v, -3);
    img_flag(&b, "a.b", &v, 0);
    img_seal(&b, 1, 42, 1, 1);
    CHECK_EQ_INT(wprefixes_make(&all, NULL, 0, &why), FLIP_OK);
    wcache_init(&back);
    CHECK_EQ_INT(
        lkg_decode(buf_head(&b), buf_len(&b), &all, &back, &resumable, &why),
        FLIP_OK);
    CHECK(resumable);
    CHECK_EQ_INT(back.revision, 42);
    CHECK_EQ_INT(back.n, 1);
    CHECK_EQ_INT(back.cluster_id[0], '\0');
    f = wcache_get(&back, "a.b");
    CHECK(f != NULL);
    CHECK_EQ_INT(f->value.type, FLIP_TYPE_INT);
    CHECK(f->value.u.i == -3);
    CHECK_EQ_INT(f->revision, 5);
    CHECK_EQ_INT(f->create_revision, 4);
    CHECK(strcmp(f->actor, "ops") == 0 && strcmp(f->reason, "r") == 0);
    /* The same records as version 2 need the cluster id record first:
     * read as version 2, the prefix record "" is taken for the cluster
     * id and the flag record for a prefix. */
    img_seal(&b, 2, 42, 1, 1);
    expect_corrupt(&b, "bad prefix");
    /* Version 0 is no version at all. */
    img_seal(&b, 0, 42, 1, 1);
    expect_corrupt(&b,
                   "written in a format version this library does not read");
    wcache_clear(&back);
    wprefixes_clear(&all);
    buf_close(&b);
}

/* The cluster id record of version 2: missing, overrunning the file,
 * longer than an id can be, or holding a NUL byte are all refused. */
TEST(lkg_bad_cluster_id_is_refused, 10)
{
    static const char *const bad = "bad cluster id record";
    char id65[66];
    uint8_t overrun[4];
    struct buf b;

    buf_init(&b);
    img_start(&b); /* 2 bytes: not even a record length */
    img_bytes(&b, "ab", 2);
    img_seal(&b, 2, 1, 0, 0);
    expect_corrupt(&b, bad);
    img_start(&b); /* says 100 bytes, has 3 */
    buf_put_u32be(overrun, 100);
    img_bytes(&b, overrun, 4);
    img_bytes(&b, "abc", 3);
    img_seal(&b, 2, 1, 0, 0);
    expect_corrupt(&b, bad);
    memset(id65, 'c', 65);
    id65[65] = '\0';
    img_start(&b);
    img_str(&b, id65);
    img_str(&b, "");
    img_seal(&b, 2, 1, 1, 0);
    expect_corrupt(&b, bad);
    img_start(&b);
    img_rec(&b, "ab\0cd", 5);
    img_str(&b, "");
    img_seal(&b, 2, 1, 1, 0);
    expect_corrupt(&b, bad);
    /* 64 characters is the longest id, and it is kept. */
    id65[64] = '\0';
    img_start(&b);
    img_str(&b, id65);
    img_str(&b, "");
    img_seal(&b, 2, 1, 1, 0);
    {
        struct wprefixes all = { NULL, 0 };
        struct wcache back;
        const char *why = NULL;
        int resumable = 0;

        CHECK_EQ_INT(wprefixes_make(&all, NULL, 0, &why), FLIP_OK);
        wcache_init(&back);
        CHECK_EQ_INT(lkg_decode(buf_head(&b), buf_len(&b), &all, &back,
                                &resumable, &why),
                     FLIP_OK);
        CHECK(strcmp(back.cluster_id, id65) == 0);
        CHECK(resumable);
        wcache_clear(&back);
        wprefixes_clear(&all);
    }
    buf_close(&b);
}

/* The prefix records: none at all, more than a watch can have, a record
 * that overruns the file or is longer than a key, and a prefix with
 * characters no key has are all refused. */
TEST(lkg_bad_prefixes_are_refused, 10)
{
    char long_prefix[CODEC_KEY_MAX + 2];
    struct buf b;

    buf_init(&b);
    img_start(&b);
    img_str(&b, "");
    img_seal(&b, 2, 1, 0, 0);
    expect_corrupt(&b, "no prefix");
    img_start(&b);
    img_str(&b, "");
    img_str(&b, "a.");
    img_seal(&b, 2, 1, WCACHE_MAX_PREFIXES + 1, 0);
    expect_corrupt(&b, "more prefixes than a watch can have");
    img_start(&b); /* two announced, one there */
    img_str(&b, "");
    img_str(&b, "a.");
    img_seal(&b, 2, 1, 2, 0);
    expect_corrupt(&b, "prefix record overruns the file");
    memset(long_prefix, 'p', CODEC_KEY_MAX + 1);
    long_prefix[CODEC_KEY_MAX + 1] = '\0';
    img_start(&b);
    img_str(&b, "");
    img_str(&b, long_prefix);
    img_seal(&b, 2, 1, 1, 0);
    expect_corrupt(&b, "prefix record overruns the file");
    img_start(&b);
    img_str(&b, "");
    img_str(&b, "has space");
    img_seal(&b, 2, 1, 1, 0);
    expect_corrupt(&b, "bad prefix");
    buf_close(&b);
}

/* Flag records: more than the file could hold, one missing, one that is
 * not a flag, one without a key, one marked deleted, a key twice, and
 * bytes after the last record are all refused, and nothing is kept. */
TEST(lkg_bad_flag_records_are_refused, 10)
{
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff };
    struct buf b;
    Flip__Value v;

    int_value(&v, 1);
    buf_init(&b);
    img_every_flag(&b);
    img_seal(&b, 2, 1, 1, 1000);
    expect_corrupt(&b, "more flags than the file can hold");
    img_every_flag(&b); /* one flag announced, none there */
    img_seal(&b, 2, 1, 1, 1);
    expect_corrupt(&b, "flag record overruns the file");
    img_every_flag(&b);
    img_rec(&b, garbage, sizeof garbage);
    img_seal(&b, 2, 1, 1, 1);
    expect_corrupt(&b, "flag record does not decode");
    img_every_flag(&b);
    img_flag(&b, NULL, &v, 0);
    img_seal(&b, 2, 1, 1, 1);
    expect_corrupt(&b, "flag without a key");
    img_every_flag(&b);
    img_flag(&b, "a", &v, 1);
    img_seal(&b, 2, 1, 1, 1);
    expect_corrupt(&b, "flag record marked deleted");
    img_every_flag(&b);
    img_flag(&b, "a", &v, 0);
    img_flag(&b, "b", &v, 0);
    img_flag(&b, "a", &v, 0);
    img_seal(&b, 2, 1, 1, 3);
    expect_corrupt(&b, "a key appears twice");
    img_every_flag(&b);
    img_flag(&b, "a", &v, 0);
    img_bytes(&b, "\0\0\0\0", 4); /* an empty record nobody announced */
    img_seal(&b, 2, 1, 1, 1);
    expect_corrupt(&b, "bytes after the last record");
    buf_close(&b);
}

/* ---- out of memory ------------------------------------------------------ */

static int fail_at;
static int allocs;
static int fault_nth(void *data)
{
    (void)data;
    return ++allocs == fail_at;
}

static void put_flag(struct wcache *c,
                     const char *key,
                     enum flip_type type,
                     const char *text)
{
    struct flip_flag *f = wcache_flag_new();
    struct flip_flag *old = NULL;

    CHECK(f != NULL);
    f->key = flip_strdup(key);
    f->actor = flip_strdup("ops");
    f->reason = flip_strdup("why");
    f->value.type = type;
    if (type == FLIP_TYPE_INT) {
        f->value.u.i = 12;
    } else {
        f->value.u.s = flip_strdup(text);
    }
    f->revision = 3;
    f->create_revision = 2;
    CHECK_EQ_INT(wcache_put(c, f, &old), FLIP_OK);
    CHECK(old == NULL);
}

/* Every allocation of encoding and decoding may fail: the answer is then
 * exactly FLIP_NOMEM with nothing produced (an empty image, an empty
 * table), never a partial image and never "corrupt" for a good file. The
 * long prefix and values make the image grow while records are added. */
TEST(lkg_out_of_memory_is_clean, 30)
{
    char long_prefix[231];
    char long_text[301];
    const char *three[3] = { "a.", "b.", long_prefix };
    struct wprefixes ps;
    struct wcache c;
    struct wcache back;
    struct buf good;
    struct buf img;
    const char *why = NULL;
    int resumable;
    int rv;
    int failures = 0;

    memset(long_prefix, 'z', 230);
    long_prefix[230] = '\0';
    memset(long_text, 't', 300);
    long_text[300] = '\0';
    CHECK_EQ_INT(wprefixes_make(&ps, three, 3, &why), FLIP_OK);
    wcache_init(&c);
    put_flag(&c, "a.1", FLIP_TYPE_STRING, long_text);
    put_flag(&c, "a.2", FLIP_TYPE_JSON, "[2]");
    put_flag(&c, "b.3", FLIP_TYPE_INT, NULL);
    c.revision = 77;
    strcpy(c.cluster_id, "c0ffee");
    buf_init(&good);
    CHECK_EQ_INT(lkg_encode(&c, &ps, &good), FLIP_OK);
    for (fail_at = 1;; fail_at++) {
        buf_init(&img); /* no capacity: every growth allocates */
        allocs = 0;
        flip_heap_set_fault(fault_nth, NULL);
        rv = lkg_encode(&c, &ps, &img);
        flip_heap_set_fault(NULL, NULL);
        if (rv == FLIP_OK) {
            break;
        }
        failures++;
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        CHECK_EQ_INT(buf_len(&img), 0);
        buf_close(&img);
    }
    CHECK(failures >= 4);
    CHECK_EQ_INT(buf_len(&img), buf_len(&good));
    CHECK(memcmp(buf_head(&img), buf_head(&good), buf_len(&good)) == 0);
    /* What the buffer held before a failed encode does not survive. */
    img_bytes(&img, "stale", 5);
    fail_at = 1;
    allocs = 0;
    flip_heap_set_fault(fault_nth, NULL);
    rv = lkg_encode(&c, &ps, &img);
    flip_heap_set_fault(NULL, NULL);
    CHECK_EQ_INT(rv, FLIP_NOMEM);
    CHECK_EQ_INT(buf_len(&img), 0);
    failures = 0;
    for (fail_at = 1;; fail_at++) {
        wcache_init(&back);
        resumable = 1;
        why = NULL;
        allocs = 0;
        flip_heap_set_fault(fault_nth, NULL);
        rv = lkg_decode(buf_head(&good), buf_len(&good), &ps, &back, &resumable,
                        &why);
        flip_heap_set_fault(NULL, NULL);
        if (rv == FLIP_OK) {
            break;
        }
        failures++;
        if (rv != FLIP_NOMEM) {
            fprintf(stderr, "  allocation %d failed: %d (%s)\n", fail_at, rv,
                    why != NULL ? why : "-");
        }
        CHECK_EQ_INT(rv, FLIP_NOMEM);
        CHECK_EQ_INT(back.n, 0);
        CHECK(!resumable);
        wcache_clear(&back);
    }
    CHECK(failures >= 5);
    CHECK_EQ_INT(back.n, 3);
    CHECK_EQ_INT(back.revision, 77);
    CHECK(strcmp(back.cluster_id, "c0ffee") == 0);
    CHECK(strcmp(wcache_get(&back, "a.1")->value.u.s, long_text) == 0);
    CHECK(resumable);
    wcache_clear(&back);
    wcache_clear(&c);
    wprefixes_clear(&ps);
    buf_close(&img);
    buf_close(&good);
}

/* ---- files -------------------------------------------------------------- */

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CHECK(fd >= 0);
    CHECK(write(fd, p, n) == (ssize_t)n);
    CHECK(close(fd) == 0);
}

/* The whole file at path into out (at most n bytes); its size. */
static size_t read_file(const char *path, uint8_t *out, size_t n)
{
    int fd = open(path, O_RDONLY);
    ssize_t k;

    CHECK(fd >= 0);
    k = read(fd, out, n);
    CHECK(k >= 0);
    close(fd);
    return (size_t)k;
}

static int dir_entries(const char *dir)
{
    char cmd[600];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    CHECK(fscanf(p, "%d", &n) == 1);
    pclose(p);
    return n;
}

/* An empty file is a truncated one; a file over the size limit is not
 * read at all; a device is not a file (whatever errno said before); a
 * path through a regular file is unreadable, not missing; and a load with
 * no memory says so. Each failure leaves the table empty. */
TEST(lkg_load_refuses_what_is_not_a_good_file, 10)
{
    struct wprefixes all = { NULL, 0 };
    struct wcache back;
    char dir[256];
    char path[512];
    char other[600];
    char want[700];
    char msg[LKG_MSG_MAX];
    const char *why = NULL;
    int resumable = 1;
    int fd;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/app.lkg", dir);
    CHECK_EQ_INT(wprefixes_make(&all, NULL, 0, &why), FLIP_OK);
    wcache_init(&back);
    write_file(path, "", 0);
    CHECK_EQ_INT(lkg_load(path, &all, &back, &resumable, msg, sizeof msg),
                 FLIP_CORRUPT);
    snprintf(want, sizeof want,
             "last-known-good file %s ignored: shorter than its header "
             "(truncated) (it will be rewritten once the watch is live)",
             path);
    CHECK(strcmp(msg, want) == 0);
    CHECK_EQ_INT(back.n, 0);
    CHECK(!resumable);
    /* One byte over the limit (sparse: nothing is written). */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)LKG_MAX_BYTES + 1) == 0);
    close(fd);
    CHECK_EQ_INT(lkg_load(path, &all, &back, &resumable, msg, sizeof msg),
                 FLIP_TOOBIG);
    snprintf(want, sizeof want,
             "last-known-good file %s: larger than 268435456 bytes", path);
    CHECK(strcmp(msg, want) == 0);
    CHECK_EQ_INT(back.n, 0);
    errno = ENOENT; /* left over from some earlier call */
    CHECK_EQ_INT(
        lkg_load("/dev/null", &all, &back, &resumable, msg, sizeof msg),
        FLIP_IOERR);
    CHECK(strcmp(msg, "last-known-good file /dev/null: not a file") == 0);
    snprintf(other, sizeof other, "%s/sub", path);
    CHECK_EQ_INT(lkg_load(other, &all, &back, &resumable, msg, sizeof msg),
                 FLIP_IOERR);
    snprintf(want, sizeof want, "last-known-good file %s: %s", other,
             strerror(ENOTDIR));
    CHECK(strcmp(msg, want) == 0);
    write_file(path, "", 0);
    fail_at = 1;
    allocs = 0;
    flip_heap_set_fault(fault_nth, NULL);
    CHECK_EQ_INT(lkg_load(path, &all, &back, &resumable, msg, sizeof msg),
                 FLIP_NOMEM);
    flip_heap_set_fault(NULL, NULL);
    CHECK_EQ_INT(back.n, 0);
    wcache_clear(&back);
    wprefixes_clear(&all);
    tmpdir_remove(dir);
}

/* A name too long for its temporary file, and a directory where the file
 * should be, fail with a message and leave no temporary file; a name
 * without a directory is stored in the current one. */
TEST(lkg_store_failures_leave_nothing_behind, 10)
{
    static const uint8_t bytes[] = "0123456789";
    char dir[256];
    char path[512];
    char want[700];
    char msg[LKG_MSG_MAX];
    char *long_name;
    uint8_t back[64];
    char cwd[1024];

    tmpdir_make(dir, sizeof dir);
    long_name = flip_malloc(4100);
    CHECK(long_name != NULL);
    memset(long_name, 'n', 4099);
    long_name[4099] = '\0';
    CHECK_EQ_INT(lkg_store(long_name, bytes, 10, msg, sizeof msg), FLIP_IOERR);
    CHECK(strcmp(msg, "last-known-good file name too long") == 0);
    flip_free(long_name);
    snprintf(path, sizeof path, "%s/app.lkg", dir);
    CHECK(mkdir(path, 0755) == 0);
    CHECK_EQ_INT(lkg_store(path, bytes, 10, msg, sizeof msg), FLIP_IOERR);
    snprintf(want, sizeof want, "renaming %s: %s", path, strerror(EISDIR));
    CHECK(strcmp(msg, want) == 0);
    CHECK_EQ_INT(dir_entries(dir), 1); /* the directory, no temporary */
    CHECK_EQ_INT(dir_entries(path), 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(path) == 0);
    CHECK_EQ_INT(lkg_store("here.lkg", bytes, 10, msg, sizeof msg), FLIP_OK);
    CHECK_EQ_INT(msg[0], '\0');
    CHECK(chdir(cwd) == 0);
    snprintf(want, sizeof want, "%s/here.lkg", path);
    CHECK_EQ_INT(read_file(want, back, sizeof back), 10);
    CHECK(memcmp(back, bytes, 10) == 0);
    CHECK_EQ_INT(dir_entries(path), 1);
    tmpdir_remove(dir);
}

/* A write cut short (here by the file size limit, EFBIG) fails the store
 * with the error's name; the old file keeps its contents and the
 * temporary file is removed. */
TEST(lkg_store_short_write_keeps_old_file, 10)
{
    static const uint8_t old_bytes[] = "old";
    uint8_t big[4096];
    uint8_t back[64];
    char dir[256];
    char path[512];
    char want[700];
    char msg[LKG_MSG_MAX];
    struct rlimit lim;
    struct rlimit was;

    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/app.lkg", dir);
    write_file(path, old_bytes, 3);
    memset(big, 'x', sizeof big);
    CHECK(getrlimit(RLIMIT_FSIZE, &was) == 0);
    lim = was;
    lim.rlim_cur = 1000; /* the first write stops at 1000 bytes */
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK_EQ_INT(lkg_store(path, big, sizeof big, msg, sizeof msg), FLIP_IOERR);
    CHECK(setrlimit(RLIMIT_FSIZE, &was) == 0);
    snprintf(want, sizeof want, "writing %s: %s", path, strerror(EFBIG));
    CHECK(strcmp(msg, want) == 0);
    CHECK_EQ_INT(read_file(path, back, sizeof back), 3);
    CHECK(memcmp(back, "old", 3) == 0);
    CHECK_EQ_INT(dir_entries(dir), 1);
    tmpdir_remove(dir);
}
