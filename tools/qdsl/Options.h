//===- Options.h - the command line of qdsl ---------------------*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_OPTIONS_H
#define QDSL_TOOLS_QDSL_OPTIONS_H

#include "llvm/Support/CommandLine.h"

#include <string>

namespace qdsl::tool {

extern llvm::cl::SubCommand compileCommand, statsCommand, buildCommand,
    runCommand, weightsCommand, estimateCommand, profileCommand;

extern llvm::cl::opt<std::string> inputFile;
extern llvm::cl::opt<std::string> outputFile;
extern llvm::cl::list<std::string> modelNames;
extern llvm::cl::list<std::string> defines;
extern llvm::cl::list<std::string> includeDirs;
extern llvm::cl::opt<bool> splitInputFile;
extern llvm::cl::opt<bool> verifyDiagnostics;

enum class Emit { AST, MLIR, Kernels, Project, CostModel };
extern llvm::cl::opt<Emit> emit;
extern llvm::cl::opt<std::string> target;
extern llvm::cl::opt<std::string> autoschedule;
extern llvm::cl::opt<std::string> kernelCache;
extern llvm::cl::opt<std::string> choices;
extern llvm::cl::opt<bool> debugInfo;
extern llvm::cl::opt<bool> expandQDWConv;

extern llvm::cl::opt<int64_t> batch;
extern llvm::cl::opt<bool> json;
extern llvm::cl::opt<std::string> deviceProfile;
extern llvm::cl::opt<bool> fittedOnly;
extern llvm::cl::opt<std::string> profileWork;
extern llvm::cl::opt<unsigned> profileArchitectures;
extern llvm::cl::opt<std::string> profileBatches;
extern llvm::cl::opt<unsigned> profileRepeat;
extern llvm::cl::opt<unsigned> profileThreads;
extern llvm::cl::opt<unsigned> profileRounds;
extern llvm::cl::opt<unsigned> profileRefine;
extern llvm::cl::opt<bool> train;
extern llvm::cl::opt<std::string> memoryPolicy;

extern llvm::cl::opt<std::string> buildDirectory;
extern llvm::cl::opt<unsigned> jobs;

extern llvm::cl::opt<std::string> weightsFile;
extern llvm::cl::opt<uint64_t> seed;
extern llvm::cl::opt<std::string> npyInput;
extern llvm::cl::opt<std::string> labelsFile;
extern llvm::cl::opt<bool> trainStep;
extern llvm::cl::opt<double> labelSmoothing;

extern llvm::cl::opt<std::string> weightsAction;
extern llvm::cl::opt<std::string> weightsSource;
extern llvm::cl::opt<std::string> weightsFormat;
extern llvm::cl::opt<double> randomStd;

int runCompile();
int runStats();
int runBuild();
int runReference();
int runWeights();
int runEstimate();
/// Configures (once) and builds the generated project in `directory` with
/// `jobs` jobs (0: ninja's default); with `logFile`, CMake's and the
/// compilers' output goes there. Returns 0 or reports an error and 1.
int buildProject(llvm::StringRef directory, unsigned jobs, llvm::StringRef logFile);
int runProfile();

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_OPTIONS_H
