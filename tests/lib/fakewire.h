/* Blocking frame I/O for fake flipd nodes in unit tests: a thread that
 * accepts on a loopback socket reads Requests and writes Responses with
 * these. Each call is bounded by the socket's own timeouts. */
#ifndef FLIP_TESTS_FAKEWIRE_H
#define FLIP_TESTS_FAKEWIRE_H

#include "flip.pb-c.h"

/* The next Request on `fd`; NULL at EOF, on an error or an undecodable
 * frame. Owned by the caller (codec_request_free). */
Flip__Request *fakewire_recv(int fd);

/* Writes `r` as one frame; a peer that left is not an error. */
void fakewire_send(int fd, const Flip__Response *r);

#endif
