# Turns the kernel's uapi syscall numbers (asm/unistd_64.h) into a C++ table:
# the names stay exactly the kernel's, with nothing typed by hand.
file(STRINGS "${UNISTD_H}" lines REGEX "^#define __NR_[a-z0-9_]+[ \t]+[0-9]+")
set(out "// Generated from ${UNISTD_H} by cmake/gen_syscall_table.cmake.\n")
foreach(line IN LISTS lines)
  string(REGEX MATCH "^#define __NR_([a-z0-9_]+)[ \t]+([0-9]+)" _ "${line}")
  string(APPEND out "{${CMAKE_MATCH_2}, \"${CMAKE_MATCH_1}\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
