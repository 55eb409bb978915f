/* Source of the elf fuzz target's seeds (fuzz/corpus/elf/, made by
 * fuzz/seeds/make_elf_seeds.sh): a small shared object and executable with
 * the symbols the runtime locator looks for, a GNU build-id and a
 * .note.stapsdt note for python:gc__start (what sys/sdt.h's STAP_PROBE emits,
 * written out so that no systemtap headers are needed). */
int _PyRuntime[64] = {1};
unsigned Py_Version = 0x030b02f0;
int PyCode_Type[8] = {2};

int gc_collect(int n) {
  __asm__ __volatile__(
      "990: nop\n"
      ".pushsection .note.stapsdt,\"?\",\"note\"\n"
      ".balign 4\n"
      ".4byte 992f-991f, 994f-993f, 3\n"
      "991: .asciz \"stapsdt\"\n"
      "992: .balign 4\n"
      "993: .8byte 990b\n"
      ".8byte _.stapsdt.base\n"
      ".8byte 0\n"
      ".asciz \"python\"\n"
      ".asciz \"gc__start\"\n"
      ".asciz \"-4@%0\"\n"
      "994: .balign 4\n"
      ".popsection\n"
      ".ifndef _.stapsdt.base\n"
      ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
      ".weak _.stapsdt.base\n"
      ".hidden _.stapsdt.base\n"
      "_.stapsdt.base: .space 1\n"
      ".size _.stapsdt.base, 1\n"
      ".popsection\n"
      ".endif\n"
      :
      : "r"(n));
  return n + _PyRuntime[0];
}

void _start(void) {
  gc_collect(3);
  for (;;) {
  }
}
