// blas_threads.c -- OpenBLAS held at one thread while GEMMs run split over the OpenMP team.
//
// OpenBLAS's thread count is one number for the whole process (0.3.21 has no per-thread one). A
// caller that saved it, set 1 and restored it could restore the old count while another thread's
// GEMMs still ran (two executors at once, or an executor beside the loss): those GEMMs then ran
// on OpenBLAS's threads too, slower and with other bits. So the callers share one count: the
// first in sets 1, the last out restores what the first found.
#include "ncelab/core.h"

#include <cblas.h>

static int blas_depth, blas_saved;

void nc_blas_single_begin(void) {
    #pragma omp critical(ncelab_blas_threads)
    {
        if (blas_depth++ == 0) {
            blas_saved = openblas_get_num_threads();
            openblas_set_num_threads(1);
        }
    }
}

void nc_blas_single_end(void) {
    #pragma omp critical(ncelab_blas_threads)
    {
        if (blas_depth > 0 && --blas_depth == 0) openblas_set_num_threads(blas_saved);
    }
}
