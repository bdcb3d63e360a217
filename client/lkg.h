/* Private to the client library: the last-known-good file of a watch.
 *
 * The format is documented in client/flip.h ("Fail static"). Encoding and
 * decoding are pure (bytes <-> table) so tests can corrupt them freely;
 * lkg_load and lkg_store add the file I/O: a whole-file read, and an
 * atomic replace (temporary file in the same directory, fsync, rename,
 * fsync of the directory). */
#ifndef FLIP_CLIENT_LKG_H
#define FLIP_CLIENT_LKG_H

#include <stddef.h>
#include <stdint.h>

#include "client/wcache.h"
#include "lib/buf.h"

#define LKG_MAGIC     "flipdLKG"
#define LKG_VERSION   2 /* 2 adds the cluster id; 1 is still read */
#define LKG_HEADER    40
#define LKG_MAX_BYTES (256u * 1024u * 1024u) /* larger files are refused */
#define LKG_MSG_MAX   400

/* Replaces the contents of out with the file image of table c (its
 * flags, its revision) and of the prefixes it was made for. Flags are
 * written in key order.
 * @return FLIP_OK, FLIP_NOMEM or FLIP_TOOBIG (over LKG_MAX_BYTES), out
 *         then empty. */
int lkg_encode(const struct wcache *c,
               const struct wprefixes *ps,
               struct buf *out);

/* Decodes a file image into the empty table *out, keeping only the flags
 * that `want` matches. Everything is checked (size, magic, version,
 * checksum, every record, no key twice) before anything is kept: on
 * failure *out is left empty.
 * @param[out] resumable 1 when the file's prefixes cover `want`, so its
 *                       revision is a valid resume point for them.
 * @param[out] why       static text on FLIP_CORRUPT.
 * @return FLIP_OK, FLIP_CORRUPT, FLIP_NOMEM. */
int lkg_decode(const uint8_t *p,
               size_t n,
               const struct wprefixes *want,
               struct wcache *out,
               int *resumable,
               const char **why);

/* Reads and decodes the file at path (see lkg_decode).
 * @param[out] msg a sentence for the application on any failure.
 * @return FLIP_OK, FLIP_NOTFOUND (no such file), FLIP_CORRUPT, FLIP_IOERR
 *         (unreadable), FLIP_TOOBIG, FLIP_NOMEM; *out empty unless OK. */
int lkg_load(const char *path,
             const struct wprefixes *want,
             struct wcache *out,
             int *resumable,
             char *msg,
             size_t msg_len);

/* Atomically replaces the file at path with n bytes.
 * @param[out] msg a sentence on failure; the old file is then intact and
 *                 no temporary file is left behind.
 * @return FLIP_OK, FLIP_IOERR, FLIP_NOSPACE. */
int lkg_store(const char *path,
              const uint8_t *p,
              size_t n,
              char *msg,
              size_t msg_len);

/* CRC-32 (IEEE 802.3, the zlib one) of n bytes, continuing from crc (0 to
 * start). */
uint32_t lkg_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
