/* Store shapes; see shape.h. */
#include "shape.h"

#include "lib/err.h"
#include "runner.h"

struct shape shape_of(struct store *s)
{
    struct shape sh = { store_hash(s), store_applied_index(s),
                        store_compacted(s), store_bytes(s) };
    return sh;
}

struct shape shape_in(const char *dir)
{
    struct store *s = NULL;
    struct shape sh;

    CHECK_EQ_INT(store_open(&s, dir, 1u << 26), FLIP_OK);
    sh = shape_of(s);
    store_close(s);
    return sh;
}

int shape_same(const struct shape *a, const struct shape *b)
{
    return a->hash == b->hash && a->applied == b->applied &&
           a->compacted == b->compacted && a->bytes == b->bytes;
}

void shape_check(const struct shape *got, const struct shape *want)
{
    if (!shape_same(got, want)) {
        fprintf(stderr,
                "  store: hash %016llx applied %llu compacted %llu bytes "
                "%llu, expected %016llx %llu %llu %llu\n",
                (unsigned long long)got->hash, (unsigned long long)got->applied,
                (unsigned long long)got->compacted,
                (unsigned long long)got->bytes, (unsigned long long)want->hash,
                (unsigned long long)want->applied,
                (unsigned long long)want->compacted,
                (unsigned long long)want->bytes);
        CHECK(0);
    }
}
