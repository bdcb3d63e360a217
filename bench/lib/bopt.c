/* See bopt.h. */
#include "bopt.h"

#include <stdio.h>
#include <string.h>

#include "bstat.h"

int bench_numopt(const char *prog,
                 int argc,
                 char **argv,
                 int *i,
                 const struct bench_numopt *t,
                 size_t n,
                 void *opts)
{
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;

    for (size_t k = 0; k < n; k++) {
        if (strcmp(argv[*i], t[k].name) != 0) {
            continue;
        }
        if (bench_parse_uint(v, t[k].min, t[k].max,
                             (unsigned *)(void *)((char *)opts + t[k].off)) !=
            0) {
            if (prog != NULL) {
                fprintf(stderr, "%s: %s wants an integer in %u..%u\n", prog,
                        t[k].name, t[k].min, t[k].max);
            }
            return -1;
        }
        (*i)++;
        return 1;
    }
    return 0;
}

int bench_stropt(const char *prog,
                 int argc,
                 char **argv,
                 int *i,
                 const struct bench_stropt *t,
                 size_t n,
                 void *opts)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(argv[*i], t[k].name) != 0) {
            continue;
        }
        if (*i + 1 >= argc) {
            if (prog != NULL) {
                fprintf(stderr, "%s: missing value after %s\n", prog,
                        t[k].name);
            }
            return -1;
        }
        *(const char **)(void *)((char *)opts + t[k].off) = argv[++(*i)];
        return 1;
    }
    return 0;
}

void bench_usage_error(const char *prog,
                       const char *usage,
                       const char *what,
                       const char *arg)
{
    fprintf(stderr, "%s: %s%s%s\n%s", prog, what, arg ? ": " : "",
            arg ? arg : "", usage);
}
