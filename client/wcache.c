/* The watch's copy of the flags; see wcache.h. */
#include "client/wcache.h"

#include <stdlib.h>
#include <string.h>

#include "client/flag.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"

/* ---- flags -------------------------------------------------------------- */

struct flip_flag *wcache_flag_new(void)
{
    return flip_calloc(1, sizeof(struct flip_flag));
}

void wcache_flag_free(struct flip_flag *f)
{
    if (f != NULL) {
        flip_flag_clear(f);
        flip_free(f);
    }
}

/* The value of a wire flag of an event: one the codec accepts (the
 * server validated it, so anything else is a broken stream). */
static int value_from_wire(const Flip__Value *w,
                           struct flip_value *v,
                           const char **why)
{
    if (w == NULL || codec_check_value(w, why) != FLIP_OK) {
        if (w == NULL) {
            *why = "flag without a value";
        }
        return FLIP_PROTO;
    }
    return flag_value_from_wire(w, v, why);
}

int wcache_flag_from_wire(const Flip__Flag *src,
                          struct flip_flag *dst,
                          int *deleted,
                          const char **why)
{
    int rv;

    memset(dst, 0, sizeof *dst);
    *deleted = src->has_deleted && src->deleted;
    if (src->key == NULL || codec_check_key(src->key, why) != FLIP_OK) {
        *why = src->key == NULL ? "flag without a key" : "flag with a bad key";
        return FLIP_PROTO;
    }
    if (!*deleted || src->value != NULL) {
        rv = value_from_wire(src->value, &dst->value, why);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    return flag_meta_from_wire(src, dst);
}

/* ---- the table ---------------------------------------------------------- */

void wcache_init(struct wcache *c)
{
    memset(c, 0, sizeof *c);
}

void wcache_clear(struct wcache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        wcache_flag_free(c->slots[i]);
    }
    flip_free(c->slots);
    wcache_init(c);
}

void wcache_swap(struct wcache *a, struct wcache *b)
{
    struct wcache t = *a;

    *a = *b;
    *b = t;
}

/* FNV-1a: keys are short and come from our own store. */
uint64_t wcache_hash_key(const char *key)
{
    uint64_t h = 14695981039346656037ull;

    for (; *key != '\0'; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ull;
    }
    return h;
}

/* Slot holding key, or the empty slot where it would go. cap > 0. */
static size_t find_slot(const struct wcache *c, const char *key)
{
    size_t mask = c->cap - 1;
    size_t i = (size_t)wcache_hash_key(key) & mask;

    while (c->slots[i] != NULL && strcmp(c->slots[i]->key, key) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

const struct flip_flag *wcache_get(const struct wcache *c, const char *key)
{
    if (c->n == 0) {
        return NULL;
    }
    return c->slots[find_slot(c, key)];
}

static int grow(struct wcache *c, size_t cap)
{
    struct flip_flag **old = c->slots;
    size_t old_cap = c->cap;

    c->slots = flip_calloc(cap, sizeof *c->slots);
    if (c->slots == NULL) {
        c->slots = old;
        return FLIP_NOMEM;
    }
    c->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] != NULL) {
            c->slots[find_slot(c, old[i]->key)] = old[i];
        }
    }
    flip_free(old);
    return FLIP_OK;
}

int wcache_reserve(struct wcache *c, size_t more)
{
    size_t want = c->n + more;
    size_t cap = c->cap == 0 ? WCACHE_MIN_CAP : c->cap;

    if (more > SIZE_MAX / 8 - c->n) {
        return FLIP_NOMEM;
    }
    /* Load factor at most 3/4: probe chains stay short. */
    while (want * 4 > cap * 3) {
        cap *= 2;
    }
    return cap == c->cap ? FLIP_OK : grow(c, cap);
}

int wcache_put(struct wcache *c, struct flip_flag *f, struct flip_flag **old)
{
    size_t i;
    int rv;

    *old = NULL;
    rv = wcache_reserve(c, 1);
    if (rv != FLIP_OK) {
        return rv;
    }
    i = find_slot(c, f->key);
    if (c->slots[i] != NULL) {
        *old = c->slots[i];
    } else {
        c->n++;
    }
    c->slots[i] = f;
    return FLIP_OK;
}

struct flip_flag *wcache_take(struct wcache *c, const char *key)
{
    struct flip_flag *gone;
    size_t mask;
    size_t i;
    size_t j;
    size_t home;

    if (c->n == 0) {
        return NULL;
    }
    mask = c->cap - 1;
    i = find_slot(c, key);
    gone = c->slots[i];
    if (gone == NULL) {
        return NULL;
    }
    c->slots[i] = NULL;
    c->n--;
    /* Backward shift: pull up every later member of the probe run that
     * may no longer be found across the hole at i. */
    for (j = (i + 1) & mask; c->slots[j] != NULL; j = (j + 1) & mask) {
        home = (size_t)wcache_hash_key(c->slots[j]->key) & mask;
        /* The entry at j stays if its home lies cyclically in (i, j]. */
        if (i <= j ? (home > i && home <= j) : (home > i || home <= j)) {
            continue;
        }
        c->slots[i] = c->slots[j];
        c->slots[j] = NULL;
        i = j;
    }
    return gone;
}

const struct flip_flag *wcache_next(const struct wcache *c, size_t *pos)
{
    while (*pos < c->cap) {
        const struct flip_flag *f = c->slots[(*pos)++];
        if (f != NULL) {
            return f;
        }
    }
    return NULL;
}

/* ---- prefixes ----------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void wprefixes_clear(struct wprefixes *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        flip_free(ps->p[i]);
    }
    flip_free(ps->p);
    ps->p = NULL;
    ps->n = 0;
}

int wprefixes_make(struct wprefixes *out,
                   const char *const *in,
                   size_t n,
                   const char **why)
{
    size_t kept = 0;
    size_t i;

    out->p = NULL;
    out->n = 0;
    if (n > WCACHE_MAX_PREFIXES) {
        *why = "more than 256 prefixes";
        return FLIP_INVALID;
    }
    for (i = 0; i < n; i++) {
        if (in[i] == NULL || codec_check_prefix(in[i], why) != FLIP_OK) {
            *why = in[i] == NULL ? "NULL prefix" : *why;
            return FLIP_INVALID;
        }
    }
    out->p = flip_calloc(n > 0 ? n : 1, sizeof *out->p);
    if (out->p == NULL) {
        return FLIP_NOMEM;
    }
    for (i = 0; i < (n > 0 ? n : 1); i++) {
        out->p[i] = flip_strdup(n > 0 ? in[i] : "");
        if (out->p[i] == NULL) {
            out->n = i;
            wprefixes_clear(out);
            return FLIP_NOMEM;
        }
    }
    out->n = i;
    /* Sorted, a prefix comes right before the strings it covers: keep a
     * string only when the last one kept does not cover it. */
    qsort(out->p, out->n, sizeof *out->p, cmp_str);
    for (i = 0; i < out->n; i++) {
        if (kept > 0 && starts_with(out->p[i], out->p[kept - 1])) {
            flip_free(out->p[i]);
            continue;
        }
        out->p[kept++] = out->p[i];
    }
    out->n = kept;
    return FLIP_OK;
}

int wprefixes_match(const struct wprefixes *ps, const char *key)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (starts_with(key, ps->p[i])) {
            return 1;
        }
    }
    return 0;
}

int wprefixes_cover(const struct wprefixes *outer,
                    const struct wprefixes *inner)
{
    for (size_t i = 0; i < inner->n; i++) {
        if (!wprefixes_match(outer, inner->p[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- CHANGE batches ----------------------------------------------------- */

void wbatch_free(struct wbatch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        wcache_flag_free(b->items[i].flag);
        wcache_flag_free(b->items[i].old);
    }
    flip_free(b->items);
    memset(b, 0, sizeof *b);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if two of the batch's n keys are equal. Sorted copies of the key
 * pointers, so O(n log n): a server decides n (a frame may hold hundreds
 * of thousands of flags), and comparing every pair froze the watch thread
 * for minutes while it still reported LIVE (F14). */
static int has_duplicate_key(const struct wbatch *b, int *dup)
{
    const char **keys = flip_malloc(b->n * sizeof *keys);

    if (keys == NULL) {
        return FLIP_NOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        keys[i] = b->items[i].flag->key;
    }
    qsort(keys, b->n, sizeof *keys, cmp_key);
    *dup = 0;
    for (size_t i = 1; i < b->n && !*dup; i++) {
        *dup = strcmp(keys[i - 1], keys[i]) == 0;
    }
    flip_free(keys);
    return FLIP_OK;
}

int wbatch_prepare(struct wbatch *b,
                   const struct wcache *c,
                   const struct wprefixes *ps,
                   const Flip__Event *ev,
                   const char **why)
{
    struct wchange *it;
    int dup = 0;
    int rv = FLIP_OK;

    memset(b, 0, sizeof *b);
    if (!ev->has_revision || ev->revision <= c->revision) {
        *why = "change at or below the revision already applied";
        return FLIP_PROTO;
    }
    b->revision = ev->revision;
    if (ev->n_flags == 0) {
        return FLIP_OK;
    }
    b->items = flip_calloc(ev->n_flags, sizeof *b->items);
    if (b->items == NULL) {
        return FLIP_NOMEM;
    }
    for (size_t i = 0; i < ev->n_flags; i++) {
        it = &b->items[b->n];
        it->flag = wcache_flag_new();
        if (it->flag == NULL) {
            rv = FLIP_NOMEM;
            goto err;
        }
        b->n++;
        rv = wcache_flag_from_wire(ev->flags[i], it->flag, &it->deleted, why);
        if (rv != FLIP_OK) {
            goto err;
        }
        if (!wprefixes_match(ps, it->flag->key)) {
            *why = "change of a key outside the subscribed prefixes";
            rv = FLIP_PROTO;
            goto err;
        }
        /* The flag's own revision is the event's, whatever was sent. */
        it->flag->revision = b->revision;
    }
    rv = has_duplicate_key(b, &dup);
    if (rv == FLIP_OK && dup) {
        *why = "one change event names a key twice";
        rv = FLIP_PROTO;
    }
    if (rv != FLIP_OK) {
        goto err;
    }
    return FLIP_OK;

err:
    wbatch_free(b);
    return rv;
}

int wbatch_commit(struct wbatch *b, struct wcache *c)
{
    struct wchange *it;
    size_t added = 0;
    int rv;

    for (size_t i = 0; i < b->n; i++) {
        added += !b->items[i].deleted &&
                 wcache_get(c, b->items[i].flag->key) == NULL;
    }
    rv = wcache_reserve(c, added);
    if (rv != FLIP_OK) {
        return rv;
    }
    for (size_t i = 0; i < b->n; i++) {
        it = &b->items[i];
        it->shown = it->flag;
        if (it->deleted) {
            it->old = wcache_take(c, it->flag->key);
            continue;
        }
        /* Room was reserved above: cannot fail. */
        (void)wcache_put(c, it->flag, &it->old);
        it->flag = NULL; /* the table's now */
    }
    c->revision = b->revision;
    return FLIP_OK;
}

/* ---- snapshots ---------------------------------------------------------- */

int wcache_stage_item(struct wcache *staging,
                      const struct wprefixes *ps,
                      const Flip__Event *ev,
                      const struct flip_flag **added,
                      const char **why)
{
    struct flip_flag *f = NULL;
    struct flip_flag *old = NULL;
    int deleted = 0;
    int rv;

    *added = NULL;
    if (ev->n_flags != 1) {
        *why = "snapshot item without exactly one flag";
        return FLIP_PROTO;
    }
    f = wcache_flag_new();
    if (f == NULL) {
        return FLIP_NOMEM;
    }
    rv = wcache_flag_from_wire(ev->flags[0], f, &deleted, why);
    if (rv == FLIP_OK && deleted) {
        *why = "snapshot item marked deleted";
        rv = FLIP_PROTO;
    }
    if (rv == FLIP_OK && !wprefixes_match(ps, f->key)) {
        *why = "snapshot item outside the subscribed prefixes";
        rv = FLIP_PROTO;
    }
    if (rv == FLIP_OK && wcache_get(staging, f->key) != NULL) {
        *why = "snapshot names a key twice";
        rv = FLIP_PROTO;
    }
    if (rv == FLIP_OK) {
        rv = wcache_put(staging, f, &old);
    }
    if (rv != FLIP_OK) {
        wcache_flag_free(f);
        return rv;
    }
    *added = f;
    return FLIP_OK;
}
