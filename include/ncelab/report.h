// report.h -- results of the theory engine as JSON, a terminal table and SVG plots.
#ifndef NCELAB_REPORT_H
#define NCELAB_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "ncelab/theory.h"

/* report_theory_json: {"model":{...},"results":[...]} as in DESIGN.md section 4; rho_spec is
   the user's --rho text, support_path the --support file or NULL. */
cJSON *report_theory_json(const TheoryModel *m, const char *rho_spec, const char *support_path,
                          const TheorySolution *s, int n);
/* report_theory_table: one line per k: loss, certificate, structure, downstream, bound. */
void report_theory_table(FILE *f, const TheoryModel *m, const TheorySolution *s, int n);
/* report_theory_svg: the downstream losses and the Saunshi et al. bound against k (log axis);
   malloc'd SVG text. */
char *report_theory_svg(const TheoryModel *m, const char *title, const TheorySolution *s, int n);
/* report_write_text: writes a NUL-terminated text atomically (frees nothing). */
int report_write_text(const char *path, const char *text, NcError *err);

#endif
