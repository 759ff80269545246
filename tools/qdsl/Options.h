//===- Options.h - the command line of qdsl ---------------------*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_OPTIONS_H
#define QDSL_TOOLS_QDSL_OPTIONS_H

#include "passes/MemoryPolicy.h"

#include "llvm/Support/CommandLine.h"

#include <string>

namespace qdsl::cost {
struct DeviceProfile;
} // namespace qdsl::cost

namespace qdsl::tool {

/// The category of every qdsl flag (--help lists no others).
extern llvm::cl::OptionCategory category;

extern llvm::cl::SubCommand compileCommand, statsCommand, buildCommand,
    runCommand, weightsCommand, estimateCommand, profileCommand, machineCommand, searchCommand,
    exportCommand;

// The front end: every command that reads a .qd file.
extern llvm::cl::opt<std::string> inputFile, outputFile;
extern llvm::cl::list<std::string> modelNames, defines, includeDirs;
extern llvm::cl::opt<bool> splitInputFile, verifyDiagnostics;

enum class Emit { AST, MLIR, Kernels, Project, CostModel, QD };
extern llvm::cl::opt<Emit> emit;
extern llvm::cl::opt<std::string> target, cudaArch, autoschedule, kernelCache, choices;
extern llvm::cl::opt<bool> debugInfo, expandQDWConv;

// Statistics, latency and profiling.
extern llvm::cl::opt<int64_t> batch;
extern llvm::cl::opt<bool> json, fittedOnly;
extern llvm::cl::opt<std::string> deviceProfile, profileWork, profileBatches, calibrateBase;
extern llvm::cl::opt<unsigned> profileArchitectures, profileRepeat, profileThreads,
    profileRounds, profileRefine, calibrateArchitectures;

// Training.
extern llvm::cl::opt<bool> train, search;
extern llvm::cl::opt<quadra::MemoryPolicy> memoryPolicy;

extern llvm::cl::opt<std::string> buildDirectory;
extern llvm::cl::opt<unsigned> jobs;

// run and weights.
extern llvm::cl::opt<std::string> weightsFile, npyInput, labelsFile;
extern llvm::cl::opt<uint64_t> seed;
extern llvm::cl::opt<bool> trainStep;
extern llvm::cl::opt<double> labelSmoothing, randomStd;
extern llvm::cl::opt<std::string> weightsAction, weightsSource, weightsFormat;
extern llvm::cl::opt<std::string> memoryLimit;

// export.
extern llvm::cl::opt<std::string> exportFormat;
extern llvm::cl::opt<bool> externalData;

// The commands, one file each.
int runCompile(), runStats(), runBuild(), runReference(), runWeights(), runEstimate(),
    runProfile(), runMachine(), runSearch(), runExport();

// Search.
extern llvm::cl::opt<std::string> searchTarget, latencyLoss, dataDirectory, searchDataset, deriveRule, fromSearch,
    launcher, gateGradients;
extern llvm::cl::opt<unsigned> searchEpochs, warmupEpochs, retrainEpochs, searchBatch, validation,
    trainSubset, testSubset;
extern llvm::cl::opt<bool> searchOverwrite, searchResume, latencyOnly, noCalibrate;
extern llvm::cl::opt<double> archLearningRate, clipNorm, layerScaleInit;
extern llvm::cl::opt<unsigned> archEvery, rankSamples, scoreExamples, baselineCount, retrainSeeds,
    evolveGenerations;
/// Reads the profile named by --device; false after reporting why not.
bool loadDeviceProfile(cost::DeviceProfile &profile);

/// The profile of `device`: `given` (the --device one; may be empty) if it
/// describes that device or is named after it, else found by name
/// (codegen/latency/ProfileLookup.h) into `found`. Null with `error`.
const cost::DeviceProfile *profileForDevice(const std::string &device,
                                            const cost::DeviceProfile &given,
                                            cost::DeviceProfile &found, std::string &error);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_OPTIONS_H
