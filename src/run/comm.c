// comm.c -- the single-process communicator (rank 0 of 1), MPI launcher detection, comm_free.
#include "ncelab/comm.h"

#include <stdlib.h>
#include <string.h>

/* With one rank a sum, a maximum or a gather over the ranks is the rank's own data: the
   in-place reductions leave buf as it is, the others copy. */
static int single_allreduce_f32(Comm *c, float *buf, size_t n, NcError *err) {
    (void)c; (void)buf; (void)n; (void)err;
    return NC_OK;
}

static int single_allreduce_f64(Comm *c, double *buf, size_t n, NcError *err) {
    (void)c; (void)buf; (void)n; (void)err;
    return NC_OK;
}

static int single_allreduce_max_i64(Comm *c, long long *buf, size_t n, NcError *err) {
    (void)c; (void)buf; (void)n; (void)err;
    return NC_OK;
}

static int single_iallreduce_f32(Comm *c, float *buf, size_t n, CommReq *req, NcError *err) {
    (void)c; (void)buf; (void)n; (void)err;
    req->active = 0;  /* done at once */
    return NC_OK;
}

static int single_test(Comm *c, CommReq *req, int *done, NcError *err) {
    (void)c; (void)err;
    req->active = 0;
    *done = 1;
    return NC_OK;
}

static int single_wait(Comm *c, CommReq *req, NcError *err) {
    (void)c; (void)err;
    req->active = 0;
    return NC_OK;
}

static int single_allgather(Comm *c, const void *send, void *recv, size_t bytes, NcError *err) {
    (void)c; (void)err;
    if (bytes && recv != send) memcpy(recv, send, bytes);
    return NC_OK;
}

static int single_reduce_scatter_f32(Comm *c, const float *send, float *recv, size_t n, NcError *err) {
    (void)c; (void)err;
    if (n && recv != send) memcpy(recv, send, n * sizeof(float));
    return NC_OK;
}

static int single_bcast(Comm *c, void *buf, size_t bytes, int root, NcError *err) {
    (void)c; (void)buf; (void)bytes;
    if (root != 0) return nc_fail(err, NC_EUSAGE, "bcast: root %d is not a rank of a communicator of 1", root);
    return NC_OK;
}

static int single_barrier(Comm *c, NcError *err) {
    (void)c; (void)err;
    return NC_OK;
}

__attribute__((noreturn)) static void single_abort(Comm *c, int code) {
    (void)c;
    exit(code);
}

static int single_split(Comm *c, int color, int key, Comm **out, NcError *err) {
    (void)c; (void)key; (void)err;
    *out = color < 0 ? NULL : comm_single();
    return NC_OK;
}

static void single_destroy(Comm *c) {
    (void)c;  /* statically allocated */
}

static Comm single = {
    .rank = 0,
    .size = 1,
    .kind = "single",
    .allreduce_f32 = single_allreduce_f32,
    .allreduce_f64 = single_allreduce_f64,
    .allreduce_max_i64 = single_allreduce_max_i64,
    .iallreduce_f32 = single_iallreduce_f32,
    .test = single_test,
    .wait = single_wait,
    .allgather = single_allgather,
    .reduce_scatter_f32 = single_reduce_scatter_f32,
    .bcast = single_bcast,
    .barrier = single_barrier,
    .abort = single_abort,
    .split = single_split,
    .destroy = single_destroy,
    .impl = NULL,
};

Comm *comm_single(void) {
    return &single;
}

int comm_launched_by_mpi(void) {
    /* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's hydra and Slurm's PMI-2 set PMI_SIZE;
       PMIx launchers (Open MPI 5, srun --mpi=pmix) set PMIX_RANK. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return 1;
    }
    return 0;
}

void comm_free(Comm *c) {
    if (c && c->destroy) c->destroy(c);
}
