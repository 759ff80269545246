//===- DeviceProfile.h - device profiles as versioned JSON -------*- C++ -*-===//
//
// The file format of a device profile (docs/COST_MODEL.md):
//
//   { "format": "qdsl-device-profile", "version": 1,
//     "device": { name, description, target, peak_gflops, bandwidth_gbs,
//                 cores, threads, vector_floats },
//     "calibrated": bool, "source": "...",
//     "overhead": { "per_pass_us", "per_example_us" },
//     "fallback": predictor, "families": { family: predictor },
//     "measurements": [ ... ], "passes": [ ... ] }
//
// Reading validates every field and names the file and the field at fault.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_DEVICEPROFILE_H
#define QDSL_CODEGEN_LATENCY_DEVICEPROFILE_H

#include "codegen/latency/CostModel.h"

#include "llvm/Support/JSON.h"

#include <string>

namespace qdsl::cost {

/// A profile's `machine` record as JSON.
llvm::json::Value machineToJSON(const MachineRecord &machine);

/// The profile as JSON text.
std::string formatProfile(const DeviceProfile &profile);

/// Parses `text` (read from `fileName`, for messages); false with `error`
/// naming the file, the field and what was expected.
bool parseProfile(const std::string &text, const std::string &fileName,
                  DeviceProfile &profile, std::string &error);

/// Whether JSON `text` nests brackets deeper than `limit` (outside
/// strings): checked before parsing, which recurses once per level.
bool nestsDeeperThan(const std::string &text, int limit);

/// Reads and parses a profile file (at most 256 MiB).
bool readProfile(const std::string &path, DeviceProfile &profile, std::string &error);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_DEVICEPROFILE_H
