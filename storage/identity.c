/* Cluster identity rows in meta; see identity.h. */
#include "identity.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "lib/buf.h"
#include "lib/err.h"

#define KEY_CLUSTER "cluster_id"
#define KEY_JOINED  "joined:"
#define JOINED_LEN  (sizeof KEY_JOINED - 1 + 8)

int identity_valid(const char *id)
{
    size_t i;

    if (id == NULL) {
        return 0;
    }
    for (i = 0; i < IDENTITY_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return id[i] == '\0';
}

int identity_generate(char *out)
{
    uint8_t raw[IDENTITY_ID_LEN / 2];

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        return FLIP_IOERR;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    }
    return FLIP_OK;
}

static int copy_id(void *arg,
                   const void *key,
                   size_t klen,
                   const void *val,
                   size_t vlen)
{
    char *out = arg;

    (void)key;
    (void)klen;
    if (vlen == IDENTITY_ID_LEN) {
        memcpy(out, val, IDENTITY_ID_LEN);
        out[IDENTITY_ID_LEN] = '\0';
    }
    return 1;
}

int identity_get(struct store *s, char *out)
{
    int rv;

    out[0] = '\0';
    rv = store_get(s, STORE_META, KEY_CLUSTER, strlen(KEY_CLUSTER), copy_id,
                   out);
    if (rv == FLIP_OK && out[0] == '\0') {
        return FLIP_NOTFOUND; /* malformed row: treated as none */
    }
    return rv;
}

static void joined_key(uint8_t *key, uint64_t id)
{
    memcpy(key, KEY_JOINED, sizeof KEY_JOINED - 1);
    buf_put_u64be(key + sizeof KEY_JOINED - 1, id);
}

int identity_joined(struct store *s, uint64_t id)
{
    uint8_t key[JOINED_LEN];

    joined_key(key, id);
    return store_has(s, STORE_META, key, sizeof key);
}

int identity_txn_apply(struct store_txn *txn,
                       const char *cluster_id,
                       uint64_t joined_member)
{
    const void *old = NULL;
    size_t old_len = 0;
    int rv;

    if (identity_valid(cluster_id)) {
        rv = store_txn_get(txn, STORE_META, KEY_CLUSTER, strlen(KEY_CLUSTER),
                           &old, &old_len);
        if (rv == FLIP_NOTFOUND) {
            rv = store_put(txn, STORE_META, KEY_CLUSTER, strlen(KEY_CLUSTER),
                           cluster_id, IDENTITY_ID_LEN);
        }
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    if (joined_member != 0) {
        uint8_t key[JOINED_LEN];
        joined_key(key, joined_member);
        rv = store_put(txn, STORE_META, key, sizeof key, "", 0);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    return FLIP_OK;
}
