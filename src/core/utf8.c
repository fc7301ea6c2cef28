// utf8.c -- UTF-8 well-formedness, and the repair of names that are not, for JSON outputs.
#include "ncelab/utf8.h"
#include "ncelab/core.h"

#include <stdlib.h>
#include <string.h>

/* seq_len: the length of the well-formed sequence at s[i] (of n bytes), or 0. */
static size_t seq_len(const unsigned char *s, size_t i, size_t n) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return 0;
    for (size_t j = 1; j < len; j++)
        if ((s[i + j] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))) return 0;
    if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))) return 0;
    return len;
}

long utf8_invalid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = seq_len(u, i, n)) == 0) return (long)i;
    return -1;
}

char *utf8_repair(const char *s) {
    size_t n = strlen(s), o = 0;
    const unsigned char *u = (const unsigned char *)s;
    char *out = nc_malloc(3 * n + 1);  /* a replaced byte takes 3 */
    for (size_t i = 0; i < n;) {
        size_t len = seq_len(u, i, n);
        if (len) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

cJSON *utf8_json_string(const char *s) {
    char *r = utf8_repair(s ? s : "");
    cJSON *j = cJSON_CreateString(r);
    free(r);
    return j;
}
