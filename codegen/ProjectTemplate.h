//===- ProjectTemplate.h - CMake text of generated projects -----*- C++ -*-===//
//
// The CMakeLists.txt of a generated project is a template file of
// codegen/templates/ (compiled into qdsl, never shipped) that the back end's
// writer fills in:
//
//   @NAME@               the value of NAME (a line that is only @NAME@ and
//                        whose value is empty is dropped)
//   @IF NAME@ ... @END@  the lines between, kept when NAME is on;
//   @IF !NAME@ ... @END@ ... when it is off (sections nest)
//
// The template's leading comment lines (up to the first line that is not a
// comment) describe it and are dropped.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_PROJECTTEMPLATE_H
#define QDSL_CODEGEN_PROJECTTEMPLATE_H

#include "llvm/ADT/StringRef.h"

#include <map>
#include <string>

namespace qdsl::codegen {

struct TemplateValues {
  std::map<std::string, std::string> values;
  std::map<std::string, bool> switches;
};

/// `text` filled in with `values`; false with `error` (naming the line) for
/// an unknown name or unbalanced sections.
bool fillTemplate(llvm::StringRef text, const TemplateValues &values, std::string &out,
                  std::string &error);

/// The template file `name` of codegen/templates/ filled in; a template
/// qdsl ships that does not fill is a bug in qdsl, and aborts.
std::string fillProjectTemplate(llvm::StringRef name, const TemplateValues &values);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_PROJECTTEMPLATE_H
