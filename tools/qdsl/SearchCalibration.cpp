//===- SearchCalibration.cpp - the profile a search uses is this machine's -===//
//
// A measured profile holds for the machine it was measured on; this class
// of machine differs by up to 30% and the shipped host profiles were made
// on slower ones (docs/COST_MODEL.md). A search against such a profile
// derives an architecture that uses a fraction of the limit the user asked
// for, so qdsl search and compile --search calibrate it on the space first
// (qdsl profile --calibrate: a few cover architectures, about a minute).

#include "Options.h"
#include "ProfileMeasurement.h"
#include "Session.h"

#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/ProfileLookup.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

/// The name a calibration records of its base, as Profiler::calibrate
/// writes it.
std::string baseName(const cost::DeviceProfile &base) {
  return sys::path::filename(base.file).str();
}

/// An earlier calibration of `base` in `path`, when there is one: true
/// with it in `found`; false when there is none or it is of another base
/// (`other` then names that base).
bool earlierCalibration(const std::string &path, const cost::DeviceProfile &base,
                        cost::DeviceProfile &found, std::string &other) {
  if (!sys::fs::exists(path))
    return false;
  std::string error;
  if (!cost::readProfile(path, found, error)) {
    other = error;
    return false;
  }
  if (!found.calibration || found.calibration->base != baseName(base) ||
      found.calibration->baseSource != base.source) {
    other = "'" + path + "' calibrates " +
            (found.calibration ? "'" + found.calibration->base + "'" : std::string("nothing"));
    return false;
  }
  return true;
}

/// DEVICE.json in a directory: a device name (a profile's own field, or a
/// constraint's string) is no path.
std::string profileFileName(StringRef device) {
  std::string name;
  for (char ch : device)
    name += isAlnum(ch) || ch == '-' || ch == '_' || ch == '.' ? ch : '_';
  if (name.empty() || name.front() == '.')
    name.insert(0, "device");
  return name + ".json";
}

} // namespace

int calibrateSearchProfiles(mlir::ModuleOp module, mlir::func::FuncOp space,
                            const std::string &directory,
                            std::vector<cost::SearchConstraint> &constraints,
                            std::vector<LimitProfile> &bases) {
  bases.assign(constraints.size(), LimitProfile());
  for (auto [c, basis] : llvm::zip(constraints, bases)) {
    if (!c.profile.calibrated) {
      basis.basis = "published figures";
      continue;
    }
    std::vector<std::string> differences = differencesFromThisMachine(c.profile);
    const codegen::Target *target = codegen::lookupTarget(c.profile.device.target);
    basis.basis = !target || !target->runnableHere ? "measured on the device"
                  : differences.empty()            ? "measured on this machine"
                                                   : "measured on another machine";
    if (differences.empty())
      continue;
    std::string why = join(differences, "; ");
    if (noCalibrate || c.profile.calibration) {
      errs() << "qdsl: warning: the profile of '" << c.device << "' (" << c.profile.file
             << ") was measured on a machine that differs from this one (" << why << "): "
             << (noCalibrate
                     ? "searching with it as it is (--no-calibrate)"
                     : "it is itself a calibration (of '" + c.profile.calibration->base +
                           "'), which qdsl cannot calibrate again: give its base to --device "
                           "and the search calibrates that")
             << "\n";
      continue;
    }
    std::string output = directory + "/profiles/" + profileFileName(c.device);
    cost::DeviceProfile calibrated;
    std::string other;
    bool reused = false;
    // A resumed search keeps the calibration its supernet was compiled
    // with; a derivation from an earlier search, that search's.
    if (searchResume || !fromSearch.empty()) {
      std::string earlier =
          (searchResume ? directory : fromSearch.getValue()) + "/profiles/" +
          profileFileName(c.device);
      reused = earlierCalibration(earlier, c.profile, calibrated, other);
      if (!reused && searchResume && sys::fs::exists(earlier))
        return reportError("--resume: " + other + ", not the --device profile of '" +
                           c.device + "' given now (" + c.profile.file +
                           "): resume with the profile the search started with");
      if (reused)
        outs() << "the profile of '" << c.device << "': the calibration for this machine in "
               << earlier << " (of " << c.profile.file << ")\n";
    }
    if (!reused) {
      outs() << "the profile of '" << c.device << "' (" << c.profile.file
             << ") was measured on another machine (" << why << "): calibrating it on '"
             << space.getSymName() << "' into " << output
             << " (about a minute; --no-calibrate searches with it as it is)\n";
      outs().flush();
      ProfileMeasurement how;
      how.settings.threads = profileThreads;
      how.settings.repeat = profileRepeat;
      how.settings.rounds = profileRounds;
      how.settings.sourceName = inputFile;
      how.settings.batchesText = "1";
      how.settings.outputName = output;
      how.settings.kernelCache = kernelCacheDirectory();
      if (std::error_code ec = sys::fs::create_directories(directory + "/profiles"))
        return reportError("cannot create '" + directory + "/profiles': " + ec.message());
      if (measureProfile(module, space, *target, &c.profile, how, calibrated))
        return reportError("the calibration of '" + c.profile.file + "' for '" + c.device +
                           "' failed (above); --no-calibrate searches with it as it is");
      if (writeOutputFile(output, cost::formatProfile(calibrated)))
        return 1;
      calibrated.file = output;
    }
    basis.basis = "measured on this machine";
    basis.calibratedFrom = c.profile.file;
    calibrated.useMeasured = c.profile.useMeasured;
    c.profile = std::move(calibrated);
  }
  return 0;
}

} // namespace qdsl::tool
