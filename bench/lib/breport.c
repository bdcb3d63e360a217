/* See breport.h. */
#include "breport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_problem(struct bench_problems *p, const char *fmt, ...)
{
    char msg[BENCH_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->first[0] == '\0') {
        snprintf(p->first, sizeof p->first, "%s", msg);
    }
    if (p->shown < p->limit) {
        p->shown++;
        fprintf(stderr, "%s: %s\n", p->prog, msg);
    }
}

static long status_kb(const char *text, const char *field)
{
    const char *p = strstr(text, field);

    return p != NULL ? strtol(p + strlen(field), NULL, 10) : -1;
}

size_t bench_read_rss(const char *csv, struct bench_rss *out)
{
    size_t n = 0;
    const char *p = csv;

    while (p != NULL && *p != '\0' && n < BENCH_PIDS_MAX) {
        char path[64];
        char text[4096];
        char *end = NULL;
        long pid = strtol(p, &end, 10);
        FILE *f;
        size_t got;

        if (end == p || pid <= 0) {
            break;
        }
        out[n].pid = pid;
        out[n].rss_kb = -1;
        out[n].hwm_kb = -1;
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        f = fopen(path, "r");
        if (f != NULL) {
            got = fread(text, 1, sizeof text - 1, f);
            text[got] = '\0';
            fclose(f);
            out[n].rss_kb = status_kb(text, "VmRSS:");
            out[n].hwm_kb = status_kb(text, "VmHWM:");
        }
        n++;
        p = *end == ',' ? end + 1 : NULL;
    }
    return n;
}

void bench_json_rss(const char *name, const struct bench_rss *r, size_t n)
{
    printf(",\"%s\":[", name);
    for (size_t k = 0; k < n; k++) {
        printf("%s{\"pid\":%ld,\"rss_kb\":%ld,\"hwm_kb\":%ld}", k ? "," : "",
               r[k].pid, r[k].rss_kb, r[k].hwm_kb);
    }
    printf("]");
}

void bench_json_dist(const char *name, const struct bench_dist *d, int comma)
{
    printf("%s\"%s\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
           comma ? "," : "", name, d->n, d->p50, d->p99, d->max);
}

void bench_json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            printf("\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            printf("\\u%04x", (unsigned)(unsigned char)*s);
        } else {
            putchar(*s);
        }
    }
    putchar('"');
}
