//===- TensorFiles.cpp - safetensors and NumPy .npy files -----------------===//

#include "TensorFiles.h"
#include "Contract.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qdsl::rt {

std::string describeShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string listProblems(const std::vector<std::string> &problems,
                         size_t limit) {
  std::string text;
  for (size_t i = 0; i < problems.size() && i < limit; ++i)
    text += (i ? "\n" : "") + problems[i];
  if (problems.size() > limit)
    text += "\n... and " + std::to_string(problems.size() - limit) + " more";
  return text;
}

size_t firstNonFinite(const std::vector<float> &values) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      return i;
  return values.size();
}

bool isFinite(const Tensor &tensor, const std::string &path, std::string &error) {
  size_t at = firstNonFinite(tensor.data);
  if (at == tensor.data.size())
    return true;
  error = "'" + path + "' holds " + std::to_string(tensor.data[at]) + " at element " +
          std::to_string(at) + "; inputs must be finite";
  return false;
}

bool isOfModel(const Metadata &metadata, const std::string &model, const std::string &path,
               std::string &error) {
  auto it = metadata.find(contract::kModelKey);
  if (it == metadata.end() || it->second == model)
    return true;
  error = "'" + path + "' holds the weights of model " + it->second + ", not " + model;
  return false;
}

std::vector<std::string> weightProblems(const std::vector<TensorSpec> &expected,
                                        const TensorMap &tensors) {
  std::vector<std::string> problems;
  std::set<std::string> names;
  for (const TensorSpec &spec : expected) {
    names.insert(spec.name);
    auto it = tensors.find(spec.name);
    if (it == tensors.end())
      problems.push_back("missing tensor '" + spec.name + "' " + describeShape(spec.shape));
    else if (it->second.shape != spec.shape)
      problems.push_back("tensor '" + spec.name + "' has shape " +
                         describeShape(it->second.shape) + ", expected " +
                         describeShape(spec.shape));
    else if (size_t at = firstNonFinite(it->second.data); at < it->second.data.size())
      problems.push_back("tensor '" + spec.name + "' holds " +
                         std::to_string(it->second.data[at]) + " at element " +
                         std::to_string(at) + "; weights must be finite");
  }
  for (const auto &entry : tensors)
    if (!names.count(entry.first))
      problems.push_back("unexpected tensor '" + entry.first +
                         "' (the model has no such weight)");
  return problems;
}

std::string describeMisfit(const std::string &source, const std::string &model,
                           const std::string &problems) {
  std::string text = "'" + source + "' does not fit model " + model + ":\n  ";
  for (char c : problems)
    text += c == '\n' ? std::string("\n  ") : std::string(1, c);
  return text;
}

bool readFileBytes(const std::string &path, std::string &bytes, std::string &error,
                   uint64_t limit) {
  auto fail = [&](const std::string &why) {
    error = "cannot read '" + path + "': " + why;
    return false;
  };
  auto size = [](uint64_t n) {
    return n >= (uint64_t(1) << 30) ? std::to_string(n >> 30) + " GiB"
                                    : std::to_string(n >> 20) + " MiB";
  };
  // Not blocking in open(): a FIFO that nothing writes reads as empty.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return fail(std::error_code(errno, std::generic_category()).message());
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat status;
  if (::fstat(fd, &status) != 0)
    return fail(std::error_code(errno, std::generic_category()).message());
  if (S_ISDIR(status.st_mode)) {
    error = "'" + path + "' is a directory; expected a file";
    return false;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const bool regular = S_ISREG(status.st_mode);
  if (regular && static_cast<uint64_t>(status.st_size) > limit) {
    error = "'" + path + "' is " + std::to_string(status.st_size) + " bytes, more than the " +
            size(limit) + " this reader takes";
    return false;
  }
  const uint64_t most = regular ? limit : std::min(limit, kMaxStreamBytes);
  bytes.clear();
  try {
    if (regular)
      bytes.reserve(static_cast<size_t>(status.st_size));
    char chunk[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return fail(std::error_code(errno, std::generic_category()).message());
      if (n == 0)
        break;
      if (bytes.size() + static_cast<uint64_t>(n) > most) {
        bytes.clear();
        bytes.shrink_to_fit();
        error = "'" + path + "' gives more than " + size(most) +
                (regular ? "" : " (a pipe or device: an endless one such as /dev/zero?)") +
                ", more than this reader takes";
        return false;
      }
      bytes.append(chunk, static_cast<size_t>(n));
    }
  } catch (const std::bad_alloc &) {
    bytes.clear();
    bytes.shrink_to_fit();
    return fail("not enough memory to read it");
  }
  return true;
}

namespace {

uint64_t readLittleEndian(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void appendLittleEndian(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// Deeper than a tensor entry's shape (header → entry → shape) is not a
/// safetensors header; the limit also bounds the parser's work.
constexpr int kMaxHeaderDepth = 4;

bool isLittleEndianHost() {
  const uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

/// Checks a shape and returns its element count, refusing negative or
/// absurd sizes before anything is allocated.
bool checkShape(const std::vector<int64_t> &shape, uint64_t &elements,
                const std::string &what, std::string &error) {
  elements = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && elements > (uint64_t(1) << 40) / uint64_t(d))) {
      error = what + " has an invalid shape " + describeShape(shape);
      return false;
    }
    elements *= static_cast<uint64_t>(d);
  }
  return true;
}

} // namespace

namespace {

std::string errnoText() { return std::error_code(errno, std::generic_category()).message(); }

/// Writes all of `bytes` to `fd`, through short writes and interrupts.
bool writeAll(int fd, const std::string &bytes) {
  const char *data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

} // namespace

bool writeFileAtomically(const std::string &path, const std::string &bytes,
                         std::string &error) {
  auto fail = [&](const std::string &why) {
    error = "cannot write '" + path + "': " + why;
    return false;
  };
  struct stat status;
  std::string target = path;
  if (::stat(path.c_str(), &status) == 0) {
    if (S_ISDIR(status.st_mode))
      return fail("it is a directory");
    // A device, FIFO or socket is written through, never renamed over (a
    // rename would put a regular file where /dev/null was); a FIFO that
    // nothing reads is refused rather than waited on.
    if (!S_ISREG(status.st_mode)) {
      int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0)
        return fail(errnoText() + (errno == ENXIO ? " (a FIFO that nothing reads)" : ""));
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      bool ok = writeAll(fd, bytes);
      std::string why = ok ? "" : errnoText();
      ok = (::close(fd) == 0) && ok;
      return ok ? true : fail(why.empty() ? errnoText() : why);
    }
    // Through a link, the file it names is replaced, not the link.
    if (char *resolved = ::realpath(path.c_str(), nullptr)) {
      target = resolved;
      std::free(resolved);
    }
  }
  // A temporary beside the file, written, synced and renamed over it: on
  // any failure (a full disk) the earlier file stays as it was.
  std::string temp = target + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    return fail(errnoText());
  mode_t mask = ::umask(0);
  ::umask(mask);
  bool ok = ::fchmod(fd, 0666 & ~mask) == 0 && writeAll(fd, bytes) && ::fsync(fd) == 0;
  std::string why = ok ? "" : errnoText();
  ok = (::close(fd) == 0) && ok;
  if (ok && std::rename(temp.c_str(), target.c_str()) == 0)
    return true;
  if (why.empty())
    why = errnoText();
  ::unlink(temp.c_str());
  return fail(why + " (the earlier file, if any, is unchanged)");
}

//===----------------------------------------------------------------------===//
// safetensors
//===----------------------------------------------------------------------===//

bool readSafetensors(const std::string &path, TensorMap &tensors,
                     std::string &error, Metadata *metadata) {
  std::string bytes;
  return readFileBytes(path, bytes, error) &&
         parseSafetensors(bytes, path, tensors, error, metadata);
}

bool parseSafetensors(const std::string &bytes, const std::string &path,
                      TensorMap &tensors, std::string &error, Metadata *metadata) {
  if (!isLittleEndianHost()) {
    error = "safetensors data is little-endian; this machine is not";
    return false;
  }
  auto fail = [&](const std::string &message) {
    error = "'" + path + "': " + message;
    return false;
  };
  if (bytes.size() < 8)
    return fail("too short for a safetensors file (no 8-byte header length)");
  uint64_t headerSize = readLittleEndian(bytes.data(), 8);
  if (headerSize > bytes.size() - 8)
    return fail("the header length " + std::to_string(headerSize) +
                " runs past the end of the file (" +
                std::to_string(bytes.size()) + " bytes)");
  // The format allows a name once, and no header nests deeper than a
  // tensor's entry: refuse both while parsing.
  std::set<std::string> names;
  std::string duplicate;
  int deepest = 0;
  nlohmann::json header = nlohmann::json::parse(
      bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(headerSize),
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
        deepest = std::max(deepest, depth);
        if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
            !names.insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        return depth <= kMaxHeaderDepth;
      },
      /*allow_exceptions=*/false);
  if (deepest > kMaxHeaderDepth)
    return fail("the header nests deeper than " + std::to_string(kMaxHeaderDepth) +
                " levels; a safetensors header is an object of tensor entries");
  if (header.is_discarded() || !header.is_object())
    return fail("the header is not a JSON object");
  if (!duplicate.empty())
    return fail("the header names '" + duplicate + "' twice");
  const char *data = bytes.data() + 8 + headerSize;
  uint64_t dataSize = bytes.size() - 8 - headerSize;
  // (begin, end, name) of every tensor: they must tile the data buffer.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> extents;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    const nlohmann::json &entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object())
        return fail("__metadata__ must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          return fail("__metadata__ value '" + m.key() + "' is not a string");
        if (metadata)
          (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string what = "tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets"))
      return fail(what + " needs dtype, shape and data_offsets");
    const nlohmann::json &dtype = entry["dtype"];
    if (!dtype.is_string())
      return fail(what + ": dtype must be a string");
    if (dtype.get<std::string>() != "F32")
      return fail(what + " has dtype " + dtype.get<std::string>() +
                  "; qdsl reads F32 only (convert with tensor.float())");
    const nlohmann::json &shapeJson = entry["shape"];
    if (!shapeJson.is_array())
      return fail(what + ": shape must be an array of integers");
    std::vector<int64_t> shape;
    for (const nlohmann::json &d : shapeJson) {
      if (!d.is_number_integer())
        return fail(what + ": shape must be an array of integers");
      if (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX))
        return fail(what + " has a dimension of " + std::to_string(d.get<uint64_t>()) +
                    ", more than any tensor has");
      shape.push_back(d.get<int64_t>());
    }
    uint64_t elements;
    if (!checkShape(shape, elements, what, error))
      return fail(error);
    const nlohmann::json &offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      return fail(what + ": data_offsets must be [begin, end]");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > dataSize)
      return fail(what + ": data_offsets [" + std::to_string(begin) + ", " +
                  std::to_string(end) + "] fall outside the " +
                  std::to_string(dataSize) + " data bytes");
    if (end - begin != elements * 4)
      return fail(what + ": shape " + describeShape(shape) + " needs " +
                  std::to_string(elements * 4) + " bytes but data_offsets give " +
                  std::to_string(end - begin));
    if (begin % 4 != 0)
      return fail(what + ": data_offsets begin at byte " + std::to_string(begin) +
                  ", which is not a multiple of 4 (the size of an F32)");
    extents.emplace_back(begin, end, name);
    Tensor tensor;
    tensor.shape = shape;
    tensor.data.resize(elements);
    if (elements)
      std::memcpy(tensor.data.data(), data + begin, elements * 4);
    tensors[name] = std::move(tensor);
  }
  // In offset order the tensors must cover the data exactly: no byte of two
  // tensors, none of no tensor, nothing after the last.
  std::sort(extents.begin(), extents.end());
  uint64_t covered = 0;
  for (const auto &[begin, end, name] : extents) {
    if (begin < covered)
      return fail("tensor '" + name + "': data_offsets [" + std::to_string(begin) + ", " +
                  std::to_string(end) + "] overlap the tensor before it (which ends at byte " +
                  std::to_string(covered) + ")");
    if (begin > covered)
      return fail("bytes " + std::to_string(covered) + " to " + std::to_string(begin) +
                  " of the data belong to no tensor (before tensor '" + name + "')");
    covered = end;
  }
  if (covered != dataSize)
    return fail(std::to_string(dataSize - covered) + " bytes after the last tensor's data " +
                "belong to no tensor");
  return true;
}

bool writeSafetensors(const std::string &path, const TensorMap &tensors,
                      const Metadata &metadata, std::string &error) {
  if (!isLittleEndianHost()) {
    error = "safetensors data is little-endian; this machine is not";
    return false;
  }
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto &[name, tensor] : tensors) {
    if (tensor.data.size() != Tensor::numElements(tensor.shape)) {
      error = "tensor '" + name + "' has " + std::to_string(tensor.data.size()) +
              " values but shape " + describeShape(tensor.shape);
      return false;
    }
    uint64_t size = tensor.data.size() * 4;
    header[name] = {{"dtype", "F32"},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text = header.dump();
  // Pad the header with spaces so that the data starts 8-byte aligned.
  while (text.size() % 8)
    text.push_back(' ');
  std::string bytes;
  bytes.reserve(8 + text.size() + offset);
  appendLittleEndian(bytes, text.size(), 8);
  bytes += text;
  for (const auto &[name, tensor] : tensors)
    bytes.append(reinterpret_cast<const char *>(tensor.data.data()),
                 tensor.data.size() * 4);
  return writeFileAtomically(path, bytes, error);
}

//===----------------------------------------------------------------------===//
// .npy
//===----------------------------------------------------------------------===//

namespace {
/// The value text of `'key':` in a NumPy header dictionary, without the
/// blanks around it; false when the key is missing or written twice.
bool headerField(const std::string &header, const std::string &key,
                 std::string &value) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos || header.find("'" + key + "'", at + 1) != std::string::npos)
    return false;
  at = header.find(':', at);
  if (at == std::string::npos)
    return false;
  size_t begin = header.find_first_not_of(' ', at + 1);
  if (begin == std::string::npos)
    return false;
  size_t end;
  if (header[begin] == '(') {
    end = header.find(')', begin);
    if (end == std::string::npos)
      return false;
    ++end;
  } else if (header[begin] == '\'') {
    end = header.find('\'', begin + 1);
    if (end == std::string::npos)
      return false;
    ++end;
  } else {
    end = header.find_first_of(",}", begin);
    if (end == std::string::npos)
      return false;
  }
  value = header.substr(begin, end - begin);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.pop_back();
  return true;
}
} // namespace

bool readNpy(const std::string &path, Tensor &tensor, std::string &error) {
  std::string bytes;
  return readFileBytes(path, bytes, error) && parseNpy(bytes, path, tensor, error);
}

bool parseNpyArray(const std::string &bytes, const std::string &path, NpyArray &array,
                   std::string &error) {
  auto fail = [&](const std::string &message) {
    error = "'" + path + "': " + message;
    return false;
  };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    return fail("not a NumPy .npy file (no \\x93NUMPY magic)");
  int major = static_cast<unsigned char>(bytes[6]);
  size_t lengthBytes = major == 1 ? 2 : 4;
  if (major < 1 || major > 3)
    return fail("unsupported .npy version " + std::to_string(major));
  if (bytes.size() < 8 + lengthBytes)
    return fail("truncated header");
  uint64_t headerSize = readLittleEndian(bytes.data() + 8, static_cast<int>(lengthBytes));
  size_t dataStart = 8 + lengthBytes + headerSize;
  if (dataStart > bytes.size())
    return fail("the header runs past the end of the file");
  std::string header = bytes.substr(8 + lengthBytes, headerSize);
  size_t open = header.find_first_not_of(" \t\n"), close = header.find_last_not_of(" \t\n");
  if (open == std::string::npos || header[open] != '{' || header[close] != '}')
    return fail("the header is not a Python dictionary {...}");
  std::string descr, fortran, shapeText;
  if (!headerField(header, "descr", descr) ||
      !headerField(header, "fortran_order", fortran) ||
      !headerField(header, "shape", shapeText))
    return fail("the header needs descr, fortran_order and shape, each once");
  // '<f4', '=f4' on a little-endian host, '|u1': kind and size, little-endian.
  if (descr.size() != 5 || descr.front() != '\'' || descr.back() != '\'' ||
      !(descr[1] == '<' || descr[1] == '|' || (descr[1] == '=' && isLittleEndianHost())) ||
      !std::isdigit(static_cast<unsigned char>(descr[3])))
    return fail("holds " + descr + " data, which qdsl does not read (little-endian float32, "
                "int32, int64 or uint8 arrays)");
  array.kind = descr[2];
  array.itemSize = descr[3] - '0';
  if (fortran == "True")
    return fail("is in Fortran order; save a C-ordered array "
                "(numpy.ascontiguousarray)");
  if (fortran != "False")
    return fail("fortran_order is " + fortran + "; expected True or False");
  // shape is "(d0, d1, ...)" with an optional trailing comma.
  if (shapeText.size() < 2 || shapeText.front() != '(' || shapeText.back() != ')')
    return fail("cannot read the shape '" + shapeText + "': expected a tuple");
  std::vector<int64_t> shape;
  std::string inner = shapeText.substr(1, shapeText.size() - 2);
  std::stringstream parts(inner);
  std::string part;
  while (std::getline(parts, part, ',')) {
    size_t first = part.find_first_not_of(' ');
    if (first == std::string::npos)
      continue;
    part = part.substr(first);
    char *end = nullptr;
    long long d = std::strtoll(part.c_str(), &end, 10);
    if (end == part.c_str() || (*end != '\0' && *end != ' ' && *end != 'L'))
      return fail("cannot read the shape " + shapeText);
    shape.push_back(d);
  }
  uint64_t elements;
  if (!checkShape(shape, elements, "the array", error))
    return fail(error);
  if (bytes.size() - dataStart != elements * array.itemSize)
    return fail("shape " + describeShape(shape) + " needs " +
                std::to_string(elements * array.itemSize) + " data bytes but the file has " +
                std::to_string(bytes.size() - dataStart));
  array.shape = shape;
  array.dataOffset = dataStart;
  return true;
}

bool parseNpy(const std::string &bytes, const std::string &path, Tensor &tensor,
              std::string &error) {
  NpyArray array;
  if (!parseNpyArray(bytes, path, array, error))
    return false;
  if (array.kind != 'f' || array.itemSize != 4) {
    error = "'" + path + "': holds " + array.typeName() +
            " data; qdsl needs float32 ('<f4'): save it with x.astype(numpy.float32)";
    return false;
  }
  tensor.shape = array.shape;
  tensor.data.resize(array.dataBytes(bytes) / 4);
  if (!tensor.data.empty())
    std::memcpy(tensor.data.data(), array.data(bytes), array.dataBytes(bytes));
  return true;
}

std::string NpyArray::typeName() const {
  std::string bits = std::to_string(itemSize * 8);
  switch (kind) {
  case 'f': return "float" + bits;
  case 'i': return "int" + bits;
  case 'u': return "uint" + bits;
  case 'b': return "bool";
  default: return std::string("'") + kind + std::to_string(itemSize) + "'";
  }
}

bool readNpyLabels(const std::string &path, std::vector<int64_t> &labels, std::string &error) {
  std::string bytes;
  NpyArray array;
  if (!readFileBytes(path, bytes, error) || !parseNpyArray(bytes, path, array, error))
    return false;
  size_t count = array.shape.empty() ? 1 : static_cast<size_t>(array.shape[0]);
  if (array.shape.size() != 1) {
    error = "'" + path + "': labels are one number per example, a 1-D array; this one has " +
            "shape " + describeShape(array.shape);
    return false;
  }
  labels.resize(count);
  const char *data = array.data(bytes);
  for (size_t i = 0; i < count; ++i) {
    if (array.kind == 'i' && array.itemSize == 4) {
      int32_t v;
      std::memcpy(&v, data + 4 * i, 4);
      labels[i] = v;
    } else if (array.kind == 'i' && array.itemSize == 8) {
      std::memcpy(&labels[i], data + 8 * i, 8);
    } else if (array.kind == 'u' && array.itemSize == 1) {
      labels[i] = static_cast<unsigned char>(data[i]);
    } else if (array.kind == 'f' && array.itemSize == 4) {
      float v;
      std::memcpy(&v, data + 4 * i, 4);
      if (!(v >= -2147483648.0f && v < 2147483648.0f) || v != std::floor(v)) {
        error = "'" + path + "': label " + std::to_string(v) + " of example " +
                std::to_string(i) + " is not a whole number";
        return false;
      }
      labels[i] = static_cast<int64_t>(v);
    } else {
      error = "'" + path + "': holds " + array.typeName() +
              " labels; qdsl reads int32, int64, uint8 or float32 holding whole numbers";
      return false;
    }
  }
  return true;
}

bool writeNpy(const std::string &path, const Tensor &tensor, std::string &error) {
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape.size(); ++i)
    shape += std::to_string(tensor.shape[i]) + ", ";
  if (tensor.shape.size() > 1)
    shape.erase(shape.size() - 2);
  else if (tensor.shape.size() == 1)
    shape.erase(shape.size() - 1);
  shape += ")";
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes = "\x93NUMPY";
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  appendLittleEndian(bytes, header.size(), 2);
  bytes += header;
  bytes.append(reinterpret_cast<const char *>(tensor.data.data()),
               tensor.data.size() * 4);
  return writeFileAtomically(path, bytes, error);
}

} // namespace qdsl::rt
