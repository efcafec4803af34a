#include "api/access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include <toml++/toml.h>

#include "core/error.h"

namespace framepress::api {

bool Principal::may(Scope scope) const {
  if (anonymous || admin) return true;
  return scope == Scope::upload ? upload : scope == Scope::read ? read : false;
}

std::optional<Scope> parse_scope(std::string_view word) {
  if (word == "upload") return Scope::upload;
  if (word == "read") return Scope::read;
  if (word == "admin") return Scope::admin;
  return std::nullopt;
}

std::string sha256_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

std::string generate_token() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw Error(ErrorCode::internal, "the system has no randomness to make a token from");
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string token = "fp_";
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char b : bytes) {
    bits = (bits << 8) | b;
    count += 8;
    while (count >= 6) {
      token += kAlphabet[(bits >> (count - 6)) & 63];
      count -= 6;
    }
  }
  if (count > 0) token += kAlphabet[(bits << (6 - count)) & 63];
  return token;
}

AccessControl::AccessControl(std::vector<TokenEntry> tokens) : tokens_(std::move(tokens)) {}

AccessControl AccessControl::from_file(const std::filesystem::path& path) {
  auto fail = [&](const std::string& what) -> Error {
    return Error(ErrorCode::bad_request, "token file " + path.string() + ": " + what, "bad_config");
  };
  toml::table table;
  try {
    table = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    throw fail(std::string(e.description()));
  }
  std::vector<TokenEntry> tokens;
  const auto* list = table["token"].as_array();
  if (list == nullptr || list->empty()) throw fail("no [[token]] entries");
  for (const auto& node : *list) {
    const auto* t = node.as_table();
    if (t == nullptr) throw fail("each [[token]] must be a table");
    TokenEntry entry;
    entry.name = (*t)["name"].value_or(std::string());
    entry.sha256_hex = (*t)["sha256"].value_or(std::string());
    std::transform(entry.sha256_hex.begin(), entry.sha256_hex.end(), entry.sha256_hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (entry.name.empty()) throw fail("a token has no name");
    if (entry.sha256_hex.size() != 64 || entry.sha256_hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw fail("token '" + entry.name + "': sha256 must be 64 hex digits (see `framepress token`)");
    }
    if (const auto* scopes = (*t)["scopes"].as_array()) {
      for (const auto& s : *scopes) {
        auto scope = parse_scope(s.value_or(std::string()));
        if (!scope) throw fail("token '" + entry.name + "': scopes are upload, read and admin");
        entry.scopes.push_back(*scope);
      }
    }
    if (entry.scopes.empty()) throw fail("token '" + entry.name + "' has no scopes");
    tokens.push_back(std::move(entry));
  }
  return AccessControl(std::move(tokens));
}

Principal AccessControl::authenticate(const std::optional<std::string>& token) const {
  if (!enabled()) return Principal{.anonymous = true};
  if (!token || token->empty()) {
    throw Error(ErrorCode::unauthorized, "this server needs a token: send Authorization: Bearer <token>", "unauthorized");
  }
  const std::string presented = sha256_hex(*token);
  const TokenEntry* match = nullptr;
  for (const auto& entry : tokens_) {
    // Every entry is compared, in constant time, so the time taken says nothing about the hashes.
    if (CRYPTO_memcmp(entry.sha256_hex.data(), presented.data(), presented.size()) == 0) match = &entry;
  }
  if (match == nullptr) throw Error(ErrorCode::unauthorized, "the token is not known to this server", "unauthorized");
  Principal p;
  p.name = match->name;
  for (Scope s : match->scopes) {
    p.upload |= s == Scope::upload;
    p.read |= s == Scope::read;
    p.admin |= s == Scope::admin;
  }
  return p;
}

}  // namespace framepress::api
