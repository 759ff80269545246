//===- Sema.h - semantic checks of a .qd program ----------------*- C++ -*-===//
//
// Checks everything that does not depend on tensor shapes, for every block
// and model, used or not: names resolve, calls match their callee's
// parameters, types agree, blocks return a tensor and do not recurse. Shapes
// are checked when MLIRGen instantiates a model, by the dialect's own rules.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_SEMA_H
#define QDSL_DSL_SEMA_H

#include "dsl/AST.h"
#include "dsl/Diagnostics.h"
#include "dsl/Primitives.h"

#include "llvm/ADT/StringMap.h"

namespace qdsl::dsl {

/// A main file and every file it imports, with one namespace for blocks and
/// one for models.
struct Program {
  std::vector<std::unique_ptr<SourceFile>> files; // files[0] is the main file
  llvm::StringMap<const BlockDecl *> blocks;
  llvm::StringMap<const ModelDecl *> models;

  SourceFile &mainFile() { return *files.front(); }
  const SourceFile &mainFile() const { return *files.front(); }
};

/// A block or a primitive, seen through its parameter list.
struct CalleeParam {
  std::string name;
  ValueType type;
  bool hasDefault;
  const Expr *defaultExpr; // blocks only; primitives compute theirs
};

struct Callee {
  std::string name;
  const BlockDecl *block = nullptr;
  const Primitive *primitive = nullptr;
  std::vector<CalleeParam> params;

  unsigned tensorParamCount() const;
  /// Index of the first tensor parameter: the one a layer fills with the
  /// running activation. -1 when there is none.
  int firstTensorParam() const;
};

std::optional<Callee> resolveCallee(const Program &program,
                                    llvm::StringRef name);

/// The arguments of a call, by parameter.
struct BoundCall {
  std::vector<const Expr *> args; // null where the default applies
  const Expr *nameArg = nullptr;  // the `name = "..."` argument, if any
  int implicitParam = -1;         // filled by the running tensor of a layer
};

/// Matches a call's arguments to the callee's parameters. With
/// `implicitTensor`, the first tensor parameter takes the layer's input and
/// cannot be passed. Reports problems to `diags` when given.
bool bindCall(const Callee &callee, const CallExpr &call, bool implicitTensor,
              BoundCall &bound, Diagnostics *diags);

/// Runs every check; false when any error was reported. Fills in the type
/// of model parameters declared without one, from their default value.
bool checkProgram(Program &program, Diagnostics &diags);

} // namespace qdsl::dsl

#endif // QDSL_DSL_SEMA_H
