//===- WeightInit.cpp - deterministic initial weights ---------------------===//

#include "WeightInit.h"

#include <cmath>

namespace qdsl::rt {

namespace {

/// splitmix64: small, fast and good enough to seed weights.
class Random {
public:
  explicit Random(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  /// Standard normal, by Box-Muller (one of the pair).
  double normal() {
    double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

private:
  uint64_t state;
};

uint64_t hashName(const std::string &name) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

} // namespace

Tensor initializeTensor(const std::string &name, const std::vector<int64_t> &shape,
                        const InitSpec &spec, uint64_t seed) {
  Tensor tensor(shape);
  Random random(hashName(name) ^ (seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
  for (float &v : tensor.data) {
    switch (spec.kind) {
    case InitKind::Zeros:
      v = 0.0f;
      break;
    case InitKind::Ones:
      v = 1.0f;
      break;
    case InitKind::Constant:
      v = static_cast<float>(spec.value);
      break;
    case InitKind::Normal:
      v = static_cast<float>(spec.value * random.normal());
      break;
    case InitKind::TruncNormal: {
      double z;
      do
        z = random.normal();
      while (std::fabs(z) > 2.0);
      v = static_cast<float>(spec.value * z);
      break;
    }
    case InitKind::Uniform:
      v = static_cast<float>(spec.value * (2.0 * random.uniform() - 1.0));
      break;
    }
  }
  return tensor;
}

} // namespace qdsl::rt
