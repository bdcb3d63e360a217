/* See bopt.h. */
#include "bopt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/err.h"
#include "lib/num.h"

#define OPTS_MAX 48

/* Decimal unsigned in [min, max] into *out (lib/num's rule); 0, or -1. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;

    if (num_parse_u64(s, min, max, &v) != FLIP_OK) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int bench_getopt(const char *prog,
                 const char *usage,
                 int argc,
                 char **argv,
                 const struct bench_opt *t,
                 size_t n,
                 void *opts,
                 int max_operands)
{
    struct option lo[OPTS_MAX + 2] = { { "help", no_argument, NULL, 'h' } };
    char msg[96];
    int c;

    if (n > OPTS_MAX) {
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        lo[k + 1].name = t[k].name;
        lo[k + 1].has_arg =
            t[k].kind == BENCH_OPT_FLAG ? no_argument : required_argument;
        lo[k + 1].val = 256 + (int)k;
    }
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        const struct bench_opt *o;
        char *member;

        if (c == 'h') {
            fputs(usage, stdout);
            exit(0);
        }
        if (c < 256 || c >= 256 + (int)n) {
            bench_usage_error(prog, usage, "unknown or incomplete argument",
                              argv[optind - 1]);
            return -1;
        }
        o = &t[c - 256];
        member = (char *)opts + o->off;
        if (o->kind == BENCH_OPT_FLAG) {
            *(int *)(void *)member = 1;
        } else if (o->kind == BENCH_OPT_STR) {
            *(const char **)(void *)member = optarg;
        } else if (parse_uint(optarg, o->min, o->max,
                              (unsigned *)(void *)member) != 0) {
            snprintf(msg, sizeof msg, "--%s wants an integer in %u..%u",
                     o->name, o->min, o->max);
            bench_usage_error(prog, usage, msg, optarg);
            return -1;
        }
    }
    if (argc - optind > max_operands) {
        bench_usage_error(prog, usage, "unknown argument",
                          argv[optind + max_operands]);
        return -1;
    }
    return optind;
}

void bench_usage_error(const char *prog,
                       const char *usage,
                       const char *what,
                       const char *arg)
{
    fprintf(stderr, "%s: %s%s%s\n%s", prog, what, arg ? ": " : "",
            arg ? arg : "", usage);
}
