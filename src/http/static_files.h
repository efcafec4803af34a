#pragma once
// Serving the built web page (a single-page application) from a directory.

#include <filesystem>

#include "http/server.h"

namespace framepress::http {

/// A handler that serves the files under `root` to GET and HEAD (others get 405), meant for
/// Router::set_fallback():
///  - the Content-Type comes from the extension (html, js, css, svg, png, json, ico, woff2, map, txt, …);
///  - a path with a ".." or "." segment is refused (400 "bad_path"); a dot-file, or a file that resolves
///    (through symbolic links) outside `root`, is not found (404);
///  - a path that names no file and whose last segment has no extension gets index.html, so the page's
///    own routes (/videos/123) load the page; a missing file with an extension is a 404;
///  - files under /assets/ (content-hashed by the bundler) are cached for a year as immutable; everything
///    else, index.html first, is `no-cache`, revalidated by ETag (If-None-Match → 304);
///  - files are streamed in chunks, never read whole.
/// Throws Error(unavailable) when `root` is not a readable directory. The handler reads the disk on the
/// I/O thread: fine for the page's small files on a local disk, not meant for large media.
Handler static_files(std::filesystem::path root);

}  // namespace framepress::http
