/* The listening side of fake flipd nodes in unit tests: a loopback socket
 * on a free port, and a bounded wait for the next connection. */
#ifndef FLIP_TESTS_FAKELISTEN_H
#define FLIP_TESTS_FAKELISTEN_H

#include <stddef.h>

/* Listens on 127.0.0.1 at a port the kernel picks and writes
 * "127.0.0.1:PORT" into addr (n bytes). Aborts the test on failure.
 * @return the listening socket. */
int fakelisten_open(char *addr, size_t n);

/* A port on which every connection is refused, and nothing else can
 * start to listen while the returned socket (bound, never listening) is
 * open. Writes "127.0.0.1:PORT" into addr. */
int fakelisten_refusing(char *addr, size_t n);

/* Waits at most ms for a connection on lfd.
 * @return the accepted socket, or -1 when none came. */
int fakelisten_accept(int lfd, int ms);

#endif
