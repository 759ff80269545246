//===- ProjectWriter.cpp - a self-contained CMake project per model -------===//
//
// Puts a project together (ProjectParts.h): the plan of the model's kernels,
// the files it ships, and its back end's model_kernels.cpp and
// CMakeLists.txt.

#include "codegen/ProjectWriter.h"

#include "codegen/ProjectParts.h"
#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen {

using namespace project;

bool isProject(const std::string &directory) {
  auto text = llvm::MemoryBuffer::getFile(directory + "/CMakeLists.txt");
  return text && (*text)->getBuffer().starts_with(kProjectMarker);
}

bool mayWriteProject(const std::string &directory, std::string &error) {
  if (!llvm::sys::fs::exists(directory))
    return true;
  if (!llvm::sys::fs::is_directory(directory)) {
    error = "'" + directory + "' is a file; a project needs a directory";
    return false;
  }
  std::error_code ec;
  llvm::sys::fs::directory_iterator first(directory, ec), end;
  if (ec) {
    error = "cannot read '" + directory + "': " + ec.message();
    return false;
  }
  if (first == end || isProject(directory))
    return true;
  error = "'" + directory + "' holds files that are not a project qdsl wrote (no CMakeLists.txt "
          "it generated); give a new or empty directory, or one of qdsl's projects to rewrite";
  return false;
}

std::string defaultKernelCache() {
  if (const char *dir = std::getenv("QDSL_KERNEL_CACHE"))
    return dir;
  llvm::SmallString<256> path;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    path = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(path, home, ".cache");
  else
    return "";
  llvm::sys::path::append(path, "qdsl", "kernels");
  return std::string(path);
}

FailureOr<std::vector<KernelListing>> listKernels(func::FuncOp function,
                                                  const Target &target) {
  FunctionPlan p;
  llvm::StringMap<std::string> byConfiguration;
  bool isTrainStep = function->hasAttr(kTrainStepOfAttr);
  if (failed(planFunction(function, isTrainStep, target, "", byConfiguration, p)))
    return failure();
  std::vector<KernelListing> listing;
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    KernelListing entry;
    entry.name = call.name;
    entry.family = call.family;
    entry.configuration = call.configuration();
    entry.library = p.library[i];
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation)
        entry.inputs += (entry.inputs.empty() ? "" : ", ") +
                        describeType(arg.activation.getType());
    for (Value result : call.results)
      entry.output += (entry.output.empty() ? "" : ", ") + describeType(result.getType());
    auto kernel = call.results[0].getDefiningOp<KernelOp>();
    FailureOr<uint64_t> macs = kernel.getMacs(1);
    entry.macs = succeeded(macs) ? *macs : 0;
    listing.push_back(entry);
  }
  return listing;
}

LogicalResult writeProject(func::FuncOp model, func::FuncOp trainStep,
                           const Target &target, const std::string &directory,
                           const ProjectOptions &options) {
  FailureOr<Plan> p = plan(model, trainStep, target, options.autoscheduler);
  if (failed(p))
    return failure();
  auto fail = [&](const std::string &message) {
    return model.emitError(message);
  };
  const bool cuda = target.backend == Backend::Cuda;
  if (cuda && !options.searchConstraints.empty())
    return fail("the cuda target does not run architecture searches: search with "
                "--target=x86-64-avx2");
  // The generators the kernels call, and every file they need.
  std::set<std::string> used, generatorFilesUsed;
  if (!cuda)
    for (const KernelCall *call : p->libraries) {
      used.insert(generatorSource(halideGenerator(*call)));
      for (std::string &file : generatorFiles(halideGenerator(*call)))
        generatorFilesUsed.insert(std::move(file));
    }
  std::vector<std::string> generators(used.begin(), used.end());
  std::set<std::string> leftOut =
      trainStep ? std::set<std::string>() : trainingOnlyFiles();
  if (options.searchConstraints.empty())
    leftOut.insert("codegen/project/search.cpp");
  if (target.crossProcessor.empty())
    leftOut.insert("codegen/project/qdsl_cross.cmake");
  // Each back end's model library: the Halide one, or the CUDA one
  // (codegen/cuda/, with the back-end-neutral parts of codegen/project/).
  for (const char *halideOnly : {"codegen/project/qdsl_model.cpp",
                                 "codegen/project/qdsl_model_internal.h",
                                 "codegen/project/qdsl_kernels.cmake",
                                 "codegen/project/qdsl_cross.cmake",
                                 "codegen/project/search.cpp"})
    if (cuda)
      leftOut.insert(halideOnly);
  auto belongs = [&](llvm::StringRef path) {
    if (path.starts_with(kGeneratorFolder))
      return generatorFilesUsed.count(path.str()) > 0;
    if (path.starts_with("codegen/cuda/"))
      return cuda;
    return !leftOut.count(path.str());
  };

  for (const char *sub : {"", cuda ? "/cuda" : "/generators", "/runtime/shipped"})
    if (std::error_code ec = llvm::sys::fs::create_directories(directory + sub))
      return fail("cannot create '" + directory + sub + "': " + ec.message());
  std::string error;
  // First a CMakeLists.txt that marks the folder as qdsl's and refuses to
  // build: a write that fails half-way (a full disk) leaves a project that
  // the next compile may write over and that no build mistakes for whole.
  // The real one is written last.
  if (!writeFile(directory + "/CMakeLists.txt",
                 std::string(kProjectMarker) + ", not finished: the compile that wrote it "
                 "stopped\nmessage(FATAL_ERROR \"this project was not written to the end: "
                 "run qdsl compile again\")\n",
                 error))
    return fail(error);
  for (const ShippedFile &file : shippedFiles())
    if (belongs(file.path) &&
        !writeFile(directory + "/" + projectPath(file.path), file.contents.str(), error))
      return fail(error);
  if (!options.searchConstraints.empty() &&
      !writeFile(directory + "/search_constraints.h", options.searchConstraints, error))
    return fail(error);
  if (cuda) {
    FailureOr<std::string> kernels = cudaKernelsSource(*p, target, options);
    if (failed(kernels))
      return failure();
    if (!writeFile(directory + "/model_kernels.cpp", *kernels, error) ||
        !writeFile(directory + "/CMakeLists.txt", cudaCmakeSource(*p, target, options), error))
      return fail(error);
    return success();
  }
  if (!writeFile(directory + "/model_kernels.cpp",
                 halideKernelsSource(*p, target, options), error) ||
      !writeFile(directory + "/CMakeLists.txt",
                 halideCmakeSource(*p, target, options, generators), error))
    return fail(error);
  return success();
}

} // namespace qdsl::codegen
