#!/bin/sh
# Rebuilds fuzz/corpus/elf/ from elf_seed.c: a shared object with .symtab, the
# same stripped to .dynsym, and a static non-PIE executable (ET_EXEC).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../corpus/elf
mkdir -p "$out"
cc="clang -Os -nostdlib -fno-asynchronous-unwind-tables -Wl,--build-id=sha1 -Wl,-z,noseparate-code"
$cc -shared -fPIC "$here/elf_seed.c" -o "$out/libpython3.11-seed.so"
strip --strip-unneeded "$out/libpython3.11-seed.so" -o "$out/libpython3.11-seed-stripped.so"
$cc -static "$here/elf_seed.c" -o "$out/python3.11-seed-exec"
ls -l "$out"
