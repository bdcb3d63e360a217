/* The endpoints of a bench program: "host:port" ("[v6]:port" too, as the
 * client library splits them) resolved for TCP, and the comma-separated
 * --endpoints list. */
#ifndef FLIPD_BENCH_BADDR_H
#define FLIPD_BENCH_BADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define BENCH_ADDR_MAX 300 /* = client/wire.h WIRE_ADDR_MAX */

struct bench_addr
{
    char name[BENCH_ADDR_MAX + 1]; /* as given */
    struct sockaddr_storage sa;
    socklen_t salen;
    int family;
};

/* Resolves s[0..len) into *a: 0, or -1 when it is not host:port or does
 * not resolve. */
int bench_addr_resolve(const char *s, size_t len, struct bench_addr *a);

/* Resolves each item of the comma-separated csv into *at(arg, i), for
 * i = 0.. (at most max items): the number of items, or -1 after "PROG:
 * WHY" on stderr (an empty, unresolvable or extra item, or none). */
long bench_addr_list(const char *prog,
                     const char *csv,
                     size_t max,
                     struct bench_addr *(*at)(void *arg, size_t i),
                     void *arg);

/* The local address subscriber sockets bind to (--source): numeric, of
 * the endpoints' family, into *sa: 0, or -1 after "PROG: WHY" on stderr. */
int bench_addr_source(const char *prog,
                      const char *addr,
                      int family,
                      struct sockaddr_storage *sa,
                      socklen_t *len);

#endif
