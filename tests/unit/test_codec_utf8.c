/* Text and string values must be valid UTF-8 (docs/protocol.md): the
 * validator accepts every well-formed sequence up to U+10FFFF, including
 * the code points next to the surrogate range, and refuses with
 * INVALID_ARGUMENT (FLIP_INVALID, never TOO_LARGE) surrogates, overlong
 * forms, code points past U+10FFFF, stray or missing continuation bytes. */
#include <string.h>

#include "../lib/runner.h"
#include "flip.pb-c.h"
#include "lib/err.h"
#include "proto/codec.h"

static const char *const good[] = {
    "plain ascii",      "\xc2\x80", /* U+0080, the first 2-byte code point */
    "caf\xc3\xa9",                  /* U+00E9 */
    "\xe0\xa0\x80",                 /* U+0800, the first 3-byte code point */
    "\xed\x9f\xbf",                 /* U+D7FF, just below the surrogates */
    "\xee\x80\x80",                 /* U+E000, just above them */
    "\xef\xbf\xbf",                 /* U+FFFF */
    "\xf0\x90\x80\x80",             /* U+10000, the first 4-byte code point */
    "\xf4\x8f\xbf\xbf",             /* U+10FFFF, the last code point */
};

static const char *const bad[] = {
    "\xed\xa0\x80",         /* U+D800, a high surrogate */
    "\xed\xbf\xbf",         /* U+DFFF, a low surrogate */
    "a\xed\xb0\x80z",       /* U+DC00 inside text */
    "\xc0\xaf",             /* overlong '/' */
    "\xe0\x80\xaf",         /* overlong '/' in 3 bytes */
    "\xf0\x80\x80\xaf",     /* overlong '/' in 4 bytes */
    "\xf4\x90\x80\x80",     /* U+110000, past the last code point */
    "\x80",                 /* a continuation byte alone */
    "\xe2\x82",             /* cut short */
    "\xc3\x28",             /* a lead byte without its continuation */
    "\xf8\x88\x80\x80\x80", /* a 5-byte form */
};

/* codec_check_text and a string value agree on each input. */
TEST(codec_utf8_validation, 10)
{
    const char *why = NULL;
    Flip__Value v = FLIP__VALUE__INIT;

    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        why = NULL;
        CHECK_EQ_INT(codec_check_text(good[i], 64, &why), FLIP_OK);
        v.string_value = (char *)good[i];
        CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_OK);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK_EQ_INT(codec_check_text(bad[i], 64, &why), FLIP_INVALID);
        CHECK(why != NULL && strstr(why, "UTF-8") != NULL);
        v.string_value = (char *)bad[i];
        CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_INVALID);
    }
}
