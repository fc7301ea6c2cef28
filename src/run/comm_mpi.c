// comm_mpi.c -- the MPI communicator: MPI_COMM_WORLD and its splits as a Comm whose failures come
// back as NcError; in a build without MPI, the functions that say so.
#include "ncelab/comm.h"

#if defined(NCELAB_HAVE_MPI) && NCELAB_HAVE_MPI

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* The most elements one MPI call is given (MPI counts are int). The reductions and bcast send
   longer buffers in chunks of this many elements; allgather and reduce_scatter refuse a total
   (ranks x count) above it, since Open MPI computes some of their offsets in int. Tests build a
   copy of this file with a small value to exercise both paths. */
#ifndef NCELAB_MPI_MAX_COUNT
#define NCELAB_MPI_MAX_COUNT ((size_t)1 << 30)
#endif

/* Determinism. MPI does not promise that a sum is computed in the same order on every call, but
   Open MPI's collectives (coll/tuned, the default) choose their algorithm from the message size
   and the number of ranks only, and each algorithm adds in a fixed order: for a fixed size and
   number of ranks an all-reduce is bit-identical from call to call and run to run, and equal on
   every rank. Chunking keeps this (the chunks are fixed by the size). A different number of
   ranks, or a forced algorithm (--mca coll_tuned_*), may round differently. */

typedef struct {
    Comm base;
    MPI_Comm comm;
    int owned;  /* made by split: MPI_Comm_free on destroy (the world is not ours to free) */
} MpiComm;

static MPI_Comm mpi_of(Comm *c) {
    return ((MpiComm *)c->impl)->comm;
}

/* mpi_fail: "op: MPI_Xxx failed: <MPI_Error_string>", as NC_EFILE (an IO error of the transport). */
static int mpi_fail(NcError *err, const char *op, const char *call, int rc) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error code %d", rc);
    return nc_fail(err, NC_EFILE, "%s: %s failed: %s", op, call, s);
}

/* buf (n elements of esize bytes) in place, in chunks of at most NCELAB_MPI_MAX_COUNT elements */
static int allreduce_chunks(Comm *c, void *buf, size_t n, size_t esize, MPI_Datatype type, MPI_Op op,
                            const char *what, NcError *err) {
    for (size_t off = 0; off < n; off += NCELAB_MPI_MAX_COUNT) {
        size_t cnt = n - off < NCELAB_MPI_MAX_COUNT ? n - off : NCELAB_MPI_MAX_COUNT;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esize, (int)cnt, type, op, mpi_of(c));
        if (rc != MPI_SUCCESS) return mpi_fail(err, what, "MPI_Allreduce", rc);
    }
    return NC_OK;
}

static int mpi_allreduce_f32(Comm *c, float *buf, size_t n, NcError *err) {
    return allreduce_chunks(c, buf, n, sizeof(float), MPI_FLOAT, MPI_SUM, "allreduce_f32", err);
}

static int mpi_allreduce_f64(Comm *c, double *buf, size_t n, NcError *err) {
    return allreduce_chunks(c, buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM, "allreduce_f64", err);
}

static int mpi_allreduce_max_i64(Comm *c, long long *buf, size_t n, NcError *err) {
    return allreduce_chunks(c, buf, n, sizeof(long long), MPI_LONG_LONG, MPI_MAX, "allreduce_max_i64", err);
}

_Static_assert(sizeof(MPI_Request) <= sizeof(((CommReq *)0)->handle), "MPI_Request fits a CommReq");

static int mpi_iallreduce_f32(Comm *c, float *buf, size_t n, CommReq *req, NcError *err) {
    req->active = 0;
    if (n > NCELAB_MPI_MAX_COUNT)
        return nc_fail(err, NC_EUSAGE, "iallreduce_f32: %zu floats exceed the %zu one MPI call reduces", n,
                       (size_t)NCELAB_MPI_MAX_COUNT);
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, mpi_of(c), &r);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "iallreduce_f32", "MPI_Iallreduce", rc);
    memcpy(req->handle, &r, sizeof r);
    req->active = 1;
    return NC_OK;
}

static int mpi_test(Comm *c, CommReq *req, int *done, NcError *err) {
    (void)c;
    *done = 1;
    if (!req->active) return NC_OK;
    MPI_Request r;
    memcpy(&r, req->handle, sizeof r);
    int rc = MPI_Test(&r, done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "test", "MPI_Test", rc);
    memcpy(req->handle, &r, sizeof r);
    if (*done) req->active = 0;
    return NC_OK;
}

static int mpi_wait(Comm *c, CommReq *req, NcError *err) {
    (void)c;
    if (!req->active) return NC_OK;
    MPI_Request r;
    memcpy(&r, req->handle, sizeof r);
    req->active = 0;
    int rc = MPI_Wait(&r, MPI_STATUS_IGNORE);
    return rc == MPI_SUCCESS ? NC_OK : mpi_fail(err, "wait", "MPI_Wait", rc);
}

static int mpi_allgather(Comm *c, const void *send, void *recv, size_t bytes, NcError *err) {
    if (bytes > NCELAB_MPI_MAX_COUNT / (size_t)c->size)
        return nc_fail(err, NC_EUSAGE, "allgather: %zu bytes from each of %d ranks exceed the %zu bytes one MPI call gathers",
                       bytes, c->size, (size_t)NCELAB_MPI_MAX_COUNT);
    int rc = MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, mpi_of(c));
    return rc == MPI_SUCCESS ? NC_OK : mpi_fail(err, "allgather", "MPI_Allgather", rc);
}

static int mpi_reduce_scatter_f32(Comm *c, const float *send, float *recv, size_t n, NcError *err) {
    if (n > NCELAB_MPI_MAX_COUNT / (size_t)c->size)
        return nc_fail(err, NC_EUSAGE, "reduce_scatter_f32: %zu floats for each of %d ranks exceed the %zu one MPI call reduces",
                       n, c->size, (size_t)NCELAB_MPI_MAX_COUNT);
    int rc = MPI_Reduce_scatter_block(send, recv, (int)n, MPI_FLOAT, MPI_SUM, mpi_of(c));
    return rc == MPI_SUCCESS ? NC_OK : mpi_fail(err, "reduce_scatter_f32", "MPI_Reduce_scatter_block", rc);
}

static int mpi_bcast(Comm *c, void *buf, size_t bytes, int root, NcError *err) {
    /* one call even for 0 bytes, so that a bad root is reported the same way at any size */
    size_t off = 0;
    do {
        size_t cnt = bytes - off < NCELAB_MPI_MAX_COUNT ? bytes - off : NCELAB_MPI_MAX_COUNT;
        int rc = MPI_Bcast((char *)buf + off, (int)cnt, MPI_BYTE, root, mpi_of(c));
        if (rc != MPI_SUCCESS) return mpi_fail(err, "bcast", "MPI_Bcast", rc);
        off += cnt;
    } while (off < bytes);
    return NC_OK;
}

static int mpi_barrier(Comm *c, NcError *err) {
    int rc = MPI_Barrier(mpi_of(c));
    return rc == MPI_SUCCESS ? NC_OK : mpi_fail(err, "barrier", "MPI_Barrier", rc);
}

__attribute__((noreturn)) static void mpi_abort(Comm *c, int code) {
    (void)c;
    fflush(stdout);
    fflush(stderr);
    /* the world, whatever communicator failed: the job ends, not just a group of it */
    MPI_Abort(MPI_COMM_WORLD, code);
    _Exit(code);  /* MPI_Abort does not return; should it, this process still ends */
}

static void mpi_destroy(Comm *c) {
    MpiComm *m = c->impl;
    int fin = 0;
    MPI_Finalized(&fin);
    if (m->owned && !fin) MPI_Comm_free(&m->comm);
    free(m);
}

static int mpi_split(Comm *c, int color, int key, Comm **out, NcError *err);

/* mpi_wrap: a Comm for comm (its error handler set to return) */
static int mpi_wrap(MPI_Comm comm, int owned, Comm **out, NcError *err) {
    *out = NULL;
    int rc = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "comm", "MPI_Comm_set_errhandler", rc);
    MpiComm *m = nc_calloc(1, sizeof *m);
    m->comm = comm;
    m->owned = owned;
    Comm *c = &m->base;
    if ((rc = MPI_Comm_rank(comm, &c->rank)) != MPI_SUCCESS || (rc = MPI_Comm_size(comm, &c->size)) != MPI_SUCCESS) {
        free(m);
        return mpi_fail(err, "comm", "MPI_Comm_rank/size", rc);
    }
    c->kind = "mpi";
    c->allreduce_f32 = mpi_allreduce_f32;
    c->allreduce_f64 = mpi_allreduce_f64;
    c->allreduce_max_i64 = mpi_allreduce_max_i64;
    c->iallreduce_f32 = mpi_iallreduce_f32;
    c->test = mpi_test;
    c->wait = mpi_wait;
    c->allgather = mpi_allgather;
    c->reduce_scatter_f32 = mpi_reduce_scatter_f32;
    c->bcast = mpi_bcast;
    c->barrier = mpi_barrier;
    c->abort = mpi_abort;
    c->split = mpi_split;
    c->destroy = mpi_destroy;
    c->impl = m;
    *out = c;
    return NC_OK;
}

static int mpi_split(Comm *c, int color, int key, Comm **out, NcError *err) {
    *out = NULL;
    MPI_Comm nc = MPI_COMM_NULL;
    int rc = MPI_Comm_split(mpi_of(c), color < 0 ? MPI_UNDEFINED : color, key, &nc);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "split", "MPI_Comm_split", rc);
    if (nc == MPI_COMM_NULL) return NC_OK;
    if ((rc = mpi_wrap(nc, 1, out, err)) != NC_OK) MPI_Comm_free(&nc);
    return rc;
}

int comm_mpi_world(int *argc, char ***argv, Comm **out, NcError *err) {
    *out = NULL;
    int inited = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin) return nc_fail(err, NC_EUSAGE, "comm_mpi_world: MPI was already finalised");
    MPI_Initialized(&inited);
    if (!inited) {
        /* funnelled: OpenMP threads compute, only the main thread calls MPI */
        int provided = MPI_THREAD_SINGLE;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(err, "comm_mpi_world", "MPI_Init_thread", rc);
        if (provided < MPI_THREAD_FUNNELED)
            return nc_fail(err, NC_EUSAGE, "comm_mpi_world: the MPI library offers thread level %d, below MPI_THREAD_FUNNELED",
                           provided);
    }
    return mpi_wrap(MPI_COMM_WORLD, 0, out, err);
}

void comm_mpi_finalize(void) {
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Finalize();
}

int comm_have_mpi(void) {
    return 1;
}

#else

int comm_mpi_world(int *argc, char ***argv, Comm **out, NcError *err) {
    (void)argc; (void)argv;
    *out = NULL;
    return nc_fail(err, NC_EUSAGE, "ncelab was built without MPI; rebuild with OpenMPI (libopenmpi-dev) installed");
}

void comm_mpi_finalize(void) {}

int comm_have_mpi(void) {
    return 0;
}

#endif
