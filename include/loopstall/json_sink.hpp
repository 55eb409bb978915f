// JSON Lines: one stall-event object per line, flushed per line
// (docs/contract/stall-event.schema.json).
#pragma once

#include <cstdio>

#include <nlohmann/json.hpp>

#include "loopstall/sink.hpp"

namespace loopstall {

nlohmann::ordered_json to_json(const StallReport& r);

class JsonLinesSink : public Sink {
 public:
  explicit JsonLinesSink(Writer out) : out_(std::move(out)) {}
  void stall(const StallReport& r) override;

 private:
  Writer out_;
};

}  // namespace loopstall
