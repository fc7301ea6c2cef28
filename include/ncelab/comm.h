// comm.h -- the communicator of data-parallel runs: a small table of collective operations with a
// single-process implementation (no MPI linked) and an MPI one (when ncelab is built with MPI).
#ifndef NCELAB_COMM_H
#define NCELAB_COMM_H

#include <stddef.h>

#include "ncelab/core.h"

typedef struct Comm Comm;

/* A non-blocking operation in flight (iallreduce_f32). Its buffer is the communicator's until
   test reports it done or wait returns. */
typedef struct {
    unsigned char handle[16];  /* the implementation's request */
    int active;
} CommReq;

/* Every operation is collective: all ranks of the communicator call it in the same order with
   the same sizes. Each returns NC_OK or an error code with err filled (naming the operation):
   NC_EFILE when the transport fails (with MPI's own message), NC_EUSAGE for arguments it cannot
   take (a root that is not a rank; with MPI, an allgather or reduce_scatter of more than 2^30
   elements in all). Buffers of different ranks never alias, and a rank's send and recv do not
   overlap. Results do not depend on timing: the same ranks and inputs give bit-identical outputs
   (see comm_mpi.c for what MPI promises). */
struct Comm {
    int rank, size;
    const char *kind;        /* "single" or "mpi" */
    /* buf (n) is replaced by the element-wise sum over the ranks */
    int (*allreduce_f32)(Comm *c, float *buf, size_t n, NcError *err);
    int (*allreduce_f64)(Comm *c, double *buf, size_t n, NcError *err);
    /* starts replacing buf (n <= 2^30) by its sum over the ranks without waiting for it (every
       rank starts the same operations in the same order); test sets *done when it has finished,
       and lets it progress; wait blocks until it has */
    int (*iallreduce_f32)(Comm *c, float *buf, size_t n, CommReq *req, NcError *err);
    int (*test)(Comm *c, CommReq *req, int *done, NcError *err);
    int (*wait)(Comm *c, CommReq *req, NcError *err);
    /* the largest of every rank's value (an error flag agreed by all ranks, a maximum epoch) */
    int (*allreduce_max_i64)(Comm *c, long long *buf, size_t n, NcError *err);
    /* recv (size * bytes) = the send buffers (bytes each) of ranks 0, 1, ... in order */
    int (*allgather)(Comm *c, const void *send, void *recv, size_t bytes, NcError *err);
    /* recv (n) = sum over ranks of block `rank` of their send (size * n) */
    int (*reduce_scatter_f32)(Comm *c, const float *send, float *recv, size_t n, NcError *err);
    /* buf (bytes) of rank root copied to every rank */
    int (*bcast)(Comm *c, void *buf, size_t bytes, int root, NcError *err);
    int (*barrier)(Comm *c, NcError *err);
    /* ends the whole job at once with exit code `code` (after the caller printed why); never
       returns (the attribute: C11's _Noreturn cannot qualify a pointer) */
    void (*abort)(Comm *c, int code) __attribute__((noreturn));
    /* the ranks with the same color form a new communicator, ordered by key (MPI_Comm_split);
       a negative color: this rank joins none and *out is NULL. Free *out with comm_free. */
    int (*split)(Comm *c, int color, int key, Comm **out, NcError *err);
    void (*destroy)(Comm *c);
    void *impl;
};

/* comm_single: the communicator of one process (rank 0 of 1): every operation is a copy or a
   no-op. Statically allocated; comm_free on it does nothing. */
Comm *comm_single(void);

/* comm_launched_by_mpi: 1 when the environment shows an MPI launcher (mpirun, srun: the
   OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK variables), 0 otherwise. */
int comm_launched_by_mpi(void);

/* comm_mpi_world: initialises MPI (MPI_Init_thread, funnelled) and returns MPI_COMM_WORLD as a
   Comm, with errors returned rather than fatal. NC_EUSAGE "built without MPI" when ncelab was
   built without it. comm_mpi_finalize ends MPI (after the world comm is freed). */
int comm_mpi_world(int *argc, char ***argv, Comm **out, NcError *err);
void comm_mpi_finalize(void);

/* comm_free: releases a communicator made by comm_mpi_world or split. */
void comm_free(Comm *c);

/* 1 when ncelab was built with MPI. */
int comm_have_mpi(void);

#endif
