//===- ProfileFuzzer.cpp - libFuzzer target for device profiles -----------===//
//
// Feeds arbitrary bytes to the device profile reader that `qdsl estimate`,
// `--emit=cost-model` and (later) the search read: it must refuse a
// malformed or nonsensical profile with an error naming the field, never
// crash or hang; what it accepts predicts finite, non-negative times.
//
//===----------------------------------------------------------------------===//

#include "codegen/latency/CostModel.h"
#include "codegen/latency/DeviceProfile.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::string error;
  qdsl::cost::DeviceProfile profile;
  if (!qdsl::cost::parseProfile(text, "fuzz.json", profile, error))
    return 0;
  // An accepted profile, on a kernel it has measured and on one it has not.
  qdsl::cost::KernelSample kernel;
  kernel.family = "pointwise";
  kernel.macs = 1e6;
  kernel.bytes = 1e5;
  kernel.params = {{"in_channels", 64}, {"out_channels", 256}};
  for (const auto &[family, model] : profile.families) {
    kernel.family = family;
    if (!qdsl::cost::missingFeature(model, kernel).empty())
      continue;
    double seconds = qdsl::cost::predictWith(model, profile.device, kernel);
    if (!(seconds >= 0) || std::isnan(seconds))
      __builtin_trap();
  }
  return 0;
}
