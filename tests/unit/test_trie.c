/* Prefix trie: matching, removal and pruning, against a brute-force
 * reference on random prefixes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/err.h"
#include "lib/trie.h"

struct hits
{
    int count[64];
};

static void count_hit(void *arg, void *item)
{
    struct hits *h = arg;
    h->count[(int)(intptr_t)item]++;
}

/* Every registered prefix of a key matches, nothing else does, and items
 * removed stop matching; the trie frees all nodes when emptied. */
TEST(trie_matches_prefixes, 10)
{
    static const char *prefixes[] = {
        "", "a", "a.b", "a.b", "b", "abc", "a.bc"
    };
    struct trie t;
    struct hits h;
    char key[8];

    srand(runner_seed());
    trie_init(&t);
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_INT(
            trie_add(&t, prefixes[i], strlen(prefixes[i]), (void *)(intptr_t)i),
            FLIP_OK);
    }
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % 6);
        for (size_t i = 0; i < len; i++) {
            key[i] = "ab.c"[rand() % 4];
        }
        key[len] = '\0';
        memset(&h, 0, sizeof h);
        trie_match(&t, key, len, count_hit, &h);
        for (int i = 0; i < 7; i++) {
            size_t pl = strlen(prefixes[i]);
            int want = pl <= len && memcmp(prefixes[i], key, pl) == 0;
            CHECK_EQ_INT(h.count[i], want);
        }
    }
    CHECK_EQ_INT(trie_remove(&t, "a.b", 3, (void *)(intptr_t)2), FLIP_OK);
    CHECK_EQ_INT(trie_remove(&t, "a.b", 3, (void *)(intptr_t)2), FLIP_NOTFOUND);
    memset(&h, 0, sizeof h);
    trie_match(&t, "a.bz", 4, count_hit, &h);
    CHECK_EQ_INT(h.count[2], 0);
    CHECK_EQ_INT(h.count[3], 1);
    for (int i = 0; i < 7; i++) {
        if (i != 2) {
            CHECK_EQ_INT(trie_remove(&t, prefixes[i], strlen(prefixes[i]),
                                     (void *)(intptr_t)i),
                         FLIP_OK);
        }
    }
    CHECK(t.root == NULL);
    CHECK_EQ_INT(t.n_items, 0);
    trie_close(&t);
}
