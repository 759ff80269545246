//===- Frontend.cpp - load, parse and check a .qd program -----------------===//

#include "dsl/Frontend.h"

#include "dsl/Parser.h"
#include "dsl/StdLibrary.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <system_error>

using namespace llvm;

namespace qdsl::dsl {

std::unique_ptr<SourceFile> parseBuffer(unsigned bufferId, Diagnostics &diags,
                                        bool &ok) {
  auto file = std::make_unique<SourceFile>();
  const MemoryBuffer *buffer = diags.getSourceMgr().getMemoryBuffer(bufferId);
  file->path = buffer->getBufferIdentifier().str();
  file->bufferId = bufferId;
  Parser parser(*file, buffer->getBuffer(), diags);
  ok = parser.parseFile();
  return file;
}

std::unique_ptr<MemoryBuffer> readSourceFile(StringRef path, size_t maxBytes,
                                             std::string &error) {
  if (path != "-" && sys::fs::is_directory(path)) {
    error = "cannot read '" + path.str() + "': it is a directory";
    return nullptr;
  }
  // Opened without blocking: a FIFO that nothing writes reads as empty
  // instead of waiting forever; reads block again after.
  std::FILE *file = stdin;
  if (path != "-") {
    int fd = ::open(path.str().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    file = fd >= 0 ? ::fdopen(fd, "rb") : nullptr;
  }
  if (!file) {
    error = "cannot read '" + path.str() + "': " +
            std::error_code(errno, std::generic_category()).message();
    return nullptr;
  }
  std::string text;
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), file)) > 0) {
    text.append(chunk, n);
    if (text.size() > maxBytes)
      break;
  }
  bool readError = std::ferror(file);
  if (file != stdin)
    std::fclose(file);
  if (readError) {
    error = "cannot read '" + path.str() + "'";
    return nullptr;
  }
  if (text.size() > maxBytes) {
    error = "'" + path.str() + "' is larger than " +
            std::to_string(maxBytes >> 20) + " MiB; a model file is much smaller";
    return nullptr;
  }
  return MemoryBuffer::getMemBufferCopy(text, path == "-" ? "<stdin>" : path);
}

namespace {

class Loader {
public:
  Loader(const FrontendOptions &options, Diagnostics &diags, Program &program)
      : options(options), diags(diags), program(program) {}

  /// Adds a file's buffer and parses it; false on a read or syntax error.
  bool load(std::unique_ptr<MemoryBuffer> buffer, std::string key) {
    if (!loaded.insert(key).second)
      return true;
    return parse(
        diags.getSourceMgr().AddNewSourceBuffer(std::move(buffer), SMLoc()));
  }

  /// Records a file read by other means, so that importing it is a no-op.
  void markLoaded(StringRef path) {
    SmallString<256> real;
    loaded.insert(sys::fs::real_path(path, real) ? path : real.str());
  }

  /// Parses a buffer of the source manager and what it imports.
  bool parse(unsigned id) {
    bool ok = true;
    program.files.push_back(parseBuffer(id, diags, ok));
    SourceFile &file = *program.files.back();
    // Imports are loaded after this file, in order; each file once.
    for (const ImportDecl &import : file.imports)
      if (!diags.tooMany())
        ok &= loadImport(file, import);
    return ok;
  }

  /// Opens a file from disk, refusing what cannot be a model.
  std::unique_ptr<MemoryBuffer> read(StringRef path, SMLoc where) {
    std::string error;
    std::unique_ptr<MemoryBuffer> buffer =
        readSourceFile(path, options.maxFileBytes, error);
    if (!buffer)
      report(where, error);
    return buffer;
  }

private:
  void report(SMLoc where, const Twine &message) {
    if (where.isValid())
      diags.error(where, message);
    else
      diags.errorWithoutLocation(message);
  }

  bool loadImport(const SourceFile &from, const ImportDecl &import) {
    std::vector<std::string> places;
    if (!options.allowFileImports) {
      // Only the standard library.
    } else if (from.path != "-" && !findStdLibraryFile(from.path)) {
      SmallString<256> dir(from.path);
      sys::path::remove_filename(dir);
      places.push_back(dir.empty() ? "." : dir.str().str());
    }
    if (options.allowFileImports)
      for (const std::string &dir : options.includeDirs)
        places.push_back(dir);
    for (const std::string &dir : places) {
      SmallString<256> candidate(dir);
      sys::path::append(candidate, import.path);
      if (sys::path::is_absolute(import.path))
        candidate = import.path;
      if (!sys::fs::is_regular_file(candidate))
        continue;
      SmallString<256> real;
      std::string key = sys::fs::real_path(candidate, real)
                            ? candidate.str().str()
                            : real.str().str();
      if (loaded.count(key))
        return true;
      std::unique_ptr<MemoryBuffer> buffer = read(candidate, import.loc);
      return buffer && load(std::move(buffer), key);
    }
    if (std::optional<StringRef> text = findStdLibraryFile(import.path)) {
      std::string key = "<std>/" + import.path;
      if (loaded.count(key))
        return true;
      return load(MemoryBuffer::getMemBuffer(*text, import.path,
                                             /*RequiresNullTerminator=*/false),
                  key);
    }
    diags.error(import.loc,
                "cannot find '" + import.path +
                    "': looked next to this file, in the -I directories and "
                    "in qdsl's standard library" +
                    didYouMean(import.path, stdLibraryFiles()));
    return false;
  }

  const FrontendOptions &options;
  Diagnostics &diags;
  Program &program;
  StringSet<> loaded;
};

} // namespace

bool loadProgram(StringRef path, const FrontendOptions &options,
                 Diagnostics &diags, Program &program) {
  Loader loader(options, diags, program);
  std::unique_ptr<MemoryBuffer> buffer = loader.read(path, SMLoc());
  if (!buffer)
    return false;
  SmallString<256> real;
  std::string key =
      path == "-" || sys::fs::real_path(path, real) ? path.str() : real.str().str();
  bool parsed = loader.load(std::move(buffer), key);
  // Checking a file that did not parse would mostly repeat its syntax errors.
  if (!parsed || diags.hasErrors())
    return false;
  return checkProgram(program, diags);
}

bool loadProgramFromBuffer(std::unique_ptr<MemoryBuffer> buffer,
                           const FrontendOptions &options, Diagnostics &diags,
                           Program &program) {
  return loadProgramFromSourceMgr(
      diags.getSourceMgr().AddNewSourceBuffer(std::move(buffer), SMLoc()),
      options, diags, program);
}

bool loadProgramFromSourceMgr(unsigned bufferId, const FrontendOptions &options,
                              Diagnostics &diags, Program &program) {
  Loader loader(options, diags, program);
  loader.markLoaded(
      diags.getSourceMgr().getMemoryBuffer(bufferId)->getBufferIdentifier());
  if (!loader.parse(bufferId) || diags.hasErrors())
    return false;
  return checkProgram(program, diags);
}

} // namespace qdsl::dsl
