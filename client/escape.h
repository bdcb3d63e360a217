/* Text from a server shown to a person or written as JSON: what may pass
 * through as it is, and how the rest is escaped (F13 of the robustness
 * review: values, actor and reason may hold ESC, BEL and the like, and
 * a hostile server anything at all).
 *
 * "Control" here is every code point a terminal or a text renderer may
 * act on rather than show: C0 (U+0000-U+001F), DEL, C1 (U+0080-U+009F),
 * and the bidirectional overrides and isolates (U+202A-U+202E,
 * U+2066-U+2069) that reorder what is displayed. */
#ifndef FLIP_CLIENT_ESCAPE_H
#define FLIP_CLIENT_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Length (1..4) of the valid UTF-8 sequence at the start of the
 * NUL-terminated p, its code point in *cp; 0 when p does not start one
 * (a stray continuation byte, an overlong form, a surrogate, a value
 * above U+10FFFF or a sequence cut short). */
size_t escape_utf8_seq(const unsigned char *p, uint32_t *cp);

/* True for the control code points above. */
int escape_is_control(uint32_t cp);

/* Appends to b the terminal-safe form of s: `\\`, `\t`, `\n`, `\r` for
 * those four, `\xHH` for any other C0 byte, DEL and every byte that is
 * not valid UTF-8, `\u{HHHH}` for a C1 or bidi control; everything else
 * as it is. The result holds no control code point and is valid UTF-8.
 * FLIP_OK or FLIP_NOMEM. */
int escape_text_into(struct buf *b, const char *s);

#endif
