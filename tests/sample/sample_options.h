// Shared by the sample tests: SampleOptions in one call.
#pragma once

#include <cstdint>

#include "sample/sampler.h"

namespace loupe::sample::testing {

inline SampleOptions opts(bool record = false, int32_t record_top = 0, int32_t n_remaining = -1,
                          bool grammar_first = false) {
  SampleOptions o;
  o.record_stages = record;
  o.record_top = record_top;
  o.n_remaining = n_remaining;
  o.grammar_first = grammar_first;
  return o;
}

}  // namespace loupe::sample::testing
