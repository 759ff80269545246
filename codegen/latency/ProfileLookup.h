//===- ProfileLookup.h - a device's profile by its name ----------*- C++ -*-===//
//
// `constraint latency("cortex-a76") <= 300 ms` names a device, not a file.
// Its profile is looked for, in order, as DEVICE.json in each directory of
// $QDSL_PROFILE_PATH (separated by ':'), then among the profiles shipped
// with qdsl (profiles/*.json of its source, compiled into the binary so that
// qdsl finds them wherever it runs). The file's name is the key: a profile
// measured here (device "host-x86-64-avx2") can stand for any name. A
// profile given with --device takes precedence for the device it describes
// or is named after.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_PROFILELOOKUP_H
#define QDSL_CODEGEN_LATENCY_PROFILELOOKUP_H

#include "codegen/latency/CostModel.h"

#include <string>
#include <vector>

namespace qdsl::cost {

/// The environment variable of the profile search path.
inline constexpr const char *kProfilePathVariable = "QDSL_PROFILE_PATH";

/// How a shipped profile's `file` begins ("qdsl's shipped profiles/D.json").
inline constexpr const char *kShippedProfilePrefix = "qdsl's shipped ";

/// The devices of the profiles compiled into qdsl, sorted.
std::vector<std::string> shippedProfileDevices();

/// Finds and reads the profile of `device`. False with `error` listing every
/// place looked in when there is none, or naming the file at fault when
/// the one found is malformed.
bool findDeviceProfile(const std::string &device, DeviceProfile &profile,
                       std::string &error);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_PROFILELOOKUP_H
