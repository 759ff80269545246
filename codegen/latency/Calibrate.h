//===- Calibrate.h - a device profile carried to this machine ----*- C++ -*-===//
//
// `qdsl profile --calibrate BASE.json` times a few architectures here
// instead of the many a full profile needs, and carries BASE's predictors
// over: each kernel family's time is scaled by the ratio of what its
// kernels took here to what BASE predicts for them, and the time outside
// the kernels likewise. Machines of one class differ mostly by a factor per
// kind of work (clock, memory, cache sizes), which is what a per-family
// factor captures; docs/COST_MODEL.md measures how well.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_CALIBRATE_H
#define QDSL_CODEGEN_LATENCY_CALIBRATE_H

#include "codegen/latency/ProfileFit.h"

namespace qdsl::cost {

/// `base` scaled to the kernels and passes timed here (`passes`, kernels
/// with their measured seconds): per-family factors (the overall factor
/// for a family no timed kernel belongs to), the overhead scaled by the
/// ratio of the time outside the kernels here to what `base` predicts,
/// `passes` as the profile's passes, and `calibration` describing all of
/// it (its `base` and `seconds` are left for the caller).
DeviceProfile calibrateProfile(const DeviceProfile &base, const std::vector<TimedPass> &passes);

/// Scales every prediction `model` makes by `factor`.
FamilyModel scaledModel(const FamilyModel &model, double factor);

/// Prints the factors and the errors on the calibration kernels and passes
/// before and after.
void printCalibration(const CalibrationRecord &record, llvm::raw_ostream &os);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_CALIBRATE_H
