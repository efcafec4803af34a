#include "media/progress_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace framepress::media {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_double(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<double> parse_speed(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.back() == 'x') text.remove_suffix(1);
  auto value = parse_double(text);
  if (!value || *value < 0) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_clock_us(std::string_view text) {
  text = trim(text);
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  // HH:MM:SS.ffffff: hours may have more than two digits.
  auto c1 = text.find(':');
  if (c1 == std::string_view::npos) return std::nullopt;
  auto c2 = text.find(':', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  auto hours = parse_int(text.substr(0, c1));
  auto minutes = parse_int(text.substr(c1 + 1, c2 - c1 - 1));
  std::string_view sec_text = text.substr(c2 + 1);
  auto dot = sec_text.find('.');
  auto seconds = parse_int(sec_text.substr(0, dot));
  if (!hours || !minutes || !seconds || *hours < 0 || *minutes < 0 || *seconds < 0) return std::nullopt;
  std::int64_t micros = 0;
  if (dot != std::string_view::npos) {
    std::string_view frac = sec_text.substr(dot + 1);
    if (frac.empty() || frac.size() > 9 || !parse_int(frac) || frac.front() == '-' || frac.front() == '+')
      return std::nullopt;
    std::string digits(frac.substr(0, 6));
    digits.resize(6, '0');
    micros = *parse_int(digits);
  }
  // A hostile file can make ffmpeg print any clock: one that does not fit in 64 bits of microseconds is
  // malformed, not an overflow.
  std::int64_t total = 0;
  if (__builtin_mul_overflow(*hours, 60, &total) || __builtin_add_overflow(total, *minutes, &total) ||
      __builtin_mul_overflow(total, 60, &total) || __builtin_add_overflow(total, *seconds, &total) ||
      __builtin_mul_overflow(total, 1'000'000, &total) || __builtin_add_overflow(total, micros, &total)) {
    return std::nullopt;
  }
  return negative ? -total : total;
}

std::optional<ProgressBlock> ProgressParser::feed_line(std::string_view line) {
  line = trim(line);
  auto eq = line.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view key = trim(line.substr(0, eq));
  std::string_view value = trim(line.substr(eq + 1));

  if (key == "out_time_us") {
    // "N/A" before the first frame. Any number wins over the out_time text, which we only use when
    // this key is missing (older ffmpeg). out_time_ms is skipped: ffmpeg fills it with microseconds.
    current_.out_time_us = parse_int(value);
  } else if (key == "out_time") {
    if (!current_.out_time_us) current_.out_time_us = parse_clock_us(value);
  } else if (key == "fps") {
    current_.fps = parse_double(value).value_or(0);
  } else if (key == "speed") {
    current_.speed = parse_speed(value);
  } else if (key == "frame") {
    current_.frame = parse_int(value).value_or(current_.frame);
  } else if (key == "progress") {
    ProgressBlock done = current_;
    done.end = value == "end";
    current_ = ProgressBlock{};
    return done;
  }
  return std::nullopt;
}

std::vector<ProgressBlock> ProgressParser::feed(std::string_view bytes) {
  // A line of progress output is short; a runaway one is garbage and is dropped whole, however the bytes
  // were cut: once the partial line is over the limit it becomes kRunaway until its newline.
  constexpr std::size_t kMaxLine = 4096;
  static const std::string kRunaway(1, '\0');  // no key starts with NUL, so a real partial "\0" is dropped too
  std::vector<ProgressBlock> blocks;
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_ != kRunaway) partial_.append(bytes);
      if (partial_.size() > kMaxLine) partial_ = kRunaway;
      break;
    }
    std::optional<ProgressBlock> block;
    if (partial_.empty()) {
      if (nl <= kMaxLine) block = feed_line(bytes.substr(0, nl));
    } else {
      if (partial_ != kRunaway && partial_.size() + nl <= kMaxLine) {
        partial_.append(bytes.substr(0, nl));
        block = feed_line(partial_);
      }
      partial_.clear();
    }
    if (block) blocks.push_back(*block);
    bytes.remove_prefix(nl + 1);
  }
  return blocks;
}

EncodeProgress compute_progress(const ProgressBlock& block, double source_duration_seconds,
                                std::chrono::duration<double> elapsed) {
  EncodeProgress p;
  p.fps = std::max(0.0, block.fps);
  p.frames = std::max<std::int64_t>(0, block.frame);
  const double wall = elapsed.count();
  const bool know_duration = source_duration_seconds > 0 && std::isfinite(source_duration_seconds);
  // Audio priming can make the first positions slightly negative.
  const std::optional<double> position =
      block.out_time_us ? std::optional<double>(std::max<double>(0, static_cast<double>(*block.out_time_us) / 1e6))
                        : std::nullopt;

  if (block.speed) {
    p.speed = *block.speed;
  } else if (position && wall > 0) {
    p.speed = *position / wall;
  }

  if (block.end) {
    p.percent = 100;
    p.eta_seconds = 0;
    return p;
  }
  if (!know_duration || !position) return p;

  p.percent = std::clamp(*position / source_duration_seconds * 100.0, 0.0, 100.0);
  const double remaining = std::max(0.0, source_duration_seconds - *position);
  // A speed so small that the ETA overflows to infinity (a denormal "1e-320x") says nothing: fall back.
  if (block.speed && *block.speed > 0 && std::isfinite(remaining / *block.speed)) {
    p.eta_seconds = remaining / *block.speed;
  } else if (p.percent > 0 && wall > 0 && std::isfinite(wall * (100.0 - p.percent) / p.percent)) {
    p.eta_seconds = wall * (100.0 - p.percent) / p.percent;
  }
  return p;
}

}  // namespace framepress::media
