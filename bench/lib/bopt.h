/* Option parsing of the bench programs: table-driven options ("--name N"
 * with N a decimal in a range, stored in an unsigned member of the
 * program's options struct; "--name TEXT", stored in a const char *
 * member) and the usage error. Leaf code: libc only. */
#ifndef FLIPD_BENCH_BOPT_H
#define FLIPD_BENCH_BOPT_H

#include <stddef.h>

struct bench_numopt
{
    const char *name; /* "--n" */
    unsigned min;
    unsigned max;
    size_t off; /* of the unsigned member, in the options struct */
};

#define BENCH_NUMOPT(type, name, min, max, member)   \
    {                                                \
        (name), (min), (max), offsetof(type, member) \
    }

/* If argv[*i] names an entry of t[0..n), parses argv[*i + 1] into that
 * member of *opts and steps *i over it: 1. 0 when no entry has that name,
 * -1 when the value is missing or out of range; then, unless prog is NULL,
 * "PROG: --name wants an integer in MIN..MAX" is printed on stderr. */
int bench_numopt(const char *prog,
                 int argc,
                 char **argv,
                 int *i,
                 const struct bench_numopt *t,
                 size_t n,
                 void *opts);

struct bench_stropt
{
    const char *name; /* "--endpoints" */
    size_t off;       /* of the const char * member */
};

#define BENCH_STROPT(type, name, member) \
    {                                    \
        (name), offsetof(type, member)   \
    }

/* The same for text options: -1 when the value is missing; then, unless
 * prog is NULL, "PROG: missing value after --name" is printed. */
int bench_stropt(const char *prog,
                 int argc,
                 char **argv,
                 int *i,
                 const struct bench_stropt *t,
                 size_t n,
                 void *opts);

/* "PROG: WHAT[: ARG]" and then the usage text, on stderr. */
void bench_usage_error(const char *prog,
                       const char *usage,
                       const char *what,
                       const char *arg);

#endif
