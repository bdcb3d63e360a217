/* A chaos-test subscriber: one watch through the client library, every
 * event written as a JSON line with a CLOCK_MONOTONIC timestamp, in the
 * history format of tests/chaos/checker/check.py.
 *
 *   chaos_sub --id N --endpoints H:P,... --prefix P --out FILE
 *
 * Runs until SIGTERM/SIGINT. The library fails over between nodes on its
 * own; this program only records what the application would see. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/flip.h"
#include "client/text.h"

struct sub_ctx
{
    FILE *out;
    unsigned id;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes a JSON string; keys and values here are plain text. */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

static void put_flag(FILE *f, const struct flip_flag *flag, int deleted)
{
    char *text = NULL;

    fputs("{\"key\":", f);
    put_str(f, flag->key);
    fprintf(f, ",\"revision\":%llu", (unsigned long long)flag->revision);
    if (deleted) {
        fputs(",\"deleted\":true}", f);
        return;
    }
    fputs(",\"value\":", f);
    if (flip_value_format(&flag->value, 1, &text) == FLIP_OK) {
        fputs(text, f);
        flip_text_free(text);
    } else {
        fputs("null", f);
    }
    fputc('}', f);
}

static void on_event(void *data, const struct flip_watch_event *ev)
{
    struct sub_ctx *ctx = data;
    FILE *f = ctx->out;
    const char *type = NULL;

    switch (ev->type) {
    case FLIP_EV_SNAPSHOT_BEGIN:
        type = "begin";
        break;
    case FLIP_EV_SNAPSHOT_ITEM:
        type = "item";
        break;
    case FLIP_EV_SNAPSHOT_END:
        type = "end";
        break;
    case FLIP_EV_CHANGE:
    case FLIP_EV_DELETE:
        type = "change";
        break;
    case FLIP_EV_STATE:
        type = "state";
        break;
    default:
        type = "notice";
        break;
    }
    fprintf(f, "{\"sub\":%u,\"t_ns\":%lld,\"type\":\"%s\",\"revision\":%llu",
            ctx->id, mono_ns(), type, (unsigned long long)ev->revision);
    if (ev->resync) {
        fputs(",\"resync\":true", f);
    }
    fputs(",\"node\":", f);
    put_str(f, ev->node);
    if (ev->flag != NULL) {
        fputs(",\"flags\":[", f);
        put_flag(f, ev->flag, ev->type == FLIP_EV_DELETE);
        fputc(']', f);
    }
    if (ev->type == FLIP_EV_STATE || ev->type == FLIP_EV_NOTICE) {
        fprintf(f, ",\"state\":\"%s\",\"detail\":",
                flip_watch_state_name(ev->state));
        put_str(f, ev->detail);
    }
    fputs("}\n", f);
    fflush(f);
}

int main(int argc, char **argv)
{
    struct sub_ctx ctx = { NULL, 0 };
    struct flip_watch_options o;
    struct flip_watch *w = NULL;
    const char *prefix = "";
    const char *prefixes[1];
    const char *out = NULL;
    int rv;

    memset(&o, 0, sizeof o);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--id") == 0) {
            ctx.id = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--endpoints") == 0) {
            o.endpoints = argv[i + 1];
        } else if (strcmp(argv[i], "--prefix") == 0) {
            prefix = argv[i + 1];
        } else if (strcmp(argv[i], "--out") == 0) {
            out = argv[i + 1];
        } else {
            fprintf(stderr, "chaos_sub: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (o.endpoints == NULL || out == NULL) {
        fprintf(stderr,
                "usage: chaos_sub --id N --endpoints H:P,... "
                "[--prefix P] --out FILE\n");
        return 2;
    }
    ctx.out = fopen(out, "a");
    if (ctx.out == NULL) {
        perror(out);
        return 1;
    }
    prefixes[0] = prefix;
    o.client_name = "chaos-sub";
    o.prefixes = prefixes;
    o.n_prefixes = 1;
    o.on_event = on_event;
    o.data = &ctx;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    rv = flip_watch_start(&w, &o);
    if (rv != FLIP_OK) {
        fprintf(stderr, "chaos_sub: %s\n", flip_strerror(rv));
        return 1;
    }
    while (!stop_flag) {
        usleep(20000);
    }
    flip_watch_stop(w);
    fclose(ctx.out);
    return 0;
}
