/* Writes the seed corpora of the fuzz harnesses: well-formed inputs of
 * every message type, so libFuzzer starts from the shapes the decoders
 * accept instead of finding them byte by byte. Run at build time:
 *
 *   seedgen DIR     -> DIR/request/, DIR/command/, DIR/watch/ */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "client/lkg.h"
#include "client/wcache.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/command.h"

static const char *out_dir;
static int failed;

/* Writes DIR/SUB/NAME with `head` (harness parameter bytes) then `b`. */
static void put(const char *sub,
                const char *name,
                const uint8_t *head,
                size_t hlen,
                const struct buf *b)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", out_dir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        failed = 1;
        return;
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        failed = 1;
        return;
    }
    if (fwrite(head, 1, hlen, f) != hlen ||
        fwrite(buf_head(b), 1, buf_len(b), f) != buf_len(b)) {
        failed = 1;
    }
    if (fclose(f) != 0) {
        failed = 1;
    }
}

/* ---- requests ------------------------------------------------------------ */

static void value_of(Flip__Value *v, int kind)
{
    flip__value__init(v);
    switch (kind) {
    case 0:
        v->kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        v->bool_value = 1;
        break;
    case 1:
        v->kind_case = FLIP__VALUE__KIND_INT_VALUE;
        v->int_value = -42;
        break;
    case 2:
        v->kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
        v->double_value = 0.25;
        break;
    case 3:
        v->kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        v->string_value = "blue";
        break;
    default:
        v->kind_case = FLIP__VALUE__KIND_JSON_VALUE;
        v->json_value = "{\"a\":[1,2.5,\"x\",null,true],\"b\":{}}";
        break;
    }
}

static void request_seeds(void)
{
    static const uint8_t head[2] = { 255, 0 };  /* whole reads, 1 MiB */
    static const uint8_t trickle[2] = { 2, 0 }; /* 3-byte reads */
    char *prefixes[2] = { "checkout.", "pay" };
    Flip__Request r = FLIP__REQUEST__INIT;
    Flip__Hello h = FLIP__HELLO__INIT;
    Flip__SetRequest s = FLIP__SET_REQUEST__INIT;
    Flip__DeleteRequest d = FLIP__DELETE_REQUEST__INIT;
    Flip__GetRequest g = FLIP__GET_REQUEST__INIT;
    Flip__ListRequest l = FLIP__LIST_REQUEST__INIT;
    Flip__StatusRequest st = FLIP__STATUS_REQUEST__INIT;
    Flip__SubscribeRequest sub = FLIP__SUBSCRIBE_REQUEST__INIT;
    Flip__Value v;
    struct buf all;
    struct buf one;
    char name[32];

    buf_init(&all);
    buf_init(&one);
    r.has_id = 1;
    r.id = 1;
    h.has_protocol_version = 1;
    h.protocol_version = 1;
    h.client_name = "seed";
    r.op_case = FLIP__REQUEST__OP_HELLO;
    r.hello = &h;
    codec_request_encode(&r, UINT32_MAX, &all);
    for (int kind = 0; kind < 5; kind++) {
        value_of(&v, kind);
        s.key = "checkout.new_flow";
        s.value = &v;
        s.reason = "seed";
        s.actor = "ops";
        s.has_expected_revision = kind == 4;
        s.expected_revision = 7;
        r.id++;
        r.op_case = FLIP__REQUEST__OP_SET;
        r.set = &s;
        buf_reset(&one);
        codec_request_encode(&r, UINT32_MAX, &one);
        codec_request_encode(&r, UINT32_MAX, &all);
        snprintf(name, sizeof name, "set%d", kind);
        put("request", name, head, sizeof head, &one);
    }
    d.key = "checkout.old";
    r.op_case = FLIP__REQUEST__OP_DELETE;
    r.delete_ = &d;
    codec_request_encode(&r, UINT32_MAX, &all);
    g.key = "checkout.new_flow";
    g.has_stale = 1;
    g.stale = 1;
    r.op_case = FLIP__REQUEST__OP_GET;
    r.get = &g;
    codec_request_encode(&r, UINT32_MAX, &all);
    l.prefix = "checkout.";
    l.start_after = "checkout.a";
    l.has_limit = 1;
    l.limit = 10;
    r.op_case = FLIP__REQUEST__OP_LIST;
    r.list = &l;
    codec_request_encode(&r, UINT32_MAX, &all);
    st.has_include_hash = 1;
    st.include_hash = 1;
    r.op_case = FLIP__REQUEST__OP_STATUS;
    r.status = &st;
    codec_request_encode(&r, UINT32_MAX, &all);
    sub.n_prefixes = 2;
    sub.prefixes = prefixes;
    sub.has_from_revision = 1;
    sub.from_revision = 3;
    r.op_case = FLIP__REQUEST__OP_SUBSCRIBE;
    r.subscribe = &sub;
    codec_request_encode(&r, UINT32_MAX, &all);
    put("request", "pipeline", head, sizeof head, &all);
    put("request", "pipeline_trickle", trickle, sizeof trickle, &all);
    buf_close(&all);
    buf_close(&one);
}

/* ---- replicated entries -------------------------------------------------- */

static void command_seeds(void)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change set = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change del = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change *changes[2] = { &set, &del };
    Flip__Value v;
    struct buf b;
    char name[32];

    for (int kind = 0; kind < 5; kind++) {
        value_of(&v, kind);
        set.has_op = 1;
        set.op = FLIPCMD__OP__SET;
        set.key = "a.b";
        set.value = &v;
        set.actor = "seed";
        set.reason = "why";
        del.has_op = 1;
        del.op = FLIPCMD__OP__DELETE;
        del.key = "a.c";
        del.actor = "seed";
        cmd.has_time_ms = 1;
        cmd.time_ms = 1700000000000;
        cmd.n_changes = kind == 0 ? 2 : 1;
        cmd.changes = changes;
        buf_init(&b);
        if (buf_reserve(&b, command_size(&cmd)) != FLIP_OK) {
            failed = 1;
            return;
        }
        command_write(&cmd, buf_tail(&b));
        buf_commit(&b, command_size(&cmd));
        snprintf(name, sizeof name, "entry%d", kind);
        put("command", name, NULL, 0, &b);
        buf_close(&b);
    }
}

/* ---- what a client reads ------------------------------------------------- */

static void event(struct buf *out,
                  Flip__EventType type,
                  uint64_t rev,
                  Flip__Flag **flags,
                  size_t n)
{
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__Event ev = FLIP__EVENT__INIT;

    ev.has_type = 1;
    ev.type = type;
    ev.has_revision = 1;
    ev.revision = rev;
    ev.n_flags = n;
    ev.flags = flags;
    r.result_case = FLIP__RESPONSE__RESULT_EVENT;
    r.event = &ev;
    codec_response_encode(&r, UINT32_MAX, out);
}

static void watch_seeds(void)
{
    static const uint8_t head[3] = { 2, 255, 0 }; /* prefixes a./b/ab */
    Flip__Response r = FLIP__RESPONSE__INIT;
    Flip__SubscribeResult sr = FLIP__SUBSCRIBE_RESULT__INIT;
    Flip__ListResult lr = FLIP__LIST_RESULT__INIT;
    Flip__Event hbe = FLIP__EVENT__INIT;
    Flip__Heartbeat hb = FLIP__HEARTBEAT__INIT;
    Flip__Flag f1 = FLIP__FLAG__INIT;
    Flip__Flag f2 = FLIP__FLAG__INIT;
    Flip__Flag *one[1] = { &f1 };
    Flip__Flag *two[2] = { &f1, &f2 };
    Flip__Value v1;
    Flip__Value v2;
    struct buf s;

    buf_init(&s);
    r.has_id = 1;
    r.id = 2;
    sr.has_node_id = 1;
    sr.node_id = 1;
    sr.has_applied_revision = 1;
    sr.applied_revision = 5;
    r.result_case = FLIP__RESPONSE__RESULT_SUBSCRIBE;
    r.subscribe = &sr;
    codec_response_encode(&r, UINT32_MAX, &s);
    value_of(&v1, 0);
    value_of(&v2, 4);
    f1.key = "a.x";
    f1.value = &v1;
    f1.has_revision = 1;
    f1.revision = 4;
    f1.actor = "ops";
    f2.key = "ab";
    f2.value = &v2;
    f2.has_revision = 1;
    f2.revision = 6;
    event(&s, FLIP__EVENT_TYPE__SNAPSHOT_BEGIN, 5, NULL, 0);
    event(&s, FLIP__EVENT_TYPE__SNAPSHOT_ITEM, 5, one, 1);
    event(&s, FLIP__EVENT_TYPE__SNAPSHOT_END, 5, NULL, 0);
    f1.has_revision = 1;
    f1.revision = 6;
    event(&s, FLIP__EVENT_TYPE__CHANGE, 6, two, 2);
    f1.value = NULL;
    f1.has_deleted = 1;
    f1.deleted = 1;
    f1.revision = 7;
    event(&s, FLIP__EVENT_TYPE__CHANGE, 7, one, 1);
    hb.has_applied_revision = 1;
    hb.applied_revision = 7;
    hbe.has_type = 1;
    hbe.type = FLIP__EVENT_TYPE__HEARTBEAT;
    hbe.heartbeat = &hb;
    r.has_id = 0;
    r.result_case = FLIP__RESPONSE__RESULT_EVENT;
    r.event = &hbe;
    codec_response_encode(&r, UINT32_MAX, &s);
    f1.value = &v1;
    f1.has_deleted = 0;
    lr.n_flags = 2;
    lr.flags = two;
    r.has_id = 1;
    r.id = 3;
    r.result_case = FLIP__RESPONSE__RESULT_LIST;
    r.list = &lr;
    codec_response_encode(&r, UINT32_MAX, &s);
    put("watch", "stream", head, sizeof head, &s);
    buf_close(&s);
}

/* A last-known-good file image, as the whole input's file part. */
static void lkg_seed(void)
{
    static const uint8_t head[3] = { 0, 255, 255 };
    const char *every[1] = { "" };
    struct wprefixes ps;
    struct wcache c;
    struct flip_flag *f = wcache_flag_new();
    struct flip_flag *old = NULL;
    const char *why = NULL;
    struct buf img;

    wcache_init(&c);
    buf_init(&img);
    if (f == NULL || wprefixes_make(&ps, every, 1, &why) != FLIP_OK) {
        failed = 1;
        return;
    }
    f->key = flip_strdup("a.x");
    f->value.type = FLIP_TYPE_STRING;
    f->value.u.s = flip_strdup("on");
    f->actor = flip_strdup("ops");
    f->reason = flip_strdup("");
    f->revision = 3;
    f->create_revision = 2;
    if (wcache_put(&c, f, &old) != FLIP_OK) {
        failed = 1;
    }
    c.revision = 3;
    if (lkg_encode(&c, &ps, &img) == FLIP_OK) {
        put("watch", "lkg_file", head, sizeof head, &img);
    } else {
        failed = 1;
    }
    buf_close(&img);
    wcache_clear(&c);
    wprefixes_clear(&ps);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seedgen DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    request_seeds();
    command_seeds();
    watch_seeds();
    lkg_seed();
    if (failed) {
        fprintf(stderr, "seedgen: could not write every seed under %s\n",
                out_dir);
        return 1;
    }
    return 0;
}
