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

#include "codegen/ProjectWriter.h"
#include "codegen/latency/Calibrate.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/HostMachine.h"
#include "codegen/latency/ProfileLookup.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <map>

using namespace llvm;

namespace qdsl::tool {

namespace {

/// Whether a calibration made earlier still describes this machine: the
/// same CPU, CPU count, generators and Halide, and the search's threads
/// (speeds drift within minutes; the CPU does not).
bool madeHere(const cost::DeviceProfile &calibrated) {
  if (!calibrated.machine || calibrated.machine->threads != static_cast<int>(profileThreads))
    return false;
  cost::MachineRecord here =
      cost::describeThisMachine(calibrated.machine->threads, codegen::generatorsDigest(), "");
  return cost::machineDifferences(*calibrated.machine, here, /*tolerance=*/1e9).empty();
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

std::string profileBasis(const cost::DeviceProfile &profile, unsigned threads) {
  if (!profile.calibrated)
    return "published figures";
  const codegen::Target *target = codegen::lookupTarget(profile.device.target);
  if (!target || target->name != searchTarget)
    return "measured on the device";
  return differencesFromThisMachine(profile, threads).empty() ? "measured on this machine"
                                                              : "measured on another machine";
}

int calibrateSearchProfiles(mlir::ModuleOp module, mlir::func::FuncOp space,
                            const std::string &directory, const std::string &shownDirectory,
                            std::vector<cost::SearchConstraint> &constraints,
                            std::vector<LimitProfile> &bases) {
  bases.assign(constraints.size(), LimitProfile());
  // A device limited twice is calibrated once.
  std::map<std::string, std::pair<cost::DeviceProfile, LimitProfile>> done;
  for (auto [c, basis] : llvm::zip(constraints, bases)) {
    const std::string file = "/profiles/" + profileFileName(c.device);
    const std::string output = directory + file, shown = shownDirectory + file;
    if (auto it = done.find(c.device); it != done.end()) {
      std::tie(c.profile, basis) = it->second;
      continue;
    }
    const cost::DeviceProfile given = c.profile;
    // A resumed search keeps what its supernet's tables were compiled from:
    // the calibration it made, or the profile as it was.
    if (searchResume) {
      if (!sys::fs::exists(output)) {
        basis.basis = profileBasis(c.profile, profileThreads);
        continue;
      }
      cost::DeviceProfile earlier;
      std::string error;
      if (!cost::readProfile(output, earlier, error))
        return reportError("--resume: " + error);
      if (noCalibrate || !cost::isCalibrationOf(earlier, c.profile))
        return reportError(
            "--resume: the stopped search was calibrated from '" +
            (earlier.calibration ? earlier.calibration->base : std::string("?")) +
            "' (" + output + ")" +
            (noCalibrate ? "; drop --no-calibrate" : ", not from the --device profile of '" +
                                                         c.device + "' given now (" +
                                                         c.profile.file + ")") +
            ": resume with the settings the search started with");
      outs() << "the profile of '" << c.device << "': the stopped search's calibration "
             << output << "\n";
      basis = {"measured on this machine", given.file};
      earlier.useMeasured = given.useMeasured;
      c.profile = std::move(earlier);
      done[c.device] = {c.profile, basis};
      continue;
    }
    basis.basis = profileBasis(c.profile, profileThreads);
    if (basis.basis != "measured on another machine")
      continue;
    std::vector<std::string> differences =
        differencesFromThisMachine(c.profile, profileThreads);
    std::string why = join(differences, "; ");
    std::string elsewhere = c.profile.machine
                                ? "was measured on a machine that differs from this one (" +
                                      why + ")"
                                : "does not say which machine it was measured on";
    if (noCalibrate || c.profile.calibration) {
      errs() << "qdsl: warning: the profile of '" << c.device << "' (" << c.profile.file << ") "
             << elsewhere << ": "
             << (noCalibrate
                     ? "searching with it as it is (--no-calibrate)"
                     : "it is itself a calibration (of '" + c.profile.calibration->base +
                           "'), which qdsl cannot calibrate again: give its base to --device "
                           "and the search calibrates that")
             << "\n";
      continue;
    }
    cost::DeviceProfile calibrated;
    // A derivation from an earlier search takes that search's calibration
    // when it is of the same base and was made on this machine.
    std::string earlier = fromSearch.empty() ? "" : fromSearch + file;
    std::string error;
    if (!earlier.empty() && sys::fs::exists(earlier) &&
        cost::readProfile(earlier, calibrated, error) && cost::isCalibrationOf(calibrated, c.profile) &&
        madeHere(calibrated)) {
      outs() << "the profile of '" << c.device << "': the calibration of the search it derives "
             << "from, " << earlier << " (of " << c.profile.file << "), copied to " << shown
             << "\n";
    } else {
      outs() << "the profile of '" << c.device << "' (" << c.profile.file << ") " << elsewhere
             << ": calibrating it on '" << space.getSymName() << "' into " << shown
             << " (about a minute; --no-calibrate searches with it as it is)\n";
      outs().flush();
      const codegen::Target *target = codegen::lookupTarget(c.profile.device.target);
      ProfileMeasurement how;
      how.settings.threads = profileThreads;
      how.settings.repeat = profileRepeat;
      how.settings.rounds = profileRounds;
      how.settings.sourceName = inputFile;
      how.settings.batchesText = "1";
      how.settings.outputName = shown;
      how.settings.kernelCache = kernelCacheDirectory();
      if (measureProfile(module, space, *target, &c.profile, how, calibrated))
        return reportError("the calibration of '" + c.profile.file + "' for '" + c.device +
                           "' failed (above); --no-calibrate searches with it as it is");
    }
    if (std::error_code ec = sys::fs::create_directories(directory + "/profiles"))
      return reportError("cannot create '" + directory + "/profiles': " + ec.message());
    if (writeOutputFile(output, cost::formatProfile(calibrated)))
      return 1;
    calibrated.file = shown;
    calibrated.useMeasured = given.useMeasured;
    basis = {"measured on this machine", given.file};
    c.profile = std::move(calibrated);
    done[c.device] = {c.profile, basis};
  }
  return 0;
}

} // namespace qdsl::tool
