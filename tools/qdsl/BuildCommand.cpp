//===- BuildCommand.cpp - qdsl build --------------------------------------===//
//
// Configures (once) and builds a project written by `qdsl compile --target`
// with CMake and Ninja in DIR/build; the tools land in DIR/build.

#include "Options.h"
#include "Session.h"

#include "codegen/ProjectWriter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

using namespace llvm;

namespace qdsl::tool {

int buildProject(StringRef directory, unsigned jobCount, StringRef logFile) {
  SmallString<256> dir(directory);
  sys::fs::make_absolute(dir);
  if (!codegen::isProject(std::string(dir)))
    return reportError("'" + directory +
                       "' is not a project written by qdsl compile --target (no "
                       "generated CMakeLists.txt)");
  ErrorOr<std::string> cmake = sys::findProgramByName("cmake");
  if (!cmake)
    return reportError("cmake is not installed (run scripts/setup.sh)");
  SmallString<256> build(dir);
  sys::path::append(build, "build");
  SmallString<256> ninjaFile(build);
  sys::path::append(ninjaFile, "build.ninja");

  std::optional<StringRef> log;
  if (!logFile.empty())
    log = logFile;
  auto execute = [&](ArrayRef<StringRef> args) {
    std::string message;
    int status = sys::ExecuteAndWait(*cmake, args, std::nullopt, {std::nullopt, log, log}, 0,
                                     0, &message);
    if (status != 0 && !message.empty())
      errs() << "qdsl: " << message << "\n";
    return status;
  };
  std::string where = logFile.empty() ? std::string() : " (see " + logFile.str() + ")";
  if (!sys::fs::exists(ninjaFile)) {
    if (int status = execute({*cmake, "-S", dir, "-B", build, "-G", "Ninja",
                              "-DCMAKE_BUILD_TYPE=Release"}))
      return reportError("configuring '" + directory + "' failed (cmake exit " +
                         Twine(status) + ")" + where);
  }
  std::string jobArg = std::to_string(jobCount);
  SmallVector<StringRef> args = {*cmake, "--build", build};
  if (jobCount > 0) {
    args.push_back("-j");
    args.push_back(jobArg);
  }
  if (int status = execute(args))
    return reportError("building '" + directory + "' failed (exit " + Twine(status) + ")" +
                       where);
  return 0;
}

int runBuild() {
  if (int status = buildProject(buildDirectory, jobs, ""))
    return status;
  SmallString<256> build(buildDirectory);
  sys::fs::make_absolute(build);
  sys::path::append(build, "build");
  outs() << "built " << build << "\n";
  return 0;
}

} // namespace qdsl::tool
