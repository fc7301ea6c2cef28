// utf8.h -- text that leaves ncelab as JSON is UTF-8: checking it, and repairing names that are not.
//
// File and folder names are bytes; JSON text (RFC 8259) and safetensors headers must be UTF-8.
// Wherever a name reaches JSON, each byte that does not begin a well-formed UTF-8 sequence
// (overlong forms, surrogates and code points above U+10FFFF included) is written as U+FFFD,
// the replacement character; the training configuration also keeps the exact bytes of such a
// string beside it (train_config_json), so that a checkpoint still finds its data.
#ifndef NCELAB_UTF8_H
#define NCELAB_UTF8_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* utf8_invalid: the offset of the first byte of s[0..n) that is not well-formed UTF-8, or -1. */
long utf8_invalid(const char *s, size_t n);

/* utf8_repair: a malloc'd copy of the NUL-terminated s with every byte that does not begin a
   well-formed sequence replaced by U+FFFD (s itself when it is valid UTF-8, copied). */
char *utf8_repair(const char *s);

/* utf8_json_string: a cJSON string of utf8_repair(s) (s NULL: ""). */
cJSON *utf8_json_string(const char *s);

#endif
