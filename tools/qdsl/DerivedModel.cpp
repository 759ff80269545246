//===- DerivedModel.cpp - one architecture of a space as a model file -----===//
//
// What `qdsl compile SPACE --emit=qd --choices P` and `qdsl search` write:
// the architecture the choices pick, as a .qd model (dsl/DerivedModel.h),
// with a header that says where it came from.

#include "Options.h"
#include "Session.h"

#include "dialect/QuadraOps.h"
#include "dsl/DerivedModel.h"

using namespace llvm;

namespace qdsl::tool {

std::string choicesText(llvm::ArrayRef<int64_t> picks) {
  std::string text;
  for (int64_t pick : picks)
    text += (text.empty() ? "" : ",") + std::to_string(pick);
  return text;
}

mlir::FailureOr<std::string> deriveModel(Session &session, const std::string &sourceName,
                                         const std::vector<std::string> &header,
                                         const std::string &outputDirectory) {
  mlir::OwningOpRef<mlir::ModuleOp> unfixed = session.generate(/*applyChoices=*/false);
  mlir::func::FuncOp space = unfixed ? session.selectModel(*unfixed) : nullptr;
  if (!space)
    return mlir::failure();
  std::vector<quadra::ChoiceOp> choiceOps;
  space.walk<mlir::WalkOrder::PreOrder>([&](quadra::ChoiceOp choice) {
    choiceOps.push_back(choice);
    return mlir::WalkResult::skip();
  });
  if (choiceOps.empty()) {
    session.error() << "'" << space.getSymName() << "' has no choices: --emit=qd writes one "
                                                     "architecture of a search space";
    return mlir::failure();
  }
  if (session.options.choices.empty()) {
    session.error() << "--emit=qd writes one architecture of '" << space.getSymName()
                    << "': add --choices=P (one candidate index per choice, or seed:N)";
    return mlir::failure();
  }
  mlir::OwningOpRef<mlir::ModuleOp> fixed = session.generate(/*applyChoices=*/true);
  if (!fixed)
    return mlir::failure();
  auto model = fixed->lookupSymbol<mlir::func::FuncOp>(space.getSymName());
  auto picks = model ? model->getAttrOfType<mlir::DenseI64ArrayAttr>(quadra::kPicksAttr)
                     : mlir::DenseI64ArrayAttr();
  if (!picks || picks.size() != static_cast<int64_t>(choiceOps.size())) {
    space.emitError("'") << space.getSymName()
                         << "' has choices inside candidates: --emit=qd writes spaces whose "
                            "choices are layers";
    return mlir::failure();
  }
  const dsl::ModelDecl *decl = session.program.models.lookup(space.getSymName());
  std::vector<dsl::PickedChoice> picked;
  for (auto [choice, pick] : llvm::zip(choiceOps, picks.asArrayRef())) {
    auto position = choice.getLoc()->findInstanceOf<mlir::FileLineColLoc>();
    dsl::PickedChoice p;
    if (position)
      for (const auto &file : session.program.files)
        if (file->path == position.getFilename().getValue())
          p.layer = session.sourceMgr.FindLocForLineAndColumn(
              file->bufferId, position.getLine(), position.getColumn());
    p.candidate = mlir::cast<mlir::StringAttr>(choice.getCandidates()[pick]).str();
    picked.push_back(p);
  }
  dsl::DerivedModelOptions options;
  std::string flags = "--choices=" + choicesText(picks.asArrayRef());
  for (const auto &[name, value] : session.overrides)
    flags += " -D " + name + "=" + value;
  options.header = header;
  options.header.insert(options.header.begin(),
                        {"Architecture of space " + space.getSymName().str() + " (" + sourceName +
                             ") picked by " + flags + ".",
                         "Written by qdsl; `qdsl compile " + sourceName + " " + flags +
                             "` gives the same model."});
  options.overrides = session.overrides;
  options.outputDirectory = outputDirectory;
  std::string text, error;
  if (!decl || !dsl::writeDerivedModel(session.program, session.sourceMgr, *decl, picked,
                                       options, text, error)) {
    space.emitError(error.empty() ? "no declaration for the space" : error);
    return mlir::failure();
  }
  return text;
}

} // namespace qdsl::tool
