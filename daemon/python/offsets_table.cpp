#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

const PyOffsets* offsets_for(int major, int minor) {
  if (major != 3) return nullptr;
  switch (minor) {
    case 8: return &kPy38;
    case 9: return &kPy39;
    case 10: return &kPy310;
    case 11: return &kPy311;
    case 12: return &kPy312;
    case 13: return &kPy313;
    default: return nullptr;
  }
}

}  // namespace loopstall::python
