/* Fuzzes the server's inbound path without sockets: the byte stream a
 * client sends is cut into frames as server/conn.c does (in reads of a
 * size taken from the input, with a frame limit taken from the input), each
 * frame is decoded as a Request, and the decoded request goes through the
 * validation the cmd_* handlers run before anything is proposed. A set or
 * delete that passes is built into a replicated entry (proto/command.c)
 * and read back: what a node applies must be what was validated.
 *
 * Input: byte 0 = read size - 1, byte 1 selects the frame limit, the rest
 * is the stream. */
#include <string.h>

#include "fuzz.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/trie.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "proto/frame.h"

static int same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* The entry a validated change becomes decodes to the same fields. */
static void entry_roundtrip(Flipcmd__Change *ch)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change *changes[1] = { ch };
    Flipcmd__Command *back = NULL;
    struct buf b;
    size_t n;

    cmd.has_time_ms = 1;
    cmd.time_ms = 1700000000000;
    cmd.n_changes = 1;
    cmd.changes = changes;
    n = command_size(&cmd);
    buf_init(&b);
    FUZZ_ASSERT(buf_reserve(&b, n) == FLIP_OK);
    command_write(&cmd, buf_tail(&b));
    /* A client's value is still passed through as decoded (F1/F6 are
     * fixed by re-encoding it, elsewhere): only a clean decode is
     * compared here, never required. */
    if (command_decode(buf_tail(&b), n, &back) == FLIP_OK) {
        FUZZ_ASSERT(back->n_changes == 1);
        FUZZ_ASSERT(same_text(back->changes[0]->key, ch->key));
        FUZZ_ASSERT(same_text(back->changes[0]->actor, ch->actor));
        FUZZ_ASSERT(same_text(back->changes[0]->reason, ch->reason));
        if (ch->value != NULL) {
            const Flip__Value *v = back->changes[0]->value;
            FUZZ_ASSERT(v != NULL && v->kind_case == ch->value->kind_case);
            if (v->kind_case == FLIP__VALUE__KIND_JSON_VALUE) {
                FUZZ_ASSERT(
                    codec_json_valid(v->json_value, strlen(v->json_value)));
            }
        }
        command_free(back);
    }
    buf_close(&b);
}

static int text_ok(const char *key, const char *actor, const char *reason)
{
    const char *why = NULL;

    if (codec_check_key(key, &why) != FLIP_OK ||
        codec_check_text(actor, CODEC_ACTOR_MAX, &why) != FLIP_OK ||
        codec_check_text(reason, CODEC_REASON_MAX, &why) != FLIP_OK) {
        FUZZ_ASSERT(why != NULL); /* every refusal says why */
        return 0;
    }
    return 1;
}

/* A set or delete whose text passes validation becomes an entry. */
static void change(Flipcmd__Op op,
                   char *key,
                   Flip__Value *value,
                   char *actor,
                   char *reason)
{
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;

    if (!text_ok(key, actor, reason)) {
        return;
    }
    ch.has_op = 1;
    ch.op = op;
    ch.key = key;
    ch.value = value;
    ch.actor = actor;
    ch.reason = reason;
    entry_roundtrip(&ch);
}

static void subscribe_prefixes(const Flip__SubscribeRequest *s)
{
    const char *why = NULL;
    struct trie t;
    size_t n = s->n_prefixes;

    if (n > 256) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (codec_check_prefix(s->prefixes[i], &why) != FLIP_OK) {
            return;
        }
    }
    trie_init(&t);
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(trie_add(&t, s->prefixes[i], strlen(s->prefixes[i]),
                             (void *)(uintptr_t)(i + 1)) == FLIP_OK);
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(trie_remove(&t, s->prefixes[i], strlen(s->prefixes[i]),
                                (void *)(uintptr_t)(i + 1)) == FLIP_OK);
    }
    trie_close(&t);
}

static void handle(const Flip__Request *req)
{
    const char *why = NULL;
    struct buf out;

    buf_init(&out); /* any decoded request re-encodes */
    (void)codec_request_encode(req, UINT32_MAX, &out);
    buf_close(&out);
    switch (req->op_case) {
    case FLIP__REQUEST__OP_HELLO:
        (void)codec_check_text(req->hello->client_name, CODEC_ACTOR_MAX, &why);
        break;
    case FLIP__REQUEST__OP_SET:
        if (codec_check_value(req->set->value, &why) == FLIP_OK) {
            change(FLIPCMD__OP__SET, req->set->key, req->set->value,
                   req->set->actor, req->set->reason);
        }
        break;
    case FLIP__REQUEST__OP_DELETE:
        change(FLIPCMD__OP__DELETE, req->delete_->key, NULL,
               req->delete_->actor, req->delete_->reason);
        break;
    case FLIP__REQUEST__OP_GET:
        (void)codec_check_key(req->get->key, &why);
        break;
    case FLIP__REQUEST__OP_LIST:
        (void)codec_check_prefix(req->list->prefix, &why);
        break;
    case FLIP__REQUEST__OP_SUBSCRIBE:
        subscribe_prefixes(req->subscribe);
        break;
    default:
        (void)codec_request_is_unknown(req);
        break;
    }
}

/* One frame as server/conn.c takes it: undecodable closes the stream. */
static int on_frame(void *arg, const uint8_t *payload, size_t len)
{
    Flip__Request *req = NULL;

    (void)arg;
    if (codec_request_decode(payload, len, &req) != FLIP_OK) {
        return 1;
    }
    handle(req);
    codec_request_free(req);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    size_t chunk = fuzz_byte(&in) + 1;
    size_t max = fuzz_byte(&in) < 128 ? FRAME_MAX_DEFAULT : 64;

    fuzz_frames(&in, chunk, max, on_frame, NULL);
    return 0;
}
