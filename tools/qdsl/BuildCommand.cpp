//===- BuildCommand.cpp - qdsl build --------------------------------------===//
//
// Configures (once) and builds a project written by `qdsl compile --target`
// with CMake and Ninja in DIR/build; the tools land in DIR/build.

#include "Options.h"
#include "Session.h"

#include "tools/driver/Programs.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

int runBuild() {
  if (int status = driver::buildProject(buildDirectory, jobs, ""))
    return status;
  SmallString<256> build(buildDirectory);
  sys::fs::make_absolute(build);
  sys::path::append(build, "build");
  outs() << "built " << build << "\n";
  return 0;
}

} // namespace qdsl::tool
