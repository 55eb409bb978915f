// The detection parameters' one owner: defaults, bounds and conversions.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "loopstall/config.hpp"
#include "loopstall/loop_engine.hpp"
#include "loopstall/tuning.hpp"

using namespace loopstall;

TEST_CASE("defaults: 100 ms threshold, 99 Hz sampling, evidence from half the threshold") {
  const Tuning t;
  CHECK(t.threshold_ms == 100);
  CHECK(t.threshold_ns() == 100'000'000ULL);
  CHECK(t.sample_hz == 99);
  CHECK(t.sample_period_ns() == 10'101'010ULL);  // 1e9 / 99, not a 10 ms period in step with 100 Hz timers
  CHECK(t.sample_period_ms() == doctest::Approx(10.10101));
  CHECK(t.evidence_after_ns() == 50'000'000ULL);
  CHECK(t.error().empty());
  // Everyone starts from the same values.
  CHECK(Config{}.tuning().threshold_ns() == t.threshold_ns());
  CHECK(Config{}.tuning().sample_period_ns() == t.sample_period_ns());
  CHECK(EngineOptions{}.tuning.threshold_ns() == t.threshold_ns());
}

TEST_CASE("conversions") {
  CHECK(Tuning::ms_to_ns(1) == 1'000'000ULL);
  CHECK(Tuning::ms_to_ns(0.5) == 500'000ULL);
  CHECK(Tuning::ms_to_ns(3'600'000) == 3'600'000'000'000ULL);  // the largest threshold fits in u64 ns
  CHECK(Tuning::ns_to_ms(2'500'000) == 2.5);
  CHECK(Tuning::period_ns_of_hz(0) == 0);  // no sampling
  CHECK(Tuning::period_ns_of_hz(1000) == 1'000'000ULL);
  CHECK(Tuning{.threshold_ms = 7}.evidence_after_ns() == 3'500'000ULL);
}

TEST_CASE("an iteration's age") {
  CHECK(Tuning::iteration_older(1000, 1500, 500));
  CHECK_FALSE(Tuning::iteration_older(1000, 1499, 500));
  CHECK_FALSE(Tuning::iteration_older(0, 1'000'000, 1));  // none in progress
  CHECK_FALSE(Tuning::iteration_older(2000, 1000, 0));    // began after the snapshot
}

TEST_CASE("validation names the field and refuses what would wrap in u64 ns") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, 0.999, 3'600'001.0, 1e300, nan, inf}) {
    CAPTURE(bad);
    const std::string why = Tuning{.threshold_ms = bad}.error();
    CHECK(why.rfind("threshold_ms must be a number from 1 to 3600000", 0) == 0);
  }
  for (double bad : {0.5, 1001.0, nan, -inf}) {
    CAPTURE(bad);
    CHECK(Tuning{.sample_hz = bad}.error().rfind("sample_hz must be a number from 1 to 1000", 0) == 0);
  }
  CHECK(Tuning{.threshold_ms = 1, .sample_hz = 1000}.error().empty());
  CHECK(Tuning{.threshold_ms = 3'600'000, .sample_hz = 0}.error().empty());  // 0 Hz: sampling off
}
