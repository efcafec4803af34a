#include "api/book_waiter.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace framepress::api {

namespace asio = boost::asio;

BookWaiter::BookWaiter(JobBook& book, asio::any_io_executor executor, const std::vector<VideoId>& ids)
    : book_(book), shared_(std::make_shared<Shared>(executor)) {
  std::unordered_set<VideoId> watched(ids.begin(), ids.end());
  std::weak_ptr<Shared> weak = shared_;
  handle_ = book_.listen([watched = std::move(watched), weak, executor](const VideoId& id) {
    if (!watched.contains(id)) return;
    auto shared = weak.lock();
    if (!shared) return;
    shared->changed = true;
    asio::post(executor, [weak] {
      if (auto s = weak.lock()) s->timer.cancel();
    });
  });
}

BookWaiter::~BookWaiter() { book_.unlisten(handle_); }

asio::awaitable<bool> BookWaiter::wait(std::chrono::steady_clock::duration timeout) {
  if (shared_->changed.exchange(false)) co_return true;
  shared_->timer.expires_after(timeout);
  boost::system::error_code ec;
  co_await shared_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return shared_->changed.exchange(false);
}

}  // namespace framepress::api
