/* Decimal numbers from text (command lines): one parser for flipd and
 * flipctl. */
#ifndef FLIP_LIB_NUM_H
#define FLIP_LIB_NUM_H

#include <stdint.h>

/* Reads s as a decimal number in min..max: ASCII digits only (no sign, no
 * blank, no "0x": strtoull's extras are refused), nothing after them.
 * @return FLIP_OK and *out set, or FLIP_INVALID and *out untouched. */
int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
