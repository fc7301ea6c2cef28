// jsonio.h -- JSON files through cJSON: load with a clear error, save atomically.
#ifndef NCELAB_JSONIO_H
#define NCELAB_JSONIO_H

#include <cjson/cJSON.h>

#include "ncelab/core.h"

/* json_load: parses the file at path; NC_EFILE naming the file and the byte offset of a
   syntax error. *out is owned by the caller (cJSON_Delete). */
int json_load(const char *path, cJSON **out, NcError *err);
/* json_save: writes the document, pretty-printed, atomically. */
int json_save(const char *path, const cJSON *doc, NcError *err);
/* json_number_array: a JSON array of n doubles (non-finite values become null). */
cJSON *json_number_array(const double *v, int n);
/* json_number: a number, or null if not finite (JSON has no NaN or Inf). */
cJSON *json_number(double v);
/* json_get_number: a number into *out (null reads as NaN); 0 when v is neither. */
int json_get_number(const cJSON *v, double *out);
/* json_matrix: an array of rows arrays, row-major r x c. */
cJSON *json_matrix(const double *a, int r, int c);

#endif
