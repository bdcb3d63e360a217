/* Byte trie from key prefixes to items, for subscription matching: given
 * a key, visit every item registered under a prefix of that key, in
 * O(key length + matches) whatever the number of registered prefixes.
 *
 * Items are opaque pointers owned by the caller; the trie owns only its
 * nodes. The same (prefix, item) pair may be added once. */
#ifndef FLIP_LIB_TRIE_H
#define FLIP_LIB_TRIE_H

#include <stddef.h>

struct trie_node;

struct trie
{
    struct trie_node *root; /* NULL while empty */
    size_t n_items;
};

typedef void (*trie_visit_cb)(void *arg, void *item);

void trie_init(struct trie *t);
/* Frees every node; items are not touched. */
void trie_close(struct trie *t);
/* FLIP_OK or FLIP_NOMEM (trie unchanged). */
int trie_add(struct trie *t, const char *prefix, size_t len, void *item);
/* Removes one registration; FLIP_NOTFOUND if it was not there. Empty
 * nodes are freed. */
int trie_remove(struct trie *t, const char *prefix, size_t len, void *item);
/* Calls cb for every item whose prefix is a prefix of key (the empty
 * prefix matches everything), shortest prefix first. cb must not modify
 * the trie. */
void trie_match(const struct trie *t,
                const char *key,
                size_t len,
                trie_visit_cb cb,
                void *arg);

#endif
