//===- ProfileLookup.cpp - a device's profile by its name -----------------===//

#include "codegen/latency/ProfileLookup.h"

#include "codegen/latency/DeviceProfile.h"
#include "runtime/shipped/Contract.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cstdlib>

namespace qdsl::cost {

namespace {
#include "codegen/ShippedProfiles.inc"

/// "profiles/cortex-a76.json" -> "cortex-a76".
std::string deviceOfPath(llvm::StringRef path) {
  return llvm::sys::path::stem(path).str();
}
} // namespace

std::vector<std::string> shippedProfileDevices() {
  std::vector<std::string> devices;
  for (const EmbeddedFile &file : embeddedFiles)
    devices.push_back(deviceOfPath(file.path));
  std::sort(devices.begin(), devices.end());
  return devices;
}

bool findDeviceProfile(const std::string &device, DeviceProfile &profile,
                       std::string &error) {
  // Joined to directories below: a name, never a path.
  if (!contract::isDeviceName(device.data(), device.size())) {
    error = "'" + device + "' is not a device name (letters, digits, '-', '_' and '.', not "
            "first): it names a profile file, never a path";
    return false;
  }
  std::string looked;
  if (const char *path = std::getenv(kProfilePathVariable); path && *path) {
    llvm::SmallVector<llvm::StringRef> directories;
    llvm::StringRef(path).split(directories, ':', -1, /*KeepEmpty=*/false);
    for (llvm::StringRef directory : directories) {
      llvm::SmallString<256> file(directory);
      llvm::sys::path::append(file, device + ".json");
      if (llvm::sys::fs::exists(file)) {
        return readProfile(file.str().str(), profile, error);
      }
      looked += "\n  " + file.str().str();
    }
  } else {
    looked += std::string("\n  $") + kProfilePathVariable + " (not set)";
  }
  for (const EmbeddedFile &file : embeddedFiles)
    if (deviceOfPath(file.path) == device) {
      return parseProfile(std::string(file.data, file.size),
                          kShippedProfilePrefix + std::string(file.path), profile, error);
    }
  std::string shipped;
  for (const std::string &d : shippedProfileDevices())
    shipped += (shipped.empty() ? "" : ", ") + d;
  error = "no device profile for '" + device + "'; looked for " + device + ".json in:" +
          looked + "\n  the profiles shipped with qdsl (" + shipped +
          ")\nmeasure this machine with `qdsl profile SPACE -o " + device +
          ".json` and add its directory to $" + kProfilePathVariable +
          ", or give the profile with --device";
  return false;
}

} // namespace qdsl::cost
