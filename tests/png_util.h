// png_util.h -- tests: a PNG that is all header, for the readers' size limits.
#ifndef NCELAB_TEST_PNG_UTIL_H
#define NCELAB_TEST_PNG_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* A PNG that is all header: IHDR claims w x h (8-bit, the colour type given: 2 RGB, 0 grey), then
   an IDAT of an empty zlib stream and IEND, with correct CRCs. Its header reads; decoding it fails. */
static void write_png_header_only(const char *path, uint32_t w, uint32_t h, int type) {
    uint8_t b[128], z[32];  /* 8 + 25 + (12 + the compressed bytes) + 12 */
    uLongf zn = sizeof z;
    compress(z, &zn, (const Bytef *)"", 0);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                              (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                              8, (uint8_t)type, 0, 0, 0};
    const struct { const char *type; const uint8_t *data; uint32_t len; } ch[3] = {
        {"IHDR", ihdr, 13}, {"IDAT", z, (uint32_t)zn}, {"IEND", NULL, 0}};
    size_t n = 8;
    memcpy(b, sig, 8);
    for (int i = 0; i < 3; i++) {
        uint32_t len = ch[i].len;
        uint8_t *c = b + n;
        c[0] = (uint8_t)(len >> 24), c[1] = (uint8_t)(len >> 16), c[2] = (uint8_t)(len >> 8), c[3] = (uint8_t)len;
        memcpy(c + 4, ch[i].type, 4);
        if (len) memcpy(c + 8, ch[i].data, len);
        uint32_t crc = (uint32_t)crc32(0, c + 4, 4 + len);
        c[8 + len] = (uint8_t)(crc >> 24), c[9 + len] = (uint8_t)(crc >> 16), c[10 + len] = (uint8_t)(crc >> 8);
        c[11 + len] = (uint8_t)crc;
        n += 12 + len;
    }
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

#endif
