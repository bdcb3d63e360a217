/* Option parsing of the bench programs: getopt_long(3) over one table per
 * program. Each entry names a long option and where its value goes in the
 * program's options struct: an unsigned in [min, max], a const char *, or
 * an int set to 1 (a flag without a value). Leaf code: libc only. */
#ifndef FLIPD_BENCH_BOPT_H
#define FLIPD_BENCH_BOPT_H

#include <stddef.h>

enum bench_opt_kind
{
    BENCH_OPT_UINT,
    BENCH_OPT_STR,
    BENCH_OPT_FLAG
};

struct bench_opt
{
    const char *name; /* "n" for --n */
    enum bench_opt_kind kind;
    unsigned min; /* BENCH_OPT_UINT: the accepted range */
    unsigned max;
    size_t off; /* of the member, in the options struct */
};

#define BENCH_UINT(type, name, min, max, member)                     \
    {                                                                \
        (name), BENCH_OPT_UINT, (min), (max), offsetof(type, member) \
    }
#define BENCH_STR(type, name, member)                       \
    {                                                       \
        (name), BENCH_OPT_STR, 0, 0, offsetof(type, member) \
    }
#define BENCH_FLAG(type, name, member)                       \
    {                                                        \
        (name), BENCH_OPT_FLAG, 0, 0, offsetof(type, member) \
    }

/* Parses argv against t[0..n) (n at most 48) into *opts; members no
 * option names keep their values. --help or -h prints usage on stdout
 * and exits 0. Returns the index of the first operand (operands are moved
 * after the options, as GNU getopt does; at most max_operands of them),
 * or -1 after "PROG: WHAT: ARG" and the usage went to stderr: an unknown
 * option or operand, a missing value, a number that is not a decimal in
 * its range. */
int bench_getopt(const char *prog,
                 const char *usage,
                 int argc,
                 char **argv,
                 const struct bench_opt *t,
                 size_t n,
                 void *opts,
                 int max_operands);

/* "PROG: WHAT[: ARG]" and then the usage text, on stderr. */
void bench_usage_error(const char *prog,
                       const char *usage,
                       const char *what,
                       const char *arg);

#endif
