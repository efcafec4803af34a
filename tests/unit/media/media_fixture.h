#pragma once
// Clips shared by the probe and encode tests of one test binary: made once, on first use, in a
// temporary directory that lives as long as the process.

#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "support/test_media.h"

namespace framepress::testing {

class SharedClips {
 public:
  /// The clip `name` made from `spec` (made on the first call for that name).
  static std::filesystem::path get(const std::string& name, const ClipSpec& spec = {}) {
    auto& self = instance();
    std::lock_guard lock(self.mutex_);
    auto it = self.clips_.find(name);
    if (it != self.clips_.end()) return it->second;
    auto path = make_clip(self.dir_.path(), name, spec);
    self.clips_.emplace(name, path);
    return path;
  }
  static const std::filesystem::path& dir() { return instance().dir_.path(); }

 private:
  static SharedClips& instance() {
    static SharedClips clips;
    return clips;
  }
  std::mutex mutex_;
  TempDir dir_;
  std::map<std::string, std::filesystem::path> clips_;
};

}  // namespace framepress::testing
