#pragma once
// HTTP Range requests (RFC 9110 §14) for downloads and players that seek. Pure.

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "store/object_store.h"

namespace framepress::api {

struct WholeObject {};
struct Unsatisfiable {};
/// What a Range header asks of an object of `size` bytes: the whole of it (no header, a header we do not
/// serve such as several ranges, or a malformed one, which RFC 9110 says to ignore), one range, or
/// nothing it has (→ 416).
using RangeRequest = std::variant<WholeObject, ByteRange, Unsatisfiable>;
RangeRequest parse_range(std::optional<std::string_view> header, std::uint64_t size);

}  // namespace framepress::api
