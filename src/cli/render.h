#pragma once
// What the command-line client shows: sizes, rates, ETAs, progress bars, and a block of bars (one per
// upload or rendition) that redraws in place on a terminal and falls back to sparse plain lines in logs.
// Everything here but terminal detection is pure; the clock is handed in, so tests need no sleeping.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace framepress::cli {

/// Bytes in binary units: "512 B", "1.5 KiB", "12.3 MiB", "640 MiB", "1.2 GiB": one decimal under 100 of a
/// unit, none from 100 on, and never "1024" of a unit (that is 1.0 of the next).
std::string human_bytes(std::uint64_t bytes);

/// A transfer rate, "3.2 MiB/s"; "--" when unknown (negative, NaN or infinite).
std::string human_rate(double bytes_per_second);

/// A media bit rate in decimal units as players show it: "850 kb/s", "4.9 Mb/s"; "--" when not positive.
std::string human_bitrate(double bits_per_second);

/// Seconds as a clock: "m:ss" under an hour, "h:mm:ss" from an hour; rounded to the nearest second.
/// "--:--" when unknown (negative, NaN or infinite), which is how the API marks an unknown ETA (-1).
std::string format_clock(double seconds);

/// A bar `width` characters wide inside brackets, e.g. "[=========>          ]". `fraction` is clamped
/// to 0..1; a NaN shows as empty.
std::string progress_bar(double fraction, int width);

/// The percent of `fraction` as "  45.0%" (right-aligned in 6 characters plus the sign).
std::string format_percent(double fraction);

/// The remaining time of a transfer at `rate` bytes/s; nullopt when the rate is unknown or zero.
std::optional<double> eta_seconds(std::uint64_t done, std::uint64_t total, std::optional<double> rate);

/// The recent throughput of a counter that only grows (bytes sent so far), over a sliding window, so a
/// stall shows as a falling rate rather than the average since the start. Not thread-safe.
class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateMeter(std::chrono::milliseconds window = std::chrono::seconds(5)) : window_(window) {}

  /// Records that the counter read `total` at `now`. Times must not go backwards.
  void add(Clock::time_point now, std::uint64_t total);
  /// Units per second over the window; nullopt until two samples at least 200 ms apart were recorded.
  std::optional<double> rate() const;

 private:
  std::chrono::milliseconds window_;
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
};

/// One line of a progress display.
struct ProgressRow {
  std::string label;      ///< what the row is ("upload", "720p"); a display's key for the row
  std::string state;      ///< "uploading", "encoding", "done", …: a change is always shown at once
  double fraction = -1;   ///< 0..1, negative when there is nothing to measure (no bar, no percent)
  std::string detail;     ///< what follows the bar: sizes, speed, fps, ETA, an error

  bool operator==(const ProgressRow&) const = default;
};

/// The row as text, without a line end. With `bar`: "720p   encoding  [====>     ]  45.0%  detail";
/// without (for logs): "720p: encoding 45.0% detail". The label is padded to `label_width`.
std::string format_row(const ProgressRow& row, std::size_t label_width, bool bar, int bar_width = 24);

/// Whether progress written to `stream` should be redrawn in place: true only for std::cerr (or
/// std::clog) when standard error is a terminal and TERM is not "dumb".
bool is_terminal(const std::ostream& stream);

/// The width of the terminal on standard error, or 0 when it is not a terminal or does not say.
int terminal_columns();

/// A block of progress rows written to one stream.
///
/// On a terminal the block is redrawn in place (ANSI cursor-up and erase-line), at most every
/// `redraw_interval` unless a row is added or changes state, and lines are cut to the terminal's width so
/// the cursor arithmetic stays right. Elsewhere (a log, a pipe, a CI console) each row is printed as a plain
/// line when it appears, when its state changes, and otherwise at most every `plain_interval`.
///
/// Not thread-safe; the stream must outlive the display. finish() leaves the last drawing on screen.
class ProgressDisplay {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    bool terminal = false;
    int columns = 0;  ///< cut lines to this width on a terminal; 0: don't cut
    std::chrono::milliseconds redraw_interval{100};
    std::chrono::milliseconds plain_interval{5000};
    std::function<Clock::time_point()> now = [] { return Clock::now(); };  ///< the clock (tests fake it)
  };

  ProgressDisplay(std::ostream& out, Options options);
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  /// Adds the row, or replaces the row with the same label; new rows go below the others.
  void update(const ProgressRow& row);
  /// Removes every row (e.g. before a fresh snapshot sets them up again); on a terminal their lines are
  /// erased.
  void clear();
  /// Prints a line of text above the block (a warning, a retry), so that it stays when the block is
  /// redrawn.
  void message(std::string_view text);
  /// Draws what is pending and lets go of the block: later output goes below it.
  void finish();

 private:
  void redraw();
  void erase_block();
  std::string fit(std::string line) const;
  std::size_t label_width() const;

  std::ostream& out_;
  Options options_;
  std::vector<ProgressRow> rows_;
  // Non-terminal bookkeeping, per row: the line printed last and when.
  std::vector<std::pair<std::string, Clock::time_point>> printed_;
  std::size_t drawn_lines_ = 0;  // terminal: lines of the block currently on screen, above the cursor
  bool dirty_ = false;
  Clock::time_point last_redraw_{};
};

}  // namespace framepress::cli
