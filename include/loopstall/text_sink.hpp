// Human-readable output: a line per stall and a summary at the end.
#pragma once

#include <cstdio>
#include <string>

#include "loopstall/sink.hpp"

namespace loopstall {

std::string format_stall_line(const StallReport& r);
std::string format_summary(const Summary& s);

class TextSink : public Sink {
 public:
  explicit TextSink(std::FILE* out) : out_(out) {}
  void stall(const StallReport& r) override;
  void finish(const Summary& s) override;

 private:
  std::FILE* out_;
};

}  // namespace loopstall
