#include "cli/render.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace framepress::cli {
namespace {

std::string printf_string(const char* format, double value, const char* unit) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), format, value, unit);
  return buffer.data();
}

bool is_known(double value) { return std::isfinite(value) && value >= 0; }

}  // namespace

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  for (std::size_t unit = 0; unit < kUnits.size(); ++unit) {
    value /= 1024;
    // Decide on the number as it will be printed, so 1023.97 KiB shows as "1.0 MiB", never "1024 KiB".
    const bool last = unit + 1 == kUnits.size();
    if (value < 99.95) return printf_string("%.1f %s", value, kUnits[unit]);
    if (std::round(value) < 1024 || last) return printf_string("%.0f %s", value, kUnits[unit]);
  }
  return {};  // not reached: the last unit always returns
}

std::string human_rate(double bytes_per_second) {
  if (!is_known(bytes_per_second)) return "--";
  return human_bytes(static_cast<std::uint64_t>(std::llround(bytes_per_second))) + "/s";
}

std::string human_bitrate(double bits_per_second) {
  if (!std::isfinite(bits_per_second) || bits_per_second <= 0) return "--";
  if (bits_per_second < 1000) return printf_string("%.0f %s", bits_per_second, "b/s");
  if (bits_per_second < 999.5e3) return printf_string("%.0f %s", bits_per_second / 1e3, "kb/s");
  if (bits_per_second < 999.95e6) return printf_string("%.1f %s", bits_per_second / 1e6, "Mb/s");
  return printf_string("%.2f %s", bits_per_second / 1e9, "Gb/s");
}

std::string format_clock(double seconds) {
  if (!is_known(seconds)) return "--:--";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long hours = total / 3600;
  const long long minutes = (total / 60) % 60;
  const long long secs = total % 60;
  std::array<char, 48> buffer{};
  if (hours > 0) {
    std::snprintf(buffer.data(), buffer.size(), "%lld:%02lld:%02lld", hours, minutes, secs);
  } else {
    std::snprintf(buffer.data(), buffer.size(), "%lld:%02lld", minutes, secs);
  }
  return buffer.data();
}

std::string progress_bar(double fraction, int width) {
  width = std::max(width, 1);
  if (std::isnan(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * width);
  std::string bar = "[";
  if (filled >= width) {
    bar.append(static_cast<std::size_t>(width), '=');
  } else if (fraction > 0) {
    // The head shows that something moved even before the first full cell.
    bar.append(static_cast<std::size_t>(filled), '=');
    bar.push_back('>');
    bar.append(static_cast<std::size_t>(width - filled - 1), ' ');
  } else {
    bar.append(static_cast<std::size_t>(width), ' ');
  }
  bar.push_back(']');
  return bar;
}

std::string format_percent(double fraction) {
  if (std::isnan(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  return printf_string("%5.1f%s", fraction * 100, "%");
}

std::optional<double> eta_seconds(std::uint64_t done, std::uint64_t total, std::optional<double> rate) {
  if (!rate || !(*rate > 0) || !std::isfinite(*rate)) return std::nullopt;
  if (done >= total) return 0.0;
  return static_cast<double>(total - done) / *rate;
}

// ---- RateMeter -------------------------------------------------------------------------------------

void RateMeter::add(Clock::time_point now, std::uint64_t total) {
  // libcurl reports progress for every buffer it sends; keeping a sample per call would make the window
  // hold thousands. Readings closer than 100 ms to the previous one replace it instead.
  if (samples_.size() >= 2 && now - samples_[samples_.size() - 2].first < std::chrono::milliseconds(100)) {
    samples_.back() = {now, total};
  } else {
    samples_.emplace_back(now, total);
  }
  // Keep the newest sample at or before the start of the window as the anchor of the measurement.
  while (samples_.size() > 2 && samples_[1].first <= now - window_) samples_.pop_front();
}

std::optional<double> RateMeter::rate() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [t0, v0] = samples_.front();
  const auto& [t1, v1] = samples_.back();
  const std::chrono::duration<double> span = t1 - t0;
  if (span < std::chrono::milliseconds(200)) return std::nullopt;
  return static_cast<double>(v1 >= v0 ? v1 - v0 : 0) / span.count();
}

// ---- rows ------------------------------------------------------------------------------------------

std::string format_row(const ProgressRow& row, std::size_t label_width, bool bar, int bar_width) {
  std::string line;
  if (bar) {
    line = row.label;
    if (line.size() < label_width) line.append(label_width - line.size(), ' ');
    line += "  ";
    line += row.state;
    // "cancelled" and "uploading" are the longest states: pad to them so the bars line up.
    if (row.state.size() < 9) line.append(9 - row.state.size(), ' ');
    if (row.fraction >= 0) {
      line += "  " + progress_bar(row.fraction, bar_width) + " " + format_percent(row.fraction);
    }
    if (!row.detail.empty()) line += "  " + row.detail;
    return line;
  }
  line = row.label + ": " + row.state;
  if (row.fraction >= 0) {
    std::string percent = format_percent(row.fraction);
    percent.erase(0, percent.find_first_not_of(' '));
    line += " " + percent;
  }
  if (!row.detail.empty()) line += "  " + row.detail;
  return line;
}

bool is_terminal(const std::ostream& stream) {
  const auto* address = static_cast<const void*>(&stream);
  if (address != static_cast<const void*>(&std::cerr) && address != static_cast<const void*>(&std::clog)) {
    return false;  // a string stream, a file: the caller collects the text, escapes would garble it
  }
  if (::isatty(STDERR_FILENO) == 0) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::string_view(term) != "dumb";
}

int terminal_columns() {
  winsize size{};
  if (::isatty(STDERR_FILENO) == 0 || ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

// ---- ProgressDisplay -------------------------------------------------------------------------------

ProgressDisplay::ProgressDisplay(std::ostream& out, Options options) : out_(out), options_(std::move(options)) {
  if (!options_.now) options_.now = [] { return Clock::now(); };
}

void ProgressDisplay::update(const ProgressRow& row) {
  auto it = std::find_if(rows_.begin(), rows_.end(), [&](const ProgressRow& r) { return r.label == row.label; });
  bool forced = false;
  std::size_t index = 0;
  if (it == rows_.end()) {
    rows_.push_back(row);
    printed_.emplace_back();
    index = rows_.size() - 1;
    forced = true;
  } else {
    if (*it == row) return;
    forced = it->state != row.state;
    *it = row;
    index = static_cast<std::size_t>(it - rows_.begin());
  }

  const auto now = options_.now();
  if (options_.terminal) {
    dirty_ = true;
    if (forced || now - last_redraw_ >= options_.redraw_interval) redraw();
    return;
  }
  auto line = format_row(row, 0, false);
  auto& [last_line, last_time] = printed_[index];
  if (line == last_line) return;
  if (forced || now - last_time >= options_.plain_interval) {
    out_ << line << '\n' << std::flush;
    last_line = std::move(line);
    last_time = now;
  }
}

void ProgressDisplay::clear() {
  if (options_.terminal) erase_block();
  rows_.clear();
  printed_.clear();
  dirty_ = false;
}

void ProgressDisplay::message(std::string_view text) {
  if (options_.terminal) {
    // Take the block away, print the message where it was, and draw the block again below it.
    erase_block();
    out_ << text << '\n';
    if (!rows_.empty()) {
      redraw();
    } else {
      out_ << std::flush;
    }
    return;
  }
  out_ << text << '\n' << std::flush;
}

void ProgressDisplay::finish() {
  if (options_.terminal) {
    if (dirty_) redraw();
    drawn_lines_ = 0;
  } else {
    // A log should end with every row's last state, even when the interval held the last change back.
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      auto line = format_row(rows_[i], 0, false);
      if (line != printed_[i].first) out_ << line << '\n';
    }
    out_ << std::flush;
  }
  rows_.clear();
  printed_.clear();
  dirty_ = false;
}

void ProgressDisplay::redraw() {
  if (drawn_lines_ > 0) out_ << "\x1b[" << drawn_lines_ << 'A';
  const auto width = label_width();
  for (const auto& row : rows_) out_ << "\r\x1b[2K" << fit(format_row(row, width, true)) << '\n';
  out_ << "\x1b[J" << std::flush;  // rows that went away leave no lines behind
  drawn_lines_ = rows_.size();
  last_redraw_ = options_.now();
  dirty_ = false;
}

void ProgressDisplay::erase_block() {
  if (drawn_lines_ == 0) return;
  out_ << "\x1b[" << drawn_lines_ << "A\r\x1b[J";
  drawn_lines_ = 0;
}

std::string ProgressDisplay::fit(std::string line) const {
  // A line that wraps takes two rows of the screen, and cursor-up would no longer reach the top of the
  // block. The last column is left free too: some terminals wrap as soon as it is written.
  if (options_.columns <= 1 || line.size() < static_cast<std::size_t>(options_.columns)) return line;
  std::size_t cut = static_cast<std::size_t>(options_.columns - 1);
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // not inside UTF-8
  line.resize(cut);
  return line;
}

std::size_t ProgressDisplay::label_width() const {
  std::size_t width = 0;
  for (const auto& row : rows_) width = std::max(width, row.label.size());
  return width;
}

}  // namespace framepress::cli
