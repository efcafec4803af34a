#pragma once
// Strong identifier types, so that a video id, an object key and a rendition name cannot be mixed up.

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace framepress {

/// A job's id: a ULID (26 Crockford base-32 characters), so ids sort by creation time and never derive
/// from anything the user sent.
class VideoId {
 public:
  VideoId() = default;
  /// A new id from the current time and 80 random bits. Thread-safe.
  static VideoId generate();
  /// The id in `text` when it is a well-formed ULID (case-insensitive; stored upper-case), else nullopt.
  static std::optional<VideoId> parse(std::string_view text);

  const std::string& str() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }
  auto operator<=>(const VideoId&) const = default;

 private:
  explicit VideoId(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

/// A key in the object store ("videos/<id>/source", "videos/<id>/renditions/720p.mp4").
class ObjectKey {
 public:
  ObjectKey() = default;
  explicit ObjectKey(std::string value) : value_(std::move(value)) {}
  const std::string& str() const noexcept { return value_; }
  auto operator<=>(const ObjectKey&) const = default;

  /// The keys of one job. All are deterministic per job and rendition, so a task that is run again
  /// overwrites its output instead of adding a second one.
  static ObjectKey source_of(const VideoId& id);
  static ObjectKey rendition_of(const VideoId& id, std::string_view rendition);
  static std::string prefix_of(const VideoId& id);

 private:
  std::string value_;
};

/// A key as it may appear in a message or a log: control characters shown as '?', length capped at 120
/// bytes, so a hostile key cannot forge log lines.
std::string printable_key(std::string_view key);

/// The one rule every object store applies to keys, so that a key valid for one is valid for all:
/// relative, '/'-separated, no empty, "." or ".." segment (but a prefix's trailing '/'), no control
/// character, no backslash. `max_length` and `max_segment` (0: none) are a store's own limits (S3 takes
/// 1,024 bytes; a file name 255). Throws Error(bad_request, "bad_key") naming what is wrong.
void check_object_key(std::string_view key, bool prefix, std::size_t max_length = 0, std::size_t max_segment = 0);

}  // namespace framepress

template <>
struct std::hash<framepress::VideoId> {
  std::size_t operator()(const framepress::VideoId& id) const noexcept { return std::hash<std::string>{}(id.str()); }
};
