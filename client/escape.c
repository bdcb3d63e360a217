/* Terminal- and JSON-safe text; see escape.h. */
#include "escape.h"

#include <stdio.h>
#include <string.h>

#include "lib/err.h"

size_t escape_utf8_seq(const unsigned char *p, uint32_t *cp)
{
    size_t n;
    uint32_t v;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2;
        v = p[0] & 0x1Fu;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3;
        v = p[0] & 0x0Fu;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4;
        v = p[0] & 0x07u;
    } else {
        return 0;
    }
    /* the NUL terminator is no continuation byte, so this stops there */
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[k] & 0x3Fu);
    }
    if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) ||
        (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    *cp = v;
    return n;
}

int escape_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

int escape_text_into(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    const unsigned char *run = p; /* start of bytes copied verbatim */
    char esc[16];
    int rv = FLIP_OK;

    while (rv == FLIP_OK && *p != '\0') {
        uint32_t cp = 0;
        size_t n = escape_utf8_seq(p, &cp);

        if (n > 0 && !escape_is_control(cp) && cp != '\\') {
            p += n;
            continue;
        }
        rv = buf_append(b, run, (size_t)(p - run));
        if (rv != FLIP_OK) {
            break;
        }
        if (n == 0 || cp < 0x80) {
            const char *named = cp == '\\'   ? "\\\\"
                                : cp == '\t' ? "\\t"
                                : cp == '\n' ? "\\n"
                                : cp == '\r' ? "\\r"
                                             : NULL;
            if (n > 0 && named != NULL) {
                snprintf(esc, sizeof esc, "%s", named);
            } else {
                snprintf(esc, sizeof esc, "\\x%02x", (unsigned)*p);
            }
            n = 1;
        } else {
            snprintf(esc, sizeof esc, "\\u{%04x}", (unsigned)cp);
        }
        rv = buf_append(b, esc, strlen(esc));
        p += n;
        run = p;
    }
    if (rv == FLIP_OK) {
        rv = buf_append(b, run, (size_t)(p - run));
    }
    return rv;
}
