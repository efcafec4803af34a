#pragma once
// The user's file name is metadata only: it names downloads and nothing else. Pure functions.

#include <string>
#include <string_view>

namespace framepress {

/// A file name safe to keep and show: the last path component (either slash), valid UTF-8 (bad bytes
/// become U+FFFD), no control characters or NUL, no leading dots, at most 180 bytes; "video" when
/// nothing is left.
std::string sanitize_filename(std::string_view raw);

/// The name without its extension ("holiday.final.mp4" → "holiday.final").
std::string filename_stem(std::string_view name);

/// The extension with its dot ("clip.MOV" → ".MOV"), or "" when there is none.
std::string filename_extension(std::string_view name);

}  // namespace framepress
