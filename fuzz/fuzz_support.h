#pragma once
// Small helpers shared by the fuzz targets: a deterministic split of the input into feeds, and a check
// that aborts (a finding libFuzzer records, with the input) when a property does not hold.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace fuzz {

/// Aborts with a message: libFuzzer saves the input as a crash.
#define FUZZ_CHECK(cond, what)                                                      \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d): %s\n", #cond, __FILE__, \
                   __LINE__, what);                                                 \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

/// SplitMix64: a tiny deterministic generator, so that one input always replays the same way.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

inline std::uint64_t hash(std::string_view bytes) {  // FNV-1a
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

/// Cuts `bytes` into pieces of random sizes (1 byte up to ~`max_piece`, empty pieces too), seeded by
/// `seed`: the same bytes fed in the splits a network would make.
inline std::vector<std::string_view> random_split(std::string_view bytes, std::uint64_t seed, std::size_t max_piece = 64) {
  Rng rng{seed};
  std::vector<std::string_view> pieces;
  while (!bytes.empty()) {
    const auto r = rng.next();
    std::size_t n = (r & 7) == 0 ? 0 : (r & 7) == 1 ? 1 : static_cast<std::size_t>((r >> 8) % (max_piece + 1));
    if (n > bytes.size()) n = bytes.size();
    pieces.push_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return pieces;
}

/// The first line of the input (without its '\n') and what follows it.
inline std::pair<std::string_view, std::string_view> first_line(std::string_view input) {
  const auto nl = input.find('\n');
  if (nl == std::string_view::npos) return {input, {}};
  return {input.substr(0, nl), input.substr(nl + 1)};
}

}  // namespace fuzz
