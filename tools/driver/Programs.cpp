//===- Programs.cpp - building and running generated projects -------------===//

#include "tools/driver/Programs.h"

#include "codegen/ProjectWriter.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <vector>

using namespace llvm;

namespace qdsl::driver {

int reportError(const Twine &message) {
  WithColor::error(errs(), "qdsl") << message << "\n";
  return 1;
}

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

int runProgram(StringRef program, ArrayRef<std::string> args, StringRef log) {
  SmallVector<StringRef> argv = {program};
  for (const std::string &a : args)
    argv.push_back(a);
  std::optional<StringRef> redirect;
  if (!log.empty())
    redirect = log;
  std::string message;
  int status = sys::ExecuteAndWait(program, argv, std::nullopt,
                                   {std::nullopt, redirect, redirect}, 0, 0, &message);
  if (status != 0)
    errs() << "qdsl: '" << program << "' failed (exit " << status << ")"
           << (message.empty() ? "" : ": " + message)
           << (log.empty() ? std::string() : "; see " + log.str()) << "\n";
  return status;
}

int runLaunched(StringRef launcher, StringRef program, ArrayRef<std::string> args) {
  if (launcher.empty())
    return runProgram(program, args);
  SmallVector<StringRef> words;
  launcher.split(words, ' ', -1, false);
  if (words.empty()) {
    errs() << "qdsl: --launcher is empty; expected a command such as \"mpirun -np 4\"\n";
    return 1;
  }
  std::vector<std::string> launched;
  for (size_t i = 1; i < words.size(); ++i)
    launched.push_back(words[i].str());
  launched.push_back(program.str());
  launched.insert(launched.end(), args.begin(), args.end());
  auto found = sys::findProgramByName(words.front());
  if (!found) {
    errs() << "qdsl: --launcher '" << launcher << "': cannot find '" << words.front()
           << "' on PATH\n";
    return 1;
  }
  return runProgram(*found, launched);
}

} // namespace qdsl::driver
