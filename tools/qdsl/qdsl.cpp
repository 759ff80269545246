//===- qdsl.cpp - the qdsl compiler driver --------------------------------===//
//
//   qdsl compile FILE [--emit=ast|mlir|kernels] [--target=T] [-o OUT]
//   qdsl compile FILE --target=T -o DIR       a CMake project (Halide kernels,
//                                              model library, predict tool)
//   qdsl build DIR                            build such a project
//   qdsl stats FILE [--batch N] [--json]      parameters, MACs, memory
//   qdsl run FILE --input X.npy -o Y.npy      the reference executor
//   qdsl weights init|import|export FILE ...  weights files
//
//===----------------------------------------------------------------------===//

#include "Options.h"
#include "Search.h"
#include "Session.h"

#include "codegen/latency/HostMachine.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <memory>

using namespace llvm;

namespace qdsl::tool {

namespace {

/// A flag given with an empty value, or with one outside its range, is an
/// error naming the flag: never the same as not giving it.
int checkFlags() {
  for (const cl::opt<std::string> *text :
       {&target, &cudaArch, &autoschedule, &choices, &kernelCache, &outputFile, &deviceProfile,
        &profileWork, &profileBatches, &weightsFile, &npyInput, &labelsFile, &weightsFormat,
        &memoryLimit, &latencyLimit, &searchTarget, &latencyLoss, &dataDirectory, &searchDataset,
        &deriveRule, &exportFormat,
        &fromSearch, &gateGradients})
    if (text->getNumOccurrences() > 0 && text->empty())
      return reportError("-" + Twine(text->ArgStr.size() > 1 ? "-" : "") + text->ArgStr +
                         " needs a value (" + text->HelpStr + ")");
  // (cl::list overloads unary &: std::addressof.)
  for (const cl::list<std::string> *list :
       {std::addressof(modelNames), std::addressof(defines), std::addressof(includeDirs)})
    for (const std::string &value : *list)
      if (value.empty())
        return reportError("-" + Twine(list->ArgStr.size() > 1 ? "-" : "") + list->ArgStr +
                           " needs a value (" + list->HelpStr + ")");
  // Counts with the largest value that still means something.
  for (auto [count, most] :
       {std::pair<const cl::opt<unsigned> *, unsigned>{&profileArchitectures, 10000},
        {&profileRepeat, 10000},
        {&profileRounds, 1000},
        {&profileThreads, 1024},
        {&profileRefine, 1000},
        {&jobs, 1024}})
    if (*count > most)
      return reportError("--" + count->ArgStr + " must be at most " + Twine(most) + ", got " +
                         Twine(count->getValue()));
  if (randomStd.getNumOccurrences() && !(randomStd > 0 && randomStd <= 1e6))
    return reportError("--random-std takes a number above 0 and at most 1e6, got " +
                       Twine(shownNumber(randomStd)));
  if (!std::isfinite(labelSmoothing))
    return reportError("--label-smoothing must be in [0, 1), got " +
                       Twine(shownNumber(labelSmoothing)));
  if (!autoschedule.empty() && autoschedule != "Mullapudi2016" && autoschedule != "Li2018" &&
      autoschedule != "Adams2019")
    return reportError("unknown --autoschedule '" + autoschedule +
                       "'; expected Mullapudi2016, Li2018 or Adams2019");
  if (kernelCache != "none" && llvm::sys::fs::exists(kernelCache.getValue()) &&
      !llvm::sys::fs::is_directory(kernelCache.getValue()))
    return reportError("--kernel-cache '" + kernelCache + "' is a file; expected a directory "
                       "or 'none'");
  // Flags a command would otherwise ignore.
  if (cudaArch.getNumOccurrences() && target != "cuda")
    return reportError(target.empty() ? std::string("--cuda-arch is for --target=cuda")
                                      : "--cuda-arch is for --target=cuda; target " +
                                            target.getValue() +
                                            " has no GPU architectures to pick");
  if (runCommand && !trainStep)
    for (const cl::Option *flag :
         std::initializer_list<const cl::Option *>{&labelsFile, &labelSmoothing})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr + " goes with qdsl run --train");
  if (weightsCommand && weightsAction == "init" && weightsFormat.getNumOccurrences())
    return reportError("--format goes with weights import and export");
  return -1;
}

} // namespace

} // namespace qdsl::tool

int main(int argc, char **argv) {
  using namespace qdsl::tool;
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter([](raw_ostream &os) {
    os << "qdsl " << qdsl::cost::qdslVersion() << " (MLIR " << LLVM_VERSION_STRING << ")\n";
  });
  cl::HideUnrelatedOptions(category);
  // "--flag=" with nothing after it would read as the flag's default (0 for
  // a number): an error instead.
  for (int i = 1; i < argc; ++i)
    if (StringRef arg(argv[i]); arg.size() > 1 && arg.starts_with("-") && arg.ends_with("="))
      return reportError(arg.drop_back() + " needs a value after '='");
  cl::ParseCommandLineOptions(
      argc, argv,
      "qdsl: a compiler for quadratic neural networks\n\n"
      "  qdsl compile FILE.qd [--emit=ast|mlir|kernels] [-o OUT]\n"
      "  qdsl compile FILE.qd --target=x86-64-avx2|arm64-a76|opencl -o DIR\n"
      "  qdsl compile FILE.qd --train [--memory-policy=P] [--label-smoothing=E]\n"
      "  qdsl compile FILE.qd --train [--target=x86-64-avx2] -o DIR   (a train program)\n"
      "  qdsl build DIR\n"
      "  qdsl stats FILE.qd [--batch N] [--json] [--train]\n"
      "  qdsl run FILE.qd --input X.npy [--weights W.safetensors] -o Y.npy\n"
      "  qdsl run FILE.qd --train --input X.npy --labels L.npy -o G.safetensors\n"
      "  qdsl weights init FILE.qd -o W.safetensors [--seed N]\n"
      "  qdsl weights import FILE.qd PYTORCH.safetensors -o W.safetensors\n"
      "  qdsl weights export FILE.qd W.safetensors -o PYTORCH.safetensors\n"
      "  qdsl export FILE.qd --format onnx [--weights W.safetensors] -o MODEL.onnx\n"
      "  qdsl export FILE.qd --format pytorch -o MODEL.py\n"
      "  qdsl profile SPACE.qd --target=x86-64-avx2 -o PROFILE.json\n"
      "  qdsl profile SPACE.qd --calibrate BASE.json -o PROFILE.json [--threads N]\n"
      "  qdsl machine [--threads N] [--json]\n"
      "  qdsl estimate FILE.qd --device PROFILE.json [--batch N] [--json] [--choices P]\n"
      "  qdsl compile SPACE.qd --emit=cost-model --device PROFILE.json [-o OUT.cpp]\n"
      "  qdsl compile SPACE.qd --emit=qd --choices P [-o MODEL.qd]\n"
      "  qdsl compile SPACE.qd --search --target=T -o DIR [--device P.json] [--latency-limit 2ms]\n"
      "  qdsl search SPACE.qd -o DIR [--device P.json] [--latency-limit 2ms] [--epochs N]\n"
      "              [--retrain-epochs N] [--seed N] [--threads N]\n");
  if (int status = checkFlags(); status >= 0)
    return status;
  const std::pair<cl::SubCommand *, int (*)()> commands[] = {
      {&compileCommand, runCompile}, {&statsCommand, runStats},
      {&buildCommand, runBuild},     {&runCommand, runReference},
      {&weightsCommand, runWeights}, {&estimateCommand, runEstimate},
      {&profileCommand, runProfile}, {&machineCommand, runMachine},
      {&searchCommand, runSearch},   {&exportCommand, runExport}};
  for (const auto &[command, run] : commands)
    if (*command)
      return run();
  errs() << "qdsl: expected a command: compile, build, stats, run, weights, "
            "profile, estimate, search, export or machine "
            "(see qdsl --help)\n";
  return 1;
}
