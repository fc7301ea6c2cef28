// test_cli_outputs.c -- what an output path already is decides how ncelab writes it: a regular
// file is replaced atomically, a symlink's target is replaced (the link stays), a character
// device or a FIFO is written through and never replaced, a directory, block device or socket is
// refused, and temporary files of killed writers are removed. Devices are made with mknod in a
// scratch directory (root only; skipped otherwise), never under /dev.
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define THEORY "theory --classes 3 --k 2 --json "

static mode_t kind(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0 ? (st.st_mode & S_IFMT) : 0;
}

static int has_json(const char *p) {
    char buf[256] = "";
    cli_slurp(p, buf, sizeof buf);
    return strncmp(buf, "{", 1) == 0;
}

/* the number of entries of dir whose name starts with prefix */
static int count_prefix(const char *dir, const char *prefix) {
    char cmd[600], out[64];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '^%s' > %s/count.txt", dir, prefix, cli_dir);
    if (system(cmd) < 0) return -1;
    snprintf(cmd, sizeof cmd, "%s/count.txt", cli_dir);
    cli_slurp(cmd, out, sizeof out);
    return atoi(out);
}

int main(void) {
    cli_setup("cli_outputs");
    char d[400], p[500], q[500], cmd[1200];
    snprintf(d, sizeof d, "%s/scratch", cli_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/other", d);
    CHECK(system(cmd) == 0, "scratch directory");

    /* a regular file: replaced, nothing left beside it */
    snprintf(p, sizeof p, "%s/out.json", d);
    cli_file("scratch/out.json", "old\n");
    int rc = cli_run(THEORY "%s", p);
    CHECK(rc == 0 && kind(p) == S_IFREG && has_json(p) && count_prefix(d, "out.json.tmp") == 0,
          "a regular file is replaced, no temporary left (exit %d)", rc);

    /* a symlink to a file elsewhere: the target is replaced, the link stays a link */
    snprintf(q, sizeof q, "%s/other/target.json", d);
    cli_file("scratch/other/target.json", "old\n");
    snprintf(p, sizeof p, "%s/link.json", d);
    rc = symlink("other/target.json", p);
    rc = cli_run(THEORY "%s", p);
    char lbuf[64] = "";
    ssize_t ln = readlink(p, lbuf, sizeof lbuf - 1);
    CHECK(rc == 0 && kind(p) == S_IFLNK && ln == 17 && strncmp(lbuf, "other/target.json", 17) == 0 && has_json(q) &&
              count_prefix(d, "link.json.tmp") == 0,
          "a symlink stays a link to the same file, whose content is replaced (exit %d)", rc);

    /* a dangling symlink: its target is created, like cp */
    snprintf(p, sizeof p, "%s/dangling.json", d);
    snprintf(q, sizeof q, "%s/other/created.json", d);
    rc = symlink("other/created.json", p);
    rc = cli_run(THEORY "%s", p);
    CHECK(rc == 0 && kind(p) == S_IFLNK && kind(q) == S_IFREG && has_json(q), "a dangling symlink: its target is created (exit %d)",
          rc);

    /* a symlink loop: refused */
    snprintf(p, sizeof p, "%s/loop1", d);
    snprintf(q, sizeof q, "%s/loop2", d);
    rc = symlink("loop2", p) + symlink("loop1", q);
    rc = cli_run(THEORY "%s", p);
    CHECK(rc == 1 && strstr(cli_err, "loop1") && kind(p) == S_IFLNK && kind(q) == S_IFLNK,
          "a symlink loop: exit %d, both links unchanged: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);

    /* a FIFO: written through to its reader, still a FIFO */
    snprintf(p, sizeof p, "%s/fifo", d);
    CHECK(mkfifo(p, 0644) == 0, "made a FIFO");
    snprintf(cmd, sizeof cmd, "timeout 60 cat %s > %s/fifo.out &", p, d);
    CHECK(system(cmd) == 0, "a reader on the FIFO");
    rc = cli_run(THEORY "%s", p);
    snprintf(q, sizeof q, "%s/fifo.out", d);
    for (int i = 0; i < 50 && !has_json(q); i++) usleep(100000);
    CHECK(rc == 0 && kind(p) == S_IFIFO && has_json(q) && count_prefix(d, "fifo.tmp") == 0,
          "a FIFO is written through to its reader and stays a FIFO (exit %d)", rc);

    /* a directory and a socket: refused, unchanged */
    snprintf(p, sizeof p, "%s/other", d);
    rc = cli_run(THEORY "%s", p);
    CHECK(rc == 1 && strstr(cli_err, "directory") && kind(p) == S_IFDIR, "a directory: exit %d: %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    snprintf(p, sizeof p, "%s/sock", d);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int bound = 0;
    if (strlen(p) < sizeof sa.sun_path) {
        memcpy(sa.sun_path, p, strlen(p) + 1);
        bound = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    }
    if (bound) {
        rc = cli_run(THEORY "%s", p);
        CHECK(rc == 1 && strstr(cli_err, "socket") && kind(p) == S_IFSOCK, "a socket: exit %d: %.*s", rc,
              (int)strcspn(cli_err, "\n"), cli_err);
    } else {
        printf("skip: cannot bind a socket at %s\n", p);
    }
    if (s >= 0) close(s);

    /* devices, made here with mknod: the null and full devices (char 1:3, 1:7) and a block device */
    snprintf(p, sizeof p, "%s/null", d);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        rc = cli_run(THEORY "%s", p);
        CHECK(rc == 0 && kind(p) == S_IFCHR && count_prefix(d, "null.") == 0,
              "a character device (null) is written through, stays a device, no file beside it (exit %d)", rc);
        rc = cli_run("theory --classes 3 --k 2 --svg %s", p);
        CHECK(rc == 0 && kind(p) == S_IFCHR, "--svg to it likewise (exit %d)", rc);
        snprintf(p, sizeof p, "%s/full", d);
        CHECK(mknod(p, S_IFCHR | 0666, makedev(1, 7)) == 0, "made a full device");
        rc = cli_run(THEORY "%s", p);
        CHECK(rc == 1 && strstr(cli_err, "full") && strstr(cli_err, "No space left") && kind(p) == S_IFCHR &&
                  count_prefix(d, "full.") == 0,
              "the full device: exit %d naming it, still a device: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
        snprintf(p, sizeof p, "%s/block", d);
        CHECK(mknod(p, S_IFBLK | 0600, makedev(7, 200)) == 0, "made a block device node");
        rc = cli_run(THEORY "%s", p);
        CHECK(rc == 1 && strstr(cli_err, "block device") && kind(p) == S_IFBLK,
              "a block device is refused, still a device: exit %d: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
        /* and a checkpoint: train --out into a directory whose ckpt.safetensors is a device */
        snprintf(q, sizeof q, "%s/run", d);
        snprintf(cmd, sizeof cmd, "mkdir -p %s", q);
        CHECK(system(cmd) == 0, "a run directory");
        snprintf(p, sizeof p, "%s/run/ckpt.safetensors", d);
        CHECK(mknod(p, S_IFBLK | 0600, makedev(7, 201)) == 0, "a block device as the checkpoint");
        rc = cli_run("train --data synth:4:16:60 --k 6 --batch 16 --epochs 1 --out %s --force", q);
        CHECK(rc == 1 && strstr(cli_err, "ckpt.safetensors") && kind(p) == S_IFBLK,
              "train refuses to replace a block device named as its checkpoint: exit %d: %.*s", rc,
              (int)strcspn(cli_err, "\n"), cli_err);
    } else {
        printf("skip: mknod needs root; the device cases are not run\n");
    }

    /* temporary files of killed writers are removed by the next write; a live writer's stay */
    snprintf(p, sizeof p, "%s/t.json", d);
    cli_file("scratch/t.json.tmp.2147483640", "half\n");
    char live[64];
    snprintf(live, sizeof live, "scratch/t.json.tmp.%ld", (long)getpid());
    cli_file(live, "in progress\n");
    rc = cli_run(THEORY "%s", p);
    snprintf(q, sizeof q, "%s/t.json.tmp.2147483640", d);
    char lp[500];
    snprintf(lp, sizeof lp, "%s/%s", cli_dir, live);
    CHECK(rc == 0 && access(q, F_OK) != 0 && access(lp, F_OK) == 0 && has_json(p),
          "a dead writer's temporary file is removed, a live one's kept (exit %d)", rc);
    /* an output path's missing parent directories are created; a parent that is a file is named */
    snprintf(p, sizeof p, "%s/new/deeper/t.json", d);
    int rc2 = cli_run("theory --classes 3 --k 1,4 --json %s", p);
    CHECK(rc2 == 0 && access(p, R_OK) == 0, "--json NEW/DEEPER/t.json: the directories are created (exit %d): %.*s", rc2,
          (int)strcspn(cli_err, "\n"), cli_err);
    snprintf(q, sizeof q, "%s/new/deeper/t.json/x.json", d);
    rc2 = cli_run("theory --classes 3 --k 1 --json %s", q);
    CHECK(rc2 == 1 && strstr(cli_err, "t.json"), "--json under a file: exit 1 naming it (%d): %.*s", rc2,
          (int)strcspn(cli_err, "\n"), cli_err);
    return check_done();
}
