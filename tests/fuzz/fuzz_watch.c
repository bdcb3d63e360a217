/* Fuzzes what a client decodes from a server (or anyone on the path; there
 * is no TLS): a stream of Response frames cut as client/wire.c does, each
 * decoded and, for events, applied the way the watch thread does to a real
 * table (client/wcache.c): snapshot items staged then swapped in, CHANGE
 * batches prepared then committed. Flags of get/list answers are converted
 * like the library's reads. At the end the table must survive the
 * last-known-good file round trip (client/lkg.c), and a second part of the
 * input is decoded as such a file directly.
 *
 * Input: byte 0 picks the watched prefixes, byte 1 the read size - 1,
 * byte 2 how much of the rest is a last-known-good file image (in 1/256),
 * then the stream. */
#include <string.h>

#include "client/lkg.h"
#include "client/wcache.h"
#include "fuzz.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "proto/frame.h"

struct watch_state
{
    struct wcache live;
    struct wcache staging;
    struct wprefixes ps;
    int in_snapshot;
};

static void apply_event(struct watch_state *w, const Flip__Event *ev)
{
    const struct flip_flag *added = NULL;
    const char *why = NULL;
    struct wbatch b;

    switch (ev->type) {
    case FLIP__EVENT_TYPE__SNAPSHOT_BEGIN:
        wcache_clear(&w->staging);
        w->in_snapshot = 1;
        break;
    case FLIP__EVENT_TYPE__SNAPSHOT_ITEM:
        if (w->in_snapshot && ev->n_flags == 1 &&
            wcache_stage_item(&w->staging, &w->ps, ev, &added, &why) ==
                FLIP_OK) {
            FUZZ_ASSERT(added != NULL);
        }
        break;
    case FLIP__EVENT_TYPE__SNAPSHOT_END:
        if (w->in_snapshot) {
            w->staging.revision = ev->revision;
            wcache_swap(&w->live, &w->staging);
            wcache_clear(&w->staging);
            w->in_snapshot = 0;
        }
        break;
    case FLIP__EVENT_TYPE__CHANGE:
        memset(&b, 0, sizeof b);
        if (wbatch_prepare(&b, &w->live, &w->ps, ev, &why) == FLIP_OK) {
            uint64_t rev = b.revision;
            if (wbatch_commit(&b, &w->live) == FLIP_OK) {
                FUZZ_ASSERT(w->live.revision == rev);
            }
            wbatch_free(&b);
        } else {
            FUZZ_ASSERT(why != NULL);
        }
        break;
    default:
        break;
    }
}

static void read_flags(Flip__Flag **flags, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct flip_flag f;
        const char *why = NULL;
        int deleted = 0;
        if (wcache_flag_from_wire(flags[i], &f, &deleted, &why) == FLIP_OK) {
            flip_flag_clear(&f);
        }
    }
}

static void handle(struct watch_state *w, const Flip__Response *r)
{
    if (r->result_case == FLIP__RESPONSE__RESULT_EVENT) {
        apply_event(w, r->event);
    } else if (r->result_case == FLIP__RESPONSE__RESULT_LIST) {
        read_flags(r->list->flags, r->list->n_flags);
    } else if (r->result_case == FLIP__RESPONSE__RESULT_GET &&
               r->get->flag != NULL) {
        read_flags(&r->get->flag, 1);
    }
}

/* The table written as a last-known-good file reads back whole. */
static void lkg_roundtrip(struct watch_state *w)
{
    struct wcache back;
    struct buf img;
    const char *why = NULL;
    int resumable = 0;

    buf_init(&img);
    wcache_init(&back);
    if (lkg_encode(&w->live, &w->ps, &img) == FLIP_OK) {
        FUZZ_ASSERT(lkg_decode(buf_head(&img), buf_len(&img), &w->ps, &back,
                               &resumable, &why) == FLIP_OK);
        FUZZ_ASSERT(back.n == w->live.n);
        FUZZ_ASSERT(back.revision == w->live.revision);
    }
    wcache_clear(&back);
    buf_close(&img);
}

/* A client decodes every frame; one that does not decode is skipped. */
static int on_frame(void *arg, const uint8_t *payload, size_t len)
{
    Flip__Response *r = NULL;

    if (codec_response_decode(payload, len, &r) == FLIP_OK) {
        handle(arg, r);
        codec_response_free(r);
    }
    return 0;
}

static const char *const prefix_sets[][3] = {
    { "", NULL, NULL },
    { "a", NULL, NULL },
    { "a.", "b", "ab" },
    { "checkout.", "pay", NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    unsigned pick = fuzz_byte(&in) % 4;
    size_t chunk = fuzz_byte(&in) + 1;
    size_t file = in.n * fuzz_byte(&in) / 256;
    struct watch_state w;
    const char *why = NULL;
    size_t n_prefixes = 0;

    memset(&w, 0, sizeof w);
    wcache_init(&w.live);
    wcache_init(&w.staging);
    while (n_prefixes < 3 && prefix_sets[pick][n_prefixes] != NULL) {
        n_prefixes++;
    }
    FUZZ_ASSERT(wprefixes_make(&w.ps, prefix_sets[pick], n_prefixes, &why) ==
                FLIP_OK);
    {
        /* the file part: a last-known-good image from disk */
        struct wcache loaded;
        int resumable = 0;
        wcache_init(&loaded);
        (void)lkg_decode(in.p, file, &w.ps, &loaded, &resumable, &why);
        wcache_clear(&loaded);
        in.p += file;
        in.n -= file;
    }
    fuzz_frames(&in, chunk, FRAME_MAX_DEFAULT, on_frame, &w);
    lkg_roundtrip(&w);
    wcache_clear(&w.live);
    wcache_clear(&w.staging);
    wprefixes_clear(&w.ps);
    return 0;
}
