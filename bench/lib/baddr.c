/* See baddr.h. */
#include "baddr.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "client/flip.h"
#include "client/wire.h"

_Static_assert(BENCH_ADDR_MAX == WIRE_ADDR_MAX, "one longest address");

int bench_addr_resolve(const char *s, size_t len, struct bench_addr *a)
{
    char host[BENCH_ADDR_MAX + 1];
    char port[16];
    struct addrinfo hints;
    struct addrinfo *res = NULL;

    if (len == 0 || len > BENCH_ADDR_MAX) {
        return -1;
    }
    memset(a, 0, sizeof *a);
    memcpy(a->name, s, len);
    a->name[len] = '\0';
    if (wire_addr_split(a->name, host, sizeof host, port, sizeof port) !=
        FLIP_OK) {
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->salen = res->ai_addrlen;
    a->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

long bench_addr_list(const char *prog,
                     const char *csv,
                     size_t max,
                     struct bench_addr *(*at)(void *arg, size_t i),
                     void *arg)
{
    const char *p = csv;
    size_t n = 0;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (n == max) {
            fprintf(stderr, "%s: at most %zu endpoints\n", prog, max);
            return -1;
        }
        if (bench_addr_resolve(p, len, at(arg, n)) != 0) {
            fprintf(stderr, "%s: bad or unresolvable endpoint '%.*s'\n", prog,
                    (int)len, p);
            return -1;
        }
        n++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    if (n == 0) {
        fprintf(stderr, "%s: no endpoints\n", prog);
        return -1;
    }
    return (long)n;
}

int bench_addr_source(const char *prog,
                      const char *addr,
                      int family,
                      struct sockaddr_storage *sa,
                      socklen_t *len)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    int rv;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    rv = getaddrinfo(addr, NULL, &hints, &res);
    if (rv != 0 || res == NULL) {
        fprintf(stderr,
                "%s: --source %s: not an address of the endpoints' family: "
                "%s\n",
                prog, addr, gai_strerror(rv));
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
