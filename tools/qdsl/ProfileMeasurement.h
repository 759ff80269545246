//===- ProfileMeasurement.h - profiling this machine, for qdsl profile and search -*- C++ -*-===//
//
// `qdsl profile` measures a profile or calibrates one; `qdsl search`
// calibrates the profile of a limit whose device is this machine before it
// searches (docs/NAS.md, "The profile the search uses"). Both go through
// measureProfile.

#ifndef QDSL_TOOLS_QDSL_PROFILEMEASUREMENT_H
#define QDSL_TOOLS_QDSL_PROFILEMEASUREMENT_H

#include "codegen/Targets.h"
#include "codegen/latency/CostModel.h"
#include "codegen/latency/LatencyLimits.h"
#include "tools/driver/Profiler.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace qdsl::tool {

struct ProfileMeasurement {
  driver::ProfilerOptions settings;
  /// Where the profiling projects go; empty: a temporary directory,
  /// removed after a success.
  std::string workDirectory;
  /// With a base: how many cover architectures the calibration times.
  unsigned calibrateArchitectures = 2;
};

/// Measures `space` (of `module`) on this machine into `profile` for
/// `target`: a full profile, or with `base` a calibration of it (which
/// must be a measured, uncalibrated profile). Records this machine in the
/// profile and says how busy it was. 0, or 1 having said why.
int measureProfile(mlir::ModuleOp module, mlir::func::FuncOp space, const codegen::Target &target,
                   const cost::DeviceProfile *base, const ProfileMeasurement &how,
                   cost::DeviceProfile &profile);

/// How `profile` fails to describe this machine run on `threads` threads
/// (0: the profile's own): for a measured profile of a target that runs
/// here, each difference of its machine record from this machine (or that
/// it records none); empty when it matches, or when it is not a profile of
/// this machine's kind.
std::vector<std::string> differencesFromThisMachine(const cost::DeviceProfile &profile,
                                                    unsigned threads = 0);

/// What `profile`'s figures rest on for a search on `threads` threads:
/// "published figures", "measured on the device" (measured, of a target
/// other than the search's), "measured on this machine" or "measured on
/// another machine".
std::string profileBasis(const cost::DeviceProfile &profile, unsigned threads);

/// While on, loading a profile does not warn that it was made on another
/// machine: qdsl search and compile --search say so themselves when they
/// calibrate it (SearchCalibration.cpp).
void deferMachineWarnings(bool defer);

/// What a limit's latency figures rest on, for the report: "published
/// figures", "measured on the device" (a measured profile of a device
/// that is not this machine), "measured on this machine" or "measured on
/// another machine" (under --no-calibrate); and the profile it was
/// calibrated from here, if it was.
struct LimitProfile {
  std::string basis, calibratedFrom;
};

/// Before a search: every limit whose profile is a measured one of a
/// target that runs here but was made on another machine gets that profile
/// calibrated on `space`, written to DIRECTORY/profiles/
/// DEVICE.json and used instead (one line says so, naming it as in
/// `shownDirectory`, where it will be when DIRECTORY is a scratch one). Under --no-calibrate,
/// or for a profile that cannot be calibrated (published figures, or
/// itself a calibration), the profile is kept with a warning. An earlier
/// calibration of the same base in DIRECTORY/profiles (--resume) or in the
/// --from-search directory is used again. `bases` gets what each limit's
/// figures rest on. 0, or 1 having said why.
int calibrateSearchProfiles(mlir::ModuleOp module, mlir::func::FuncOp space,
                            const std::string &directory, const std::string &shownDirectory,
                            std::vector<cost::SearchConstraint> &constraints,
                            std::vector<LimitProfile> &bases);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_PROFILEMEASUREMENT_H
