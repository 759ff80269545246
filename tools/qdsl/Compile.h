//===- Compile.h - a model's project, for qdsl compile and search -*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_COMPILE_H
#define QDSL_TOOLS_QDSL_COMPILE_H

#include "Session.h"

#include "codegen/Targets.h"
#include "codegen/latency/LatencyLimits.h"
#include "passes/MemoryPolicy.h"

#include <optional>
#include <string>
#include <vector>

namespace qdsl::tool {

/// What a project is compiled with besides its model: qdsl compile's flags,
/// or what qdsl search asks for its supernet and its derived model.
struct ProjectRequest {
  const codegen::Target *target = nullptr;
  /// A training program; a supernet with its search program.
  bool train = false, search = false;
  quadra::MemoryPolicy memoryPolicy = quadra::kDefaultMemoryPolicy;
  double labelSmoothing = 0;
  bool expandQDWConv = false;
  std::string directory;
  /// The model file as the project names it.
  std::string source;
  std::string autoscheduler;
  std::string cudaArchitectures = codegen::kDefaultCudaArchitectures;
  /// A search's limits: these, or those of the space under --latency-limit
  /// and --only with `given` (the --device profile; empty `file`: none).
  std::optional<std::vector<cost::SearchConstraint>> constraints;
  cost::DeviceProfile given;
  /// Whether to say where the project went and how to build it.
  bool announce = true;
};

/// Writes the CMake project of `model` (of `module`, as generated) into
/// `request.directory`; 0, or the exit code having said why not.
int writeModelProject(Session &session, mlir::ModuleOp module, mlir::func::FuncOp model,
                      const ProjectRequest &request);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_COMPILE_H
