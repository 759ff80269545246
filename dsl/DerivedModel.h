//===- DerivedModel.h - one architecture of a space as a model file -*- C++ -*-===//
//
// `qdsl compile SPACE --choices=P --emit=qd` and `qdsl search` write the
// architecture a space's choices pick as a model file of its own: the
// space's parameters (with -D overrides), input, layers with each choice
// replaced by the candidate picked (identity picks dropped, equal
// neighbours merged into `x N`), its latency limits, the blocks of the
// space's file and its imports. The file is a normal model: every command
// accepts it, and `qdsl estimate` checks its limits.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_DERIVEDMODEL_H
#define QDSL_DSL_DERIVEDMODEL_H

#include "dsl/Sema.h"

#include "llvm/Support/SourceMgr.h"

#include <string>
#include <utility>
#include <vector>

namespace qdsl::dsl {

/// One choice of the space, as instantiated: the layer line it comes from
/// (a `x N` line makes N choices) and the candidate picked, as the choice
/// names it (e.g. `quadra(k = 3, expand = 2)`, or `identity`).
struct PickedChoice {
  llvm::SMLoc layer;
  std::string candidate;
};

struct DerivedModelOptions {
  /// Comment lines for the top of the file (without the leading `//`).
  std::vector<std::string> header;
  /// -D overrides of the space's parameters.
  std::vector<std::pair<std::string, std::string>> overrides;
  /// Where the file goes: imports of files next to the space are written
  /// relative to it.
  std::string outputDirectory;
};

/// The text of the model file; `picks` has one entry per choice of `space`
/// in order. False with `error` when a pick names no layer of the space.
bool writeDerivedModel(const Program &program, const llvm::SourceMgr &sourceMgr,
                       const ModelDecl &space, const std::vector<PickedChoice> &picks,
                       const DerivedModelOptions &options, std::string &text,
                       std::string &error);

} // namespace qdsl::dsl

#endif // QDSL_DSL_DERIVEDMODEL_H
