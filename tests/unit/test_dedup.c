/* The request-id digest (raft/dedup.c): an id names one change, so the
 * same id on a change that differs in anything the digest covers (op,
 * key, value, expected revision, change_type) must digest differently, and
 * apply then refuses it instead of answering it with the first change's
 * outcome; the actor and reason are left out on purpose (raft/dedup.h). */
#include <stdint.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/err.h"
#include "raft/dedup.h"

struct change
{
    Flipcmd__Change ch;
    Flip__Value value;
    Flip__RequestId rid;
    uint8_t client[DEDUP_CLIENT_LEN];
};

static void change_init(struct change *c, const char *key)
{
    flipcmd__change__init(&c->ch);
    flip__value__init(&c->value);
    flip__request_id__init(&c->rid);
    memset(c->client, 0x5a, sizeof c->client);
    c->rid.has_client_id = 1;
    c->rid.client_id.data = c->client;
    c->rid.client_id.len = sizeof c->client;
    c->rid.has_seq = 1;
    c->rid.seq = 7;
    c->value.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    c->value.bool_value = 1;
    c->ch.has_op = 1;
    c->ch.op = FLIPCMD__OP__SET;
    c->ch.key = (char *)key;
    c->ch.value = &c->value;
    c->ch.actor = (char *)"alice";
    c->ch.request_id = &c->rid;
}

static uint64_t digest(const struct change *c)
{
    struct dedup_id id;
    const char *why = NULL;

    CHECK_EQ_INT(dedup_id_of(&c->ch, &id, &why), FLIP_OK);
    CHECK(id.seq == 7);
    return id.digest;
}

/* Every member the digest covers changes it; actor and reason do not. */
TEST(dedup_digest_covers_the_change, 10)
{
    struct change a;
    struct change b;
    uint64_t base;

    change_init(&a, "checkout.new_flow");
    base = digest(&a);

    change_init(&b, "checkout.new_flow");
    CHECK(digest(&b) == base);
    b.ch.actor = (char *)"bob";
    b.ch.reason = (char *)"another reason";
    CHECK(digest(&b) == base);

    change_init(&b, "checkout.old_flow");
    CHECK(digest(&b) != base);

    change_init(&b, "checkout.new_flow");
    b.value.bool_value = 0;
    CHECK(digest(&b) != base);

    change_init(&b, "checkout.new_flow");
    b.value.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    b.value.int_value = 1;
    CHECK(digest(&b) != base);

    change_init(&b, "checkout.new_flow");
    b.ch.op = FLIPCMD__OP__DELETE;
    b.ch.value = NULL;
    CHECK(digest(&b) != base);

    change_init(&b, "checkout.new_flow");
    b.ch.has_expected_revision = 1;
    b.ch.expected_revision = 0;
    CHECK(digest(&b) != base);
    b.ch.expected_revision = 12;
    CHECK(digest(&b) != base);

    change_init(&b, "checkout.new_flow");
    b.ch.has_change_type = 1;
    b.ch.change_type = 1;
    CHECK(digest(&b) != base);
}
