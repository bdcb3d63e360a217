/* Private to the client library: the watch's copy of the flags.
 *
 * A hash table key -> struct flip_flag (open addressing, linear probing,
 * backward-shift deletion, so there are no tombstones), the revision the
 * table stands for, and the pure steps a subscription applies to it:
 * converting wire flags, a batch of changes at one revision, a snapshot
 * staged aside and swapped in whole. No locks and no I/O here: watch.c
 * holds the lock around the few calls that modify a table readers see.
 *
 * Ownership: a table owns every flag in it (each a flip_malloc'd struct
 * flip_flag whose strings it also owns) and frees them in wcache_clear. */
#ifndef FLIP_CLIENT_WCACHE_H
#define FLIP_CLIENT_WCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "client/flip.h"
#include "flip.pb-c.h"

#define WCACHE_MAX_PREFIXES   256
/* Longest cluster id kept (flipd sends 32 hex digits). */
#define WCACHE_CLUSTER_ID_MAX 64

struct wcache
{
    struct flip_flag **slots; /* cap entries; NULL = empty slot */
    size_t cap;               /* 0 or a power of two */
    size_t n;                 /* flags held */
    uint64_t revision;        /* every change up to it is reflected */
    /* The cluster the state came from ("" unknown): a revision is a resume
     * point only within its cluster. */
    char cluster_id[WCACHE_CLUSTER_ID_MAX + 1];
};

void wcache_init(struct wcache *c);
/* Frees every flag and the slots; the table is empty (revision 0) and
 * reusable. */
void wcache_clear(struct wcache *c);
/* Exchanges two tables. */
void wcache_swap(struct wcache *a, struct wcache *b);

/* @return the flag stored under key (owned by the table, valid until the
 *         table next changes), or NULL. */
const struct flip_flag *wcache_get(const struct wcache *c, const char *key);

/* Makes room for `more` insertions that cannot then fail.
 * @return FLIP_OK or FLIP_NOMEM (table unchanged). */
int wcache_reserve(struct wcache *c, size_t more);

/* Stores f (a flip_malloc'd flag, ownership passes to the table) under
 * f->key. The flag it replaces, if any, is handed back through *old
 * (owned by the caller; NULL if none).
 * @return FLIP_OK or FLIP_NOMEM (nothing changed, f still the caller's);
 *         never FLIP_NOMEM after a successful wcache_reserve. */
int wcache_put(struct wcache *c, struct flip_flag *f, struct flip_flag **old);

/* Removes key. @return the removed flag (now the caller's) or NULL. */
struct flip_flag *wcache_take(struct wcache *c, const char *key);

/* Iteration in slot order: start with *pos = 0; each call returns the next
 * flag or NULL at the end. The table must not change meanwhile. */
const struct flip_flag *wcache_next(const struct wcache *c, size_t *pos);

/* A new heap flag, zeroed. NULL on NOMEM. */
struct flip_flag *wcache_flag_new(void);
/* flip_flag_clear + free. NULL is a no-op. */
void wcache_flag_free(struct flip_flag *f);

/* Converts a wire flag of an event into *dst (overwritten). A deletion
 * (deleted = true) may come without a value: value.type is then
 * FLIP_TYPE_AUTO. The key must be a valid key, and anything else must
 * have one valid value (codec_check_value).
 * @param[out] deleted  1 for a deletion.
 * @param[out] why      static text on failure.
 * @return FLIP_OK, FLIP_PROTO (*dst zeroed), FLIP_NOMEM (*dst zeroed). */
int wcache_flag_from_wire(const Flip__Flag *src,
                          struct flip_flag *dst,
                          int *deleted,
                          const char **why);

/* ---- prefixes ----------------------------------------------------------- */

/* A normalised prefix set: sorted, without duplicates, without a prefix
 * that another one already covers; "every flag" is the single prefix "". */
struct wprefixes
{
    char **p; /* owned strings */
    size_t n;
};

/* Builds a normalised set from n strings (n == 0: every flag).
 * @return FLIP_OK, FLIP_INVALID (a prefix is not "" or key characters, or
 *         n > WCACHE_MAX_PREFIXES; *why says which), FLIP_NOMEM. */
int wprefixes_make(struct wprefixes *out,
                   const char *const *in,
                   size_t n,
                   const char **why);
void wprefixes_clear(struct wprefixes *ps);
/* 1 when key starts with one of the prefixes. */
int wprefixes_match(const struct wprefixes *ps, const char *key);
/* 1 when every key `inner` matches is also matched by `outer`. */
int wprefixes_cover(const struct wprefixes *outer,
                    const struct wprefixes *inner);

/* ---- applying a CHANGE event ------------------------------------------- */

/* One flag of a CHANGE, converted. */
struct wchange
{
    struct flip_flag *flag; /* set: the new flag (moves into the table);
                             * delete: key, revision and audit fields */
    int deleted;
    struct flip_flag *old; /* after commit: what the table held before */
    /* After commit: the flag to show the application (the table's for a
     * set, `flag` for a delete); valid until the table next changes. */
    const struct flip_flag *shown;
};

/* Every change of one CHANGE event, converted before anything is applied
 * so that applying cannot fail half-way. */
struct wbatch
{
    struct wchange *items; /* n items, owned */
    size_t n;
    uint64_t revision;
};

/* Converts a CHANGE event for table c (not modified): the revision must
 * be above c->revision, every flag valid and matching ps, no key twice.
 * @return FLIP_OK; FLIP_PROTO (*why says why; nothing to free);
 *         FLIP_NOMEM. */
int wbatch_prepare(struct wbatch *b,
                   const struct wcache *c,
                   const struct wprefixes *ps,
                   const Flip__Event *ev,
                   const char **why);
/* Applies a prepared batch to the table it was prepared against (its
 * revision unchanged since): sets, deletes, the new revision. Replaced
 * and removed flags move into items[k].old.
 * @return FLIP_OK, or FLIP_NOMEM with the table unchanged (room for the
 *         new keys is made first). */
int wbatch_commit(struct wbatch *b, struct wcache *c);
/* Frees the batch: flags not moved into a table and every `old`. */
void wbatch_free(struct wbatch *b);

/* ---- snapshots ---------------------------------------------------------- */

/* Adds one SNAPSHOT_ITEM's flag (ev->flags[0], which must not be a
 * deletion, must match ps, and must not repeat a key) to the staging
 * table.
 * @param[out] added the stored flag (owned by staging), for the event.
 * @return FLIP_OK, FLIP_PROTO (*why), FLIP_NOMEM. */
int wcache_stage_item(struct wcache *staging,
                      const struct wprefixes *ps,
                      const Flip__Event *ev,
                      const struct flip_flag **added,
                      const char **why);

/* The table's smallest size (a power of two) and its hash: the tests
 * choose keys by their home slot to stage collisions. */
#define WCACHE_MIN_CAP 16
uint64_t wcache_hash_key(const char *key);

#endif
