//===- ProfileCommand.cpp - qdsl profile and qdsl machine -----------------===//
//
// `qdsl profile SPACE -o P.json` measures this machine into a device
// profile, or with --calibrate carries one measured elsewhere over to it
// (tools/driver/Profiler.h does the work); `qdsl machine` prints what a
// profile records of this machine.

#include "Options.h"
#include "ProfileMeasurement.h"
#include "Session.h"

#include "codegen/ProjectWriter.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/HostMachine.h"
#include "codegen/latency/ProfileLookup.h"
#include "tools/driver/Profiler.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <thread>

using namespace llvm;

namespace qdsl::tool {

int runMachine() {
  if (unsigned cpus = std::thread::hardware_concurrency();
      profileThreads < 1 || (cpus && profileThreads > cpus))
    return reportError("--threads must be from 1 to the " + Twine(cpus) +
                       " CPUs of this machine");
  // The FMA peak is measured at the target's vector width.
  const std::string name = target.empty() ? codegen::kDefaultTarget : target.getValue();
  const codegen::Target *t = codegen::lookupTarget(name);
  if (!t)
    return reportError("--target must be a target this machine runs (x86-64-avx2, "
                       "x86-64-avx512, opencl), got '" + name + "'");
  if (std::string why = codegen::whyNotTimedHere(*t); !why.empty())
    return reportError(why);
  cost::MachineRecord m = cost::describeThisMachine(
      static_cast<int>(profileThreads), codegen::generatorsDigest(), "", t->vectorFloats);
  if (json) {
    outs() << formatv("{0:2}", cost::machineToJSON(m)) << "\n";
    return 0;
  }
  outs() << formatv("{0}, {1} CPUs\n"
                    "on {2} threads: FMA peak {3:f1} GFLOP/s, streaming bandwidth {4:f1} GB/s\n"
                    "qdsl {5}, kernel generators {6}\n",
                    m.cpuModel, m.logicalCpus, m.threads, m.fmaPeakGflops, m.bandwidthGBs,
                    m.qdslVersion, m.generators);
  return 0;
}

namespace {

/// Everything a profile's run could fail on late, checked first: the base
/// of a calibration (read into `base`), the target (`t`), -o, the threads,
/// repeats and batches (`batches`). 0, or the exit code after the error.
int checkProfileFlags(cost::DeviceProfile &base, const codegen::Target *&t,
                      std::vector<int64_t> &batches) {
  bool calibrating = !calibrateBase.empty();
  if (calibrating) {
    std::string error;
    // A file, or the name of a shipped profile (or one in $QDSL_PROFILE_PATH).
    bool found = sys::fs::exists(calibrateBase) || StringRef(calibrateBase).ends_with(".json")
                     ? cost::readProfile(calibrateBase, base, error)
                     : cost::findDeviceProfile(calibrateBase, base, error);
    if (!found)
      return reportError("--calibrate: " + error);
    if (!base.calibrated || base.measurements.empty())
      return reportError("--calibrate '" + calibrateBase + "': the profile holds no "
                         "measurements (published figures only); calibrate a profile that "
                         "qdsl profile measured, or run qdsl profile without --calibrate");
    if (base.calibration)
      return reportError("--calibrate '" + calibrateBase + "' is itself calibrated (from '" +
                         base.calibration->base + "'); calibrate that full profile instead");
    if (!target.empty() && target != base.device.target)
      return reportError("--target " + target + " differs from the target of --calibrate '" +
                         calibrateBase + "' (" + base.device.target + ")");
  }
  if (calibrating && (profileArchitectures.getNumOccurrences() ||
                      profileRefine.getNumOccurrences() || seed.getNumOccurrences()))
    return reportError("--architectures, --refine and --seed choose what a full profile times; "
                       "--calibrate times the cover architectures (--calibrate-architectures)");
  if (!calibrating && calibrateArchitectures.getNumOccurrences())
    return reportError("--calibrate-architectures needs --calibrate BASE.json");
  if (calibrating && calibrateArchitectures < 1)
    return reportError("--calibrate-architectures must be at least 1");
  std::string name = calibrating ? base.device.target
                                 : target.empty() ? codegen::kDefaultTarget : target.getValue();
  t = codegen::lookupTarget(name);
  if (!t)
    return reportError("unknown target '" + name + "'; qdsl profile measures x86-64-avx2, "
                       "x86-64-avx512 or opencl kernels on this machine");
  if (std::string why = codegen::whyNotTimedHere(*t); !why.empty())
    return reportError(why + "; profile it on the device itself, or use a shipped "
                             "profile from profiles/");
  if (outputFile.empty() || outputFile == "-")
    return reportError("qdsl profile needs -o PROFILE.json");
  // What would fail at the end of a long run fails now.
  if (sys::fs::is_directory(outputFile))
    return reportError("-o '" + outputFile + "' is a directory; expected the profile's file");
  SmallString<256> parent(outputFile);
  sys::path::remove_filename(parent);
  if (!parent.empty() && !sys::fs::is_directory(parent))
    return reportError("-o '" + outputFile + "': the directory '" + parent + "' does not exist");
  if (unsigned cpus = std::thread::hardware_concurrency(); cpus && profileThreads > cpus)
    return reportError("--threads " + Twine(profileThreads.getValue()) + " is more than the " +
                       Twine(cpus) + " CPUs of this machine; the threads are pinned one per CPU");
  if (profileRepeat < 5 || profileRounds < 1)
    return reportError("--repeat must be at least 5 (each round keeps the median of its runs) "
                       "and --rounds at least 1");
  if (profileThreads < 1)
    return reportError("--threads must be at least 1");
  SmallVector<StringRef> parts;
  StringRef(profileBatches).split(parts, ',');
  for (StringRef part : parts) {
    int64_t b;
    if (part.trim().getAsInteger(10, b) || b < 1 || b > 4096)
      return reportError("--batches expects batch sizes from 1 to 4096 separated by commas, "
                         "got '" + profileBatches + "'");
    batches.push_back(b);
  }
  return 0;
}

} // namespace

int measureProfile(mlir::ModuleOp module, mlir::func::FuncOp space, const codegen::Target &target,
                   const cost::DeviceProfile *base, const ProfileMeasurement &how,
                   cost::DeviceProfile &profile) {
  SmallString<256> work(how.workDirectory);
  bool temporary = work.empty();
  if (temporary) {
    if (std::error_code ec = sys::fs::createUniqueDirectory("qdsl-profile", work))
      return reportError("cannot create a temporary directory: " + ec.message());
  } else if (std::error_code ec = sys::fs::create_directories(work)) {
    return reportError("cannot create '" + how.workDirectory + "': " + ec.message());
  }
  sys::fs::make_absolute(work);

  // Where the measurements are made: measured before the builds load the
  // machine.
  cost::MachineRecord machine =
      cost::describeThisMachine(static_cast<int>(how.settings.threads),
                                codegen::generatorsDigest(), "", target.vectorFloats);
  outs() << formatv("this machine: {0}, {1} CPUs; on {2} threads FMA peak {3:f0} GFLOP/s, "
                    "memory bandwidth {4:f1} GB/s\n",
                    machine.cpuModel, machine.logicalCpus, machine.threads, machine.fmaPeakGflops,
                    machine.bandwidthGBs);
  if (base) {
    if (base->machine)
      for (const std::string &d : cost::machineDifferences(*base->machine, machine))
        outs() << "  differs from where '" << base->file << "' was measured: " << d << "\n";
    else
      outs() << "  '" << base->file << "' does not say where it was measured (written "
             << "before qdsl 0.15)\n";
  }
  profile = cost::DeviceProfile();
  profile.device = driver::hostFigures(target, how.settings.threads);
  profile.calibrated = true;
  driver::Profiler profiler(module, space, target, std::string(work),
                            how.settings);
  bool ok = base ? profiler.calibrate(*base, how.calibrateArchitectures, profile)
                 : profiler.run(profile);
  if (!ok && !profiler.error().empty())
    reportError(profiler.error());
  machine.halideVersion = profiler.halideVersion();
  machine.roundSpread = std::round(profiler.roundSpread() * 1e4) / 1e4;
  profile.machine = machine;
  if (ok && machine.roundSpread >= 0)
    outs() << formatv("timing rounds: the median round {0:f1}% slower than the fastest\n",
                      machine.roundSpread * 100);
  if (ok && machine.roundSpread > cost::kBusyRoundSpread)
    errs() << formatv("qdsl: warning: the machine was busy while timing: the median round was "
                      "{0:f0}% slower than the fastest (3-5% when this machine class is "
                      "quiet), so the fastest rounds may be slow too and the profile high; "
                      "run it again when the machine is quiet\n",
                      machine.roundSpread * 100);
  if (temporary && ok)
    sys::fs::remove_directories(work);
  else if (!ok)
    errs() << "qdsl: the profiling projects are kept in " << work << "\n";
  return ok ? 0 : 1;
}

int runProfile() {
  cost::DeviceProfile base;
  const codegen::Target *t = nullptr;
  std::vector<int64_t> batches;
  if (int status = checkProfileFlags(base, t, batches))
    return status;
  bool calibrating = !calibrateBase.empty();
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  ProfileMeasurement how;
  how.workDirectory = profileWork;
  how.calibrateArchitectures = calibrateArchitectures;
  how.settings.batches = batches;
  how.settings.threads = profileThreads;
  how.settings.repeat = profileRepeat;
  how.settings.rounds = profileRounds;
  how.settings.architectures = profileArchitectures;
  how.settings.refine = profileRefine;
  how.settings.seed = seed;
  how.settings.sourceName = inputFile;
  how.settings.batchesText = profileBatches;
  how.settings.outputName = outputFile;
  how.settings.kernelCache = kernelCacheDirectory();
  cost::DeviceProfile profile;
  if (int status = measureProfile(*selected.module, selected.model, *t, calibrating ? &base : nullptr, how, profile))
    return status;
  if (int status = writeOutputFile(outputFile, cost::formatProfile(profile)))
    return status;
  outs() << "wrote " << outputFile << "\n";
  return 0;
}

} // namespace qdsl::tool
