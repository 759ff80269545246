//===- ProjectTemplate.cpp - CMake text of generated projects -------------===//

#include "codegen/ProjectTemplate.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/ErrorHandling.h"

#include <cstddef>
#include <vector>

namespace qdsl::codegen {

namespace {
#include "codegen/ProjectTemplates.inc"
} // namespace

bool fillTemplate(llvm::StringRef text, const TemplateValues &values, std::string &out,
                  std::string &error) {
  out.clear();
  llvm::SmallVector<llvm::StringRef> lines;
  text.split(lines, '\n');
  // split() leaves an empty last piece after the final newline.
  if (!lines.empty() && lines.back().empty())
    lines.pop_back();
  size_t first = 0;
  while (first < lines.size() && lines[first].starts_with("#"))
    ++first;
  std::vector<bool> kept = {true};
  auto where = [&](size_t i) { return "line " + std::to_string(i + 1) + ": "; };
  for (size_t i = first; i < lines.size(); ++i) {
    llvm::StringRef line = lines[i];
    if (line.size() > 5 && line.starts_with("@IF ") && line.ends_with("@")) {
      llvm::StringRef name = line.drop_front(4).drop_back(1);
      bool negated = name.consume_front("!");
      auto it = values.switches.find(name.str());
      if (it == values.switches.end())
        return error = where(i) + "no switch '" + name.str() + "'", false;
      kept.push_back(kept.back() && it->second != negated);
      continue;
    }
    if (line == "@END@") {
      if (kept.size() == 1)
        return error = where(i) + "@END@ without @IF", false;
      kept.pop_back();
      continue;
    }
    if (!kept.back())
      continue;
    std::string filled;
    bool onlyEmptyValue = false;
    for (size_t at = 0;;) {
      size_t open = line.find('@', at);
      if (open == llvm::StringRef::npos) {
        filled += line.substr(at).str();
        break;
      }
      size_t close = line.find('@', open + 1);
      if (close == llvm::StringRef::npos)
        return error = where(i) + "an '@' without its closing '@'", false;
      llvm::StringRef name = line.slice(open + 1, close);
      auto it = values.values.find(name.str());
      if (it == values.values.end())
        return error = where(i) + "no value '" + name.str() + "'", false;
      filled += line.slice(at, open).str() + it->second;
      onlyEmptyValue = open == 0 && close + 1 == line.size() && it->second.empty();
      at = close + 1;
    }
    if (!onlyEmptyValue)
      out += filled + "\n";
  }
  if (kept.size() != 1)
    return error = "an @IF without its @END@", false;
  return true;
}

std::string fillProjectTemplate(llvm::StringRef name, const TemplateValues &values) {
  std::string path = "codegen/templates/" + name.str();
  for (const EmbeddedFile &file : embeddedFiles)
    if (path == file.path) {
      std::string out, error;
      if (!fillTemplate(llvm::StringRef(file.data, file.size), values, out, error))
        llvm::report_fatal_error(llvm::Twine(path) + ": " + error);
      return out;
    }
  llvm::report_fatal_error("qdsl ships no template " + llvm::Twine(path));
}

} // namespace qdsl::codegen
