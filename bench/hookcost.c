// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ls_hookcost OBJ PROG[,PROG...]: load bench/hookcost.bpf.o, attach the
 * named programs, print "ready" and wait for SIGINT/SIGTERM.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int wanted(const char *list, const char *name) {
  size_t n = strlen(name);
  const char *p = list;

  while ((p = strstr(p, name))) {
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    p += n;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct bpf_link *links[32];
  struct bpf_object *obj;
  struct bpf_program *prog;
  int nlinks = 0, i;

  if (argc != 3) {
    fprintf(stderr, "usage: ls_hookcost hookcost.bpf.o PROG[,PROG...]\n");
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  obj = bpf_object__open_file(argv[1], NULL);
  if (!obj) {
    fprintf(stderr, "ls_hookcost: open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  bpf_object__for_each_program(prog, obj) bpf_program__set_autoload(prog, wanted(argv[2], bpf_program__name(prog)));
  if (bpf_object__load(obj)) {
    fprintf(stderr, "ls_hookcost: load: %s\n", strerror(errno));
    return 1;
  }
  bpf_object__for_each_program(prog, obj) {
    if (!bpf_program__autoload(prog)) continue;
    if (nlinks == 32 || !(links[nlinks] = bpf_program__attach(prog))) {
      fprintf(stderr, "ls_hookcost: attach %s: %s\n", bpf_program__name(prog), strerror(errno));
      return 1;
    }
    nlinks++;
  }
  if (!nlinks) {
    fprintf(stderr, "ls_hookcost: no program named in %s\n", argv[2]);
    return 1;
  }
  printf("ready %d\n", nlinks);
  fflush(stdout);
  while (!stop) pause();
  for (i = 0; i < nlinks; i++) bpf_link__destroy(links[i]);
  bpf_object__close(obj);
  return 0;
}
