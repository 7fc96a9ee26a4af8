// The candidate list the sampler stages transform: llama.cpp's llama_token_data_array.
#pragma once

#include <cstdint>
#include <vector>

namespace loupe::sample {

struct Candidate {
  int32_t id;
  float logit;
  float p;  // meaningful only right after a stage that computes probabilities
};

struct Candidates {
  std::vector<Candidate> data;
  bool sorted = false;  // by logit descending (ties: lower id first)
};

}  // namespace loupe::sample
