// jsonio.h -- JSON files through cJSON: load with a clear error, save atomically.
#ifndef NCELAB_JSONIO_H
#define NCELAB_JSONIO_H

#include <cjson/cJSON.h>

#include "ncelab/core.h"

/* json_parse: text[0..len) as one JSON document, followed by nothing but whitespace (spaces,
   tabs, newlines). NC_EFILE naming what, the line and the byte offset of a syntax error or of
   the first character after the document. *out is owned by the caller (cJSON_Delete). */
int json_parse(const char *text, size_t len, const char *what, cJSON **out, NcError *err);
/* json_load: json_parse of the file at path (what is the path). */
int json_load(const char *path, cJSON **out, NcError *err);
/* json_save: writes the document, pretty-printed, atomically. */
int json_save(const char *path, const cJSON *doc, NcError *err);
/* json_number_array: a JSON array of n doubles (non-finite values become null). */
cJSON *json_number_array(const double *v, int n);
/* json_number: a number, or null if not finite (JSON has no NaN or Inf). */
cJSON *json_number(double v);
/* json_get_number: a number into *out (null reads as NaN); 0 when v is neither. */
int json_get_number(const cJSON *v, double *out);
/* json_get_int: a number with an integer value in [lo, hi] into *out (a double, so that the
   caller's conversion to its integer type is exact and defined); 0 otherwise, null included. */
int json_get_int(const cJSON *v, double lo, double hi, double *out);
/* json_matrix: an array of rows arrays, row-major r x c. */
cJSON *json_matrix(const double *a, int r, int c);

#endif
