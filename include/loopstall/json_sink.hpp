// JSON Lines: one stall-event object per line, flushed per line
// (docs/contract/stall-event.schema.json).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "loopstall/sink.hpp"

namespace loopstall {

// The stall-event object, on one line without the newline; invalid UTF-8 in
// names and paths is replaced by U+FFFD.
void append_stall_json(std::string& out, const StallReport& r);
std::string stall_json(const StallReport& r);
// The same object as a tree (parsed back: the line above is its one writer).
nlohmann::ordered_json to_json(const StallReport& r);

class JsonLinesSink : public Sink {
 public:
  explicit JsonLinesSink(Writer out) : out_(std::move(out)) {}
  void stall(const StallReport& r) override;

 private:
  Writer out_;
  std::string line_;  // reused: its capacity fits a deep stack after the first
};

}  // namespace loopstall
