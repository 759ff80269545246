//===- DerivedModel.cpp - one architecture of a space as a model file -----===//

#include "dsl/DerivedModel.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace llvm;

namespace qdsl::dsl {

namespace {

/// `target` relative to the directory `from` (both made absolute).
std::string relativePath(StringRef target, StringRef from) {
  SmallString<256> to(target), base(from);
  sys::fs::make_absolute(to);
  sys::fs::make_absolute(base);
  sys::path::remove_dots(to, /*remove_dot_dot=*/true);
  sys::path::remove_dots(base, /*remove_dot_dot=*/true);
  SmallVector<StringRef> toParts(sys::path::begin(to), sys::path::end(to));
  SmallVector<StringRef> baseParts(sys::path::begin(base), sys::path::end(base));
  size_t common = 0;
  while (common < toParts.size() && common < baseParts.size() &&
         toParts[common] == baseParts[common])
    ++common;
  SmallString<256> result;
  for (size_t i = common; i < baseParts.size(); ++i)
    sys::path::append(result, "..");
  for (size_t i = common; i < toParts.size(); ++i)
    sys::path::append(result, toParts[i]);
  return std::string(result.str());
}

/// The import as the derived file must write it: a file next to the space
/// relative to the output, anything else (the standard library, files
/// found through -I) as written.
std::string importPath(const ImportDecl &import, StringRef spaceFile,
                       StringRef outputDirectory) {
  SmallString<256> beside(sys::path::parent_path(spaceFile));
  sys::path::append(beside, import.path);
  if (outputDirectory.empty() || !sys::fs::exists(beside))
    return import.path;
  return relativePath(beside, outputDirectory);
}

/// A string literal of the language.
std::string quoted(StringRef s) {
  std::string out;
  raw_string_ostream os(out);
  printString(s, os);
  return out;
}

/// The source text from `begin` through the character at `last`.
StringRef sourceText(SMLoc begin, SMLoc last) {
  return StringRef(begin.getPointer(), last.getPointer() - begin.getPointer() + 1);
}

} // namespace

bool writeDerivedModel(const Program &program, const SourceMgr &sourceMgr,
                       const ModelDecl &space, const std::vector<PickedChoice> &picks,
                       const DerivedModelOptions &options, std::string &text,
                       std::string &error) {
  (void)sourceMgr;
  const SourceFile &file = program.mainFile();
  std::map<const char *, std::vector<std::string>> byLayer;
  for (const PickedChoice &pick : picks) {
    bool found = false;
    for (const LayerDecl &layer : space.layers)
      found |= layer.loc.getPointer() == pick.layer.getPointer();
    if (!found) {
      error = "the pick '" + pick.candidate + "' belongs to no layer of space '" +
              space.name + "' (a candidate with choices of its own cannot be written out)";
      return false;
    }
    byLayer[pick.layer.getPointer()].push_back(pick.candidate);
  }

  raw_string_ostream os(text);
  for (const std::string &line : options.header)
    os << (line.empty() ? "//" : "// " + line) << "\n";
  if (!options.header.empty())
    os << "\n";
  for (const ImportDecl &import : file.imports)
    os << "import " << quoted(importPath(import, file.path, options.outputDirectory)) << "\n";
  if (!file.imports.empty())
    os << "\n";
  for (const auto &block : file.blocks)
    os << sourceText(block->loc, block->endLoc) << "\n\n";

  os << "model " << space.name;
  if (!space.params.empty()) {
    os << "(";
    for (auto [i, p] : llvm::enumerate(space.params)) {
      os << (i ? ", " : "") << p.name;
      std::string value = p.defaultValue ? printExpr(*p.defaultValue) : "";
      for (const auto &[name, override] : options.overrides)
        if (name == p.name)
          value = override;
      if (!value.empty())
        os << " = " << value;
    }
    os << ")";
  }
  os << " {\n";
  if (space.input) {
    os << "  input " << space.input->elementType << "[";
    for (auto [i, d] : llvm::enumerate(space.input->dims))
      os << (i ? ", " : "") << printExpr(*d);
    os << "]\n";
  }
  for (const LayerDecl &layer : space.layers) {
    std::string role = roleKeyword(layer.role).str();
    std::string width = layer.width ? " at " + printExpr(*layer.width) : "";
    if (!isa<ChoiceExpr>(*layer.layer)) {
      os << "  " << role << " " << printExpr(*layer.layer);
      if (layer.repeat)
        os << " x " << printExpr(*layer.repeat);
      os << width << "\n";
      continue;
    }
    // Identity picks vanish; equal neighbours become one `x N` line. The
    // width check stays on the first line written.
    std::vector<std::pair<std::string, int>> runs;
    for (const std::string &candidate : byLayer[layer.loc.getPointer()]) {
      if (candidate == "identity")
        continue;
      if (!runs.empty() && runs.back().first == candidate)
        ++runs.back().second;
      else
        runs.emplace_back(candidate, 1);
    }
    if (runs.empty())
      os << "  // " << role << " " << printExpr(*layer.layer) << ": identity\n";
    for (auto [i, run] : llvm::enumerate(runs)) {
      os << "  " << role << " " << run.first;
      if (run.second > 1)
        os << " x " << run.second;
      os << (i == 0 ? width : "") << "\n";
    }
  }
  for (const ConstraintDecl &c : space.constraints)
    os << "  constraint " << c.metric << "(" << quoted(c.device) << ") <= "
       << format("%.9g", c.limitMs) << " ms\n";
  os << "}\n";
  return true;
}

} // namespace qdsl::dsl
