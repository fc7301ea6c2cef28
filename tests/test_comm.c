// test_comm.c -- every operation of the communicator, checked exactly on rank-dependent data: the
// single-process one when run plainly, the MPI one under mpirun (2 or 3 ranks, shared memory or TCP).
#define _DEFAULT_SOURCE
#include "check.h"
#include "ncelab/comm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The most elements comm_mpi.c gives one MPI call (a test build lowers it to exercise chunking). */
#ifndef NCELAB_MPI_MAX_COUNT
#define NCELAB_MPI_MAX_COUNT ((size_t)1 << 30)
#endif

static Comm *c;

/* every rank prints its checks, prefixed with its rank */
#define RCHECK(cond, fmt, ...) CHECK(cond, "rank %d of %d: " fmt, c->rank, c->size, __VA_ARGS__)

static void test_identity(int launched) {
    RCHECK(c->rank >= 0 && c->rank < c->size, "rank in [0, size) (%s)", c->kind);
    if (launched) {
        RCHECK(strcmp(c->kind, "mpi") == 0 && comm_have_mpi(), "under mpirun the communicator is MPI's (%s)", c->kind);
    } else {
        RCHECK(c == comm_single() && c->size == 1 && c->rank == 0 && strcmp(c->kind, "single") == 0,
               "plainly run, the single communicator (%s)", c->kind);
    }
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n) RCHECK(c->size == atoi(n), "the size is mpirun's -np (%s)", n);
}

static void test_allreduce_f32(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    size_t n = 1000;  /* 16 MPI calls in the chunked build */
    float *b = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) b[i] = (float)((r + 1) * (int)(i % 97 + 1)) + 0.25f * (float)r;
    int rc = c->allreduce_f32(c, b, n, &err);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)(i % 97 + 1) * P * (P + 1) / 2 + 0.25 * P * (P - 1) / 2;  /* exact in float */
        worst = fmax(worst, fabs(b[i] - want));
    }
    RCHECK(rc == NC_OK && worst == 0, "allreduce_f32: the sum over ranks, exactly (worst error %g)", worst);

    /* sums that round: the same on every rank and on a repeat (bit-identical) */
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *x0 = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = y[i] = 0.1f * (float)(r + 1) / (float)(i + 1) + 1e-3f * (float)(r * r);
    rc = c->allreduce_f32(c, x, n, &err) | c->allreduce_f32(c, y, n, &err);
    memcpy(x0, x, n * sizeof(float));
    rc |= c->bcast(c, x0, n * sizeof(float), 0, &err);  /* rank 0's result, compared on every rank */
    int same = memcmp(x, y, n * sizeof(float)) == 0 && memcmp(x, x0, n * sizeof(float)) == 0;
    long long differ = !same;
    rc |= c->allreduce_max_i64(c, &differ, 1, &err);
    same = !differ;
    double sum0 = 0;
    for (int s = 0; s < P; s++) sum0 += 0.1 * (s + 1) + 1e-3 * s * s;
    RCHECK(rc == NC_OK && same && fabs(x[0] - sum0) < 1e-6, "allreduce_f32: rounded sums bit-identical on every rank and "
           "on a repeat (x[0] = %.7f, want %.7f)", x[0], sum0);

    float z = 5;
    RCHECK(c->allreduce_f32(c, &z, 0, &err) == NC_OK && z == 5, "allreduce_f32: n = 0 leaves the buffer (%g)", z);
    free(b); free(x); free(y); free(x0);
}

/* three non-blocking all-reduces in flight at once (the trainer's gradient buckets), progressed by
   test and finished by wait: each equals the blocking all-reduce of the same data */
static void test_iallreduce(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    enum { N = 50 };  /* within the chunked build's 64 */
    float a[3][N], want[3][N];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++) want[k][i] = a[k][i] = (float)((r + 1) * (i + 1) + k) + 0.5f * (float)r;
    int rc = 0;
    for (int k = 0; k < 3; k++) rc |= c->allreduce_f32(c, want[k], N, &err);
    CommReq q[3];
    for (int k = 0; k < 3; k++) rc |= c->iallreduce_f32(c, a[k], N, &q[k], &err);
    int done = 0, polls = 0;
    while (!done && polls < 1000000) {
        int d0 = 0;
        rc |= c->test(c, &q[0], &d0, &err);
        done = d0;
        polls++;
    }
    rc |= c->wait(c, &q[1], &err) | c->wait(c, &q[2], &err);
    RCHECK(rc == NC_OK && done && !q[0].active && !q[1].active && !q[2].active && memcmp(a, want, sizeof a) == 0,
           "iallreduce_f32: 3 in flight, then test and wait: the blocking all-reduce's bits (%d polls, %d ranks)", polls, P);
    if (NCELAB_MPI_MAX_COUNT < 100 && strcmp(c->kind, "mpi") == 0) {  /* the chunked build: one MPI call takes at most 64 */
        float big[100] = {0};
        CommReq qb;
        RCHECK(c->iallreduce_f32(c, big, 100, &qb, &err) == NC_EUSAGE && !qb.active,
               "iallreduce_f32: more than one call takes is refused: %s", err.msg);
    }
}

static void test_allreduce_f64(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    double b[33];
    for (int i = 0; i < 33; i++) b[i] = 0.5 * r + i + 1e-13 * r;
    int rc = c->allreduce_f64(c, b, 33, &err);
    double worst = 0;
    for (int i = 0; i < 33; i++) worst = fmax(worst, fabs(b[i] - (0.25 * P * (P - 1) + (double)P * i + 1e-13 * P * (P - 1) / 2)));
    /* the 1e-13 parts are below float resolution: a sum in float would lose them */
    RCHECK(rc == NC_OK && worst < 1e-15 * 33 * P, "allreduce_f64: the sum in double (worst error %.2g)", worst);
}

static void test_allreduce_max(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    long long b[5], want[5];
    for (int i = 0; i < 5; i++) {
        want[i] = -(1LL << 62);
        for (int s = 0; s < P; s++) {
            long long v = (s * 7 + i * 3) % 11 - 5;
            if (i == 2) v = (1LL << 60) + s;  /* apart by 1 above 2^53: not a max in double */
            if (i == 4) v = -1000 - s;        /* all negative */
            if (v > want[i]) want[i] = v;
            if (s == r) b[i] = v;
        }
    }
    int rc = c->allreduce_max_i64(c, b, 5, &err);
    RCHECK(rc == NC_OK && memcmp(b, want, sizeof b) == 0, "allreduce_max_i64: the largest of every rank's value "
           "(%lld %lld %lld %lld %lld)", b[0], b[1], b[2], b[3], b[4]);
}

static void test_allgather(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    enum { BYTES = 13 };  /* an odd size: no alignment assumed */
    unsigned char send[BYTES], *recv = malloc((size_t)P * BYTES);
    for (int j = 0; j < BYTES; j++) send[j] = (unsigned char)(r * 31 + j);
    memset(recv, 0xEE, (size_t)P * BYTES);
    int rc = c->allgather(c, send, recv, BYTES, &err), ok = 1;
    for (int s = 0; s < P; s++)
        for (int j = 0; j < BYTES; j++) ok &= recv[s * BYTES + j] == (unsigned char)(s * 31 + j);
    RCHECK(rc == NC_OK && ok, "allgather: %d bytes from each rank, in rank order", BYTES);
    int mine = r, *ranks = malloc(sizeof(int) * P);
    rc = c->allgather(c, &mine, ranks, sizeof mine, &err);
    ok = 1;
    for (int s = 0; s < P; s++) ok &= ranks[s] == s;
    RCHECK(rc == NC_OK && ok, "allgather: the ranks are 0..%d, once each", P - 1);
    RCHECK(c->allgather(c, send, recv, 0, &err) == NC_OK, "allgather: 0 bytes (%s)", "no-op");
    free(recv); free(ranks);
}

static void test_reduce_scatter(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    enum { N = 7 };
    float *send = malloc(sizeof(float) * N * P), recv[N];
    for (int b = 0; b < P; b++)
        for (int j = 0; j < N; j++) send[b * N + j] = (float)((r + 1) * 100 + b * 10 + j);
    int rc = c->reduce_scatter_f32(c, send, recv, N, &err);
    double worst = 0;
    for (int j = 0; j < N; j++) worst = fmax(worst, fabs(recv[j] - (100.0 * P * (P + 1) / 2 + (double)P * (r * 10 + j))));
    RCHECK(rc == NC_OK && worst == 0, "reduce_scatter_f32: block %d of every rank, summed (worst error %g)", r, worst);
    free(send);
}

static void test_bcast(void) {
    NcError err = {0};
    int P = c->size, r = c->rank, root = P - 1;
    unsigned char b[50];
    for (int j = 0; j < 50; j++) b[j] = (unsigned char)(r * 50 + j + 1);
    int rc = c->bcast(c, b, sizeof b, root, &err), ok = 1;
    for (int j = 0; j < 50; j++) ok &= b[j] == (unsigned char)(root * 50 + j + 1);
    RCHECK(rc == NC_OK && ok, "bcast: rank %d's bytes on every rank", root);
    double d = r == 0 ? 2.5 : -1;
    rc = c->bcast(c, &d, sizeof d, 0, &err);
    RCHECK(rc == NC_OK && d == 2.5, "bcast from rank 0 (%g)", d);
    NcError e2 = {0};
    rc = c->bcast(c, &d, sizeof d, P, &e2);
    RCHECK(rc != NC_OK && strstr(e2.msg, "bcast") && d == 2.5, "bcast from rank %d (not a rank) fails: %s", P, e2.msg);
}

/* rank 0 creates a file some time after the others reached the barrier: after it, all see it */
static void test_barrier(void) {
    NcError err = {0};
    long long pid = getpid();
    c->bcast(c, &pid, sizeof pid, 0, &err);
    const char *dir = getenv("NCELAB_TESTDIR");
    char path[600];
    snprintf(path, sizeof path, "%s/comm_barrier_%lld_%d.marker", dir ? dir : "/tmp", pid, c->size);
    int rc = c->barrier(c, &err);
    if (c->rank == 0) {
        struct timespec ts = {0, 300000000};
        nanosleep(&ts, NULL);
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
    }
    rc |= c->barrier(c, &err);
    struct stat st;
    RCHECK(rc == NC_OK && stat(path, &st) == 0, "barrier: rank 0's file, written 0.3 s late, is there after it (%s)", path);
    rc = c->barrier(c, &err);
    if (c->rank == 0) unlink(path);
}

static void test_split(void) {
    NcError err = {0};
    int P = c->size, r = c->rank;
    Comm *s = NULL;
    int rc = c->split(c, r % 2, -r, &s, &err);  /* key -r: the new ranks in reverse order */
    int want_size = 0, want_rank = 0;
    for (int q = 0; q < P; q++)
        if (q % 2 == r % 2) { want_size++; want_rank += q > r; }
    RCHECK(rc == NC_OK && s && s->size == want_size && s->rank == want_rank,
           "split by rank %% 2, key -rank: rank %d of %d in the new communicator", s ? s->rank : -1, s ? s->size : -1);
    if (s) {
        double v = r, want = 0;
        for (int q = r % 2; q < P; q += 2) want += q;
        rc = s->allreduce_f64(s, &v, 1, &err);
        int *members = malloc(sizeof(int) * P), mine = r;
        members[0] = -1;
        rc |= s->allgather(s, &mine, members, sizeof mine, &err);  /* in key order: highest rank first */
        int top = P - 1 - ((P - 1) % 2 != r % 2);
        RCHECK(rc == NC_OK && v == want && members[0] == top, "split: a sum over ranks of the same parity (%g, want %g), "
               "gathered in key order (first %d, want %d)", v, want, members[0], top);
        free(members);
        comm_free(s);
    }
    Comm *t = NULL;
    rc = c->split(c, r == 0 ? -1 : 0, r, &t, &err);
    RCHECK(rc == NC_OK && (r == 0 ? t == NULL : t && t->size == P - 1 && t->rank == r - 1),
           "split with color -1 on rank 0: not a member there, ranks 1.. renumbered (%d)", t ? t->rank : -1);
    comm_free(t);
}

/* MPI: sizes one MPI call cannot take are refused before anything is sent, on every rank alike */
static void test_refusals(void) {
    if (strcmp(c->kind, "mpi") != 0) return;
    NcError e = {0};
    char small[16] = {0}, recv[16 * 8];
    size_t bytes = NCELAB_MPI_MAX_COUNT / (size_t)c->size + 1;
    int rc = c->allgather(c, small, recv, bytes, &e);
    RCHECK(rc == NC_EUSAGE && strstr(e.msg, "allgather"), "allgather of %zu bytes a rank is refused: %s", bytes, e.msg);
    rc = c->reduce_scatter_f32(c, (float *)small, (float *)recv, bytes, &e);
    RCHECK(rc == NC_EUSAGE && strstr(e.msg, "reduce_scatter"), "reduce_scatter_f32 of %zu floats a rank is refused: %s",
           bytes, e.msg);
    float one = 1;
    rc = c->allreduce_f32(c, &one, 1, &e);
    RCHECK(rc == NC_OK && one == c->size, "after the refusals the communicator still works (%g)", one);
}

/* single: abort ends the process with the code (MPI's is run by the CLI test: the job ends) */
static void test_abort_single(void) {
    if (strcmp(c->kind, "single") != 0) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        c->abort(c, 7);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    RCHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "abort(7) ends the process with exit code 7 (status %d)", st);
    NcError e = {0};
    Comm *w = NULL;
    if (!comm_have_mpi()) {
        int rc = comm_mpi_world(NULL, NULL, &w, &e);
        RCHECK(rc == NC_EUSAGE && w == NULL && strstr(e.msg, "built without MPI"), "without MPI: %s", e.msg);
    }
    comm_free(comm_single());  /* does nothing */
    RCHECK(comm_single() == c && c->size == 1, "comm_free(comm_single()) leaves it (%d)", c->size);
}

int main(int argc, char **argv) {
    NcError err = {0};
    int launched = comm_launched_by_mpi();
    if (launched) {
        if (comm_mpi_world(&argc, &argv, &c, &err)) {
            fprintf(stderr, "comm_mpi_world: %s\n", err.msg);
            return 1;
        }
    } else {
        c = comm_single();
    }
    test_identity(launched);
    test_allreduce_f32();
    test_iallreduce();
    test_allreduce_f64();
    test_allreduce_max();
    test_allgather();
    test_reduce_scatter();
    test_bcast();
    test_barrier();
    test_split();
    test_refusals();
    test_abort_single();
    /* every rank ends with the same status */
    long long failures = check_failures;
    if (c->allreduce_max_i64(c, &failures, 1, &err)) failures = 1;
    int rc = check_done();
    if (launched) {
        comm_free(c);
        comm_mpi_finalize();
    }
    return rc || failures ? 1 : 0;
}
