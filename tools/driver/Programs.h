//===- Programs.h - building and running generated projects -----*- C++ -*-===//
//
// The qdsl tool's own processes: CMake building a project qdsl wrote, and
// the programs in it (predict, train, search), alone or under an MPI
// launcher. Failures are printed as the tool prints its errors.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_DRIVER_PROGRAMS_H
#define QDSL_TOOLS_DRIVER_PROGRAMS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

#include <string>

namespace qdsl::driver {

/// Prints `message` as an error of the qdsl tool; returns the exit code 1.
int reportError(const llvm::Twine &message);

/// Configures (once) and builds the generated project in `directory` with
/// `jobs` jobs (0: ninja's default); with `logFile`, CMake's and the
/// compilers' output goes there. Returns 0 or reports an error and 1.
int buildProject(llvm::StringRef directory, unsigned jobs, llvm::StringRef logFile);

/// Runs `program` with `args`, its output to the terminal or appended to
/// `log`; returns its exit status, having said why when it is not 0.
int runProgram(llvm::StringRef program, llvm::ArrayRef<std::string> args,
               llvm::StringRef log = {});

/// Runs `program` under `launcher` ("mpirun -np 4": a command and its
/// arguments, split at spaces), or alone when `launcher` is empty.
int runLaunched(llvm::StringRef launcher, llvm::StringRef program,
                llvm::ArrayRef<std::string> args);

} // namespace qdsl::driver

#endif // QDSL_TOOLS_DRIVER_PROGRAMS_H
