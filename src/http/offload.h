#pragma once
// Running blocking work (object store calls, file I/O) from a coroutine without stalling the I/O threads.

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace framepress::http {

/// Runs `work()` on `pool` and resumes on the coroutine's own executor with its result (or exception).
template <class Work>
boost::asio::awaitable<std::invoke_result_t<Work>> offload(boost::asio::thread_pool& pool, Work work) {
  namespace asio = boost::asio;
  auto home = co_await asio::this_coro::executor;
  co_await asio::post(pool.get_executor(), asio::use_awaitable);
  std::exception_ptr failure;
  using Result = std::invoke_result_t<Work>;
  if constexpr (std::is_void_v<Result>) {
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
    co_await asio::post(home, asio::use_awaitable);
    if (failure) std::rethrow_exception(failure);
  } else {
    std::optional<Result> result;
    try {
      result.emplace(work());
    } catch (...) {
      failure = std::current_exception();
    }
    co_await asio::post(home, asio::use_awaitable);
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*result);
  }
}

}  // namespace framepress::http
