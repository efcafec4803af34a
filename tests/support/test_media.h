#pragma once
// Test media for every suite: clips made with ffmpeg's lavfi sources at test time (nothing binary in
// the repository), facts about a media file read back with ffprobe, temporary directories and a
// small command runner. Needs `ffmpeg` and `ffprobe` on PATH.
//
// Everything here throws std::runtime_error (with the tool's stderr) when a tool fails, so a broken
// environment shows up as a clear test error rather than as a wrong assertion later.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace framepress::testing {

/// A synthetic clip: testsrc2 picture (moving, with a clock), a 440 Hz sine as sound.
struct ClipSpec {
  int width = 320;
  int height = 180;
  double seconds = 2;
  double fps = 25;
  bool audio = true;
  /// Display rotation written by a remux with `-metadata:s:v:0 rotate=N` (ffmpeg 5.1 cannot set it
  /// while encoding). The coded picture stays width x height; ffprobe then reports a display matrix.
  int rotation = 0;
  /// mp4, mov, mkv, ts, flv: H.264 + AAC · webm: VP8 + Opus · avi: H.264 + MP3.
  std::string extension = "mp4";
};

/// Makes `dir/name.extension` (ultrafast x264, so a 2 s clip takes well under a second) and returns
/// its path. Throws std::runtime_error with ffmpeg's stderr on failure.
std::filesystem::path make_clip(const std::filesystem::path& dir, const std::string& name, const ClipSpec& spec = {});

/// What a media file is, as a player would see it.
struct MediaFacts {
  int width = 0;                // coded size of the first video stream
  int height = 0;
  int rotation = 0;             // display-matrix rotation as ffprobe reports it, normalised to 0/90/180/270
  double duration = 0;          // of the container, seconds
  std::string video_codec;      // "" without video
  std::string audio_codec;      // "" without audio
  bool faststart = false;       // MP4: the moov box comes before the mdat box
  std::int64_t frames = 0;      // video packets read (ffprobe -count_packets)
  bool decodes_cleanly = false; // a full decode exits 0 with nothing on stderr
};

/// Reads the facts of `file` with ffprobe and a full decode. Throws std::runtime_error when ffprobe
/// cannot read the file at all.
MediaFacts inspect(const std::filesystem::path& file);

/// Whether the top-level MP4 boxes of `file` put `moov` before `mdat`. False when either is missing.
bool moov_before_mdat(const std::filesystem::path& file);

/// A fresh directory (mkdtemp under $TMPDIR, else /tmp), removed with everything in it on destruction.
/// Movable, not copyable.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// path() / name
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// The outcome of run_process().
struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal when a signal ended it
  std::string out;     // everything written to stdout
  std::string err;     // everything written to stderr
};

/// Runs `argv` (searched on PATH, no shell, stdin /dev/null) to the end, capturing stdout and stderr.
/// Throws std::runtime_error when it cannot be started.
CommandResult run_process(const std::vector<std::string>& argv);

/// Runs `argv` and returns its stdout; its exit status goes to `*exit_code` when given (stderr passes
/// through to the test's stderr). Throws std::runtime_error when it cannot be started.
std::string run_command(const std::vector<std::string>& argv, int* exit_code = nullptr);

}  // namespace framepress::testing
