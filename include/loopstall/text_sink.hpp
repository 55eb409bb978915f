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
  explicit TextSink(Writer out) : out_(std::move(out)) {}
  void stall(const StallReport& r) override;
  void finish(const Summary& s) override;

 private:
  Writer out_;
};

}  // namespace loopstall
