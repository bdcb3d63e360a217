/* Text conversions of values: what flipctl reads from a command line and
 * prints, also used by bench/ and the chaos helpers. Part of the client
 * library's archive, not of its public API (client/flip.h): an application
 * has its own text format. No I/O; no client needed. */
#ifndef FLIP_CLIENT_TEXT_H
#define FLIP_CLIENT_TEXT_H

#include "client/flip.h"

/* Turns command-line text into a value.
 *
 * FLIP_TYPE_AUTO guesses: "true"/"false" give a bool, a decimal integer
 * that fits in 64 bits (no leading zeros) an int, any other JSON number a
 * double, a valid JSON object or array a json value, anything else a
 * string. Explicit types are strict: bool takes true/false/1/0 (any case),
 * int a decimal integer in range, double a finite number, json valid JSON.
 *
 * @param[in]  text the text; for string and json results, out->u.s points
 *                  INTO text, which must outlive the value.
 * @param[in]  type the wanted type, or FLIP_TYPE_AUTO.
 * @param[out] out  the value.
 * @return FLIP_OK or FLIP_INVALID (text does not fit the type). */
int flip_value_parse(const char *text,
                     enum flip_type type,
                     struct flip_value *out);

/* Renders a value as text.
 *
 * @param[in]  v       the value.
 * @param[in]  as_json 0: plain (bool true/false, int decimal, double %.17g,
 *                     string and json raw). Non-zero: a JSON literal
 *                     (strings quoted and escaped, json compacted onto one
 *                     line, a non-finite double as null).
 * @param[out] out     a NUL-terminated string, freed with flip_text_free.
 * @return FLIP_OK, FLIP_INVALID (unknown type), FLIP_NOMEM. */
int flip_value_format(const struct flip_value *v, int as_json, char **out);

/* Quotes a string as a JSON string literal: '"', '\\' and control
 * characters are escaped; other bytes are copied as they are.
 *
 * @param[out] out the literal with its quotes, freed with flip_text_free.
 * @return FLIP_OK or FLIP_NOMEM. */
int flip_json_quote(const char *s, char **out);

/* Frees a string returned by flip_value_format or flip_json_quote. */
void flip_text_free(char *s);

#endif
