/* Byte trie; see trie.h. Children are a sorted array searched by binary
 * search: most nodes have one or two children, and keys share long
 * prefixes ("service.feature.x"), so this stays small and cache-friendly. */
#include "trie.h"

#include <string.h>

#include "err.h"
#include "heap.h"

struct trie_child
{
    unsigned char byte;
    struct trie_node *node;
};

struct trie_node
{
    struct trie_child *children; /* sorted by byte */
    size_t n_children;
    void **items;
    size_t n_items;
    size_t cap_items;
};

void trie_init(struct trie *t)
{
    t->root = NULL;
    t->n_items = 0;
}

static void node_free(struct trie_node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n_children; i++) {
        node_free(n->children[i].node);
    }
    flip_free(n->children);
    flip_free(n->items);
    flip_free(n);
}

void trie_close(struct trie *t)
{
    node_free(t->root);
    trie_init(t);
}

/* Index of `byte` among n's children, or where it would be inserted. */
static size_t child_pos(const struct trie_node *n, unsigned char byte)
{
    size_t lo = 0;
    size_t hi = n->n_children;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n->children[mid].byte < byte) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct trie_node *child_get(const struct trie_node *n,
                                   unsigned char byte)
{
    size_t i = child_pos(n, byte);
    if (i < n->n_children && n->children[i].byte == byte) {
        return n->children[i].node;
    }
    return NULL;
}

static struct trie_node *child_add(struct trie_node *n, unsigned char byte)
{
    size_t i = child_pos(n, byte);
    struct trie_child *grown;
    struct trie_node *c = flip_calloc(1, sizeof *c);

    if (c == NULL) {
        return NULL;
    }
    grown = flip_realloc(n->children, (n->n_children + 1) * sizeof *grown);
    if (grown == NULL) {
        flip_free(c);
        return NULL;
    }
    n->children = grown;
    memmove(&n->children[i + 1], &n->children[i],
            (n->n_children - i) * sizeof *grown);
    n->children[i].byte = byte;
    n->children[i].node = c;
    n->n_children++;
    return c;
}

static int node_empty(const struct trie_node *n)
{
    return n->n_children == 0 && n->n_items == 0;
}

/* Drops empty nodes along `prefix` after a failed add or a remove. */
static void prune(struct trie_node *n, const char *prefix, size_t len)
{
    struct trie_node *c;
    size_t i;

    if (len == 0) {
        return;
    }
    i = child_pos(n, (unsigned char)prefix[0]);
    if (i >= n->n_children || n->children[i].byte != (unsigned char)prefix[0]) {
        return;
    }
    c = n->children[i].node;
    prune(c, prefix + 1, len - 1);
    if (node_empty(c)) {
        node_free(c);
        memmove(&n->children[i], &n->children[i + 1],
                (n->n_children - i - 1) * sizeof n->children[0]);
        n->n_children--;
    }
}

int trie_add(struct trie *t, const char *prefix, size_t len, void *item)
{
    struct trie_node *n;

    if (t->root == NULL) {
        t->root = flip_calloc(1, sizeof *t->root);
        if (t->root == NULL) {
            return FLIP_NOMEM;
        }
    }
    n = t->root;
    for (size_t i = 0; i < len; i++) {
        struct trie_node *c = child_get(n, (unsigned char)prefix[i]);
        if (c == NULL) {
            c = child_add(n, (unsigned char)prefix[i]);
        }
        if (c == NULL) {
            prune(t->root, prefix, len);
            return FLIP_NOMEM;
        }
        n = c;
    }
    if (n->n_items == n->cap_items) {
        size_t cap = n->cap_items == 0 ? 2 : n->cap_items * 2;
        void **grown = flip_realloc(n->items, cap * sizeof *grown);
        if (grown == NULL) {
            prune(t->root, prefix, len);
            return FLIP_NOMEM;
        }
        n->items = grown;
        n->cap_items = cap;
    }
    n->items[n->n_items++] = item;
    t->n_items++;
    return FLIP_OK;
}

int trie_remove(struct trie *t, const char *prefix, size_t len, void *item)
{
    struct trie_node *n = t->root;

    for (size_t i = 0; n != NULL && i < len; i++) {
        n = child_get(n, (unsigned char)prefix[i]);
    }
    if (n == NULL) {
        return FLIP_NOTFOUND;
    }
    for (size_t i = 0; i < n->n_items; i++) {
        if (n->items[i] == item) {
            n->items[i] = n->items[--n->n_items];
            t->n_items--;
            prune(t->root, prefix, len);
            if (node_empty(t->root)) {
                node_free(t->root);
                t->root = NULL;
            }
            return FLIP_OK;
        }
    }
    return FLIP_NOTFOUND;
}

void trie_match(const struct trie *t,
                const char *key,
                size_t len,
                trie_visit_cb cb,
                void *arg)
{
    const struct trie_node *n = t->root;

    for (size_t i = 0; n != NULL; i++) {
        for (size_t k = 0; k < n->n_items; k++) {
            cb(arg, n->items[k]);
        }
        if (i == len) {
            break;
        }
        n = child_get(n, (unsigned char)key[i]);
    }
}
