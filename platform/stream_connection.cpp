// The connection layer: see stream_connection.hpp.
#include "platform/stream_connection.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace platform {

std::uint64_t backoff_delay_ns(std::uint32_t attempt, std::uint64_t min_ns, std::uint64_t max_ns,
                               vsr::xoshiro256& random) noexcept {
    max_ns = std::max(min_ns, max_ns);
    std::uint64_t ceiling = min_ns;
    for (std::uint32_t i = 0; i < attempt && ceiling < max_ns; i++) {
        ceiling = ceiling > max_ns / 2 ? max_ns : ceiling * 2;
    }
    ceiling = std::min(ceiling, max_ns);
    // Jitter spreads reconnects of many peers that lost the same node at the same moment.
    const std::uint64_t floor = std::max(min_ns, ceiling / 2);
    return vsr::uniform_between(random, floor, ceiling);
}

// ---- receive_buffer ------------------------------------------------------------------------------

std::span<std::uint8_t> receive_buffer::window(std::size_t size_bytes) {
    if (begin_ == end_) {
        begin_ = end_ = 0;
    } else if (begin_ > 0) {
        std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (bytes_.size() < size_bytes) {
        bytes_.reserve(size_bytes);
        bytes_.resize(size_bytes);
    }
    return std::span(bytes_).subspan(end_);
}

void receive_buffer::shrink_to(std::size_t size_bytes) {
    if (bytes_.size() <= size_bytes || end_ - begin_ > size_bytes) return;
    std::vector<std::uint8_t> smaller;
    smaller.reserve(size_bytes);
    smaller.assign(bytes_.begin() + static_cast<std::ptrdiff_t>(begin_),
                   bytes_.begin() + static_cast<std::ptrdiff_t>(end_));
    smaller.resize(size_bytes);
    end_ -= begin_;
    begin_ = 0;
    bytes_ = std::move(smaller);
}

// ---- stream_connection ---------------------------------------------------------------------------

stream_connection::stream_connection(connection_pool& pool, socket_handle socket, send_queue_options send_options)
    : pool_(pool), socket_(socket), send_options_(send_options) {
    opened_ns_ = now_ns();
    last_receive_ns_ = opened_ns_;
    connect_completion_.callback = &on_connect_completion;
    recv_completion_.callback = &on_recv_completion;
    send_completion_.callback = &on_send_completion;
    post_completion_.callback = &on_post_completion;
    for (completion* c : {&connect_completion_, &recv_completion_, &send_completion_, &post_completion_}) {
        c->context = this;
    }
    send_options_.send_piece_bytes_max = std::max<std::size_t>(send_options_.send_piece_bytes_max, 1);
}

std::uint64_t stream_connection::now_ns() const { return pool_.loop_.monotonic_ns(); }

void stream_connection::connect(const socket_address& address) {
    if (!open_ || connect_pending_) return;
    connect_pending_ = true;
    pool_.loop_.connect(socket_, address, connect_completion_);
}

void stream_connection::receive(std::span<std::uint8_t> window) {
    if (!open_ || recv_pending_) return;
    assert(!window.empty());
    recv_pending_ = true;
    pool_.loop_.recv(socket_, window, recv_completion_);
}

void stream_connection::post() {
    if (!open_ || post_pending_) return;
    post_pending_ = true;
    pool_.loop_.timeout(0, post_completion_);
}

void stream_connection::close(std::uint8_t reason) {
    if (!open_) return;
    open_ = false;
    close_reason_ = reason;
    pool_.loop_.close(socket_);  // cancels connect, recv and send; their callbacks come later
    socket_ = invalid_socket;
    if (post_pending_) pool_.loop_.cancel(post_completion_);
    pool_.open_connections_--;
    pool_.closed_unreleased_++;
    // Queued bytes stay until release: a completion backend may still read the item in flight.
    on_closed(reason);
}

// Each loop callback holds the pool's scope, so the connection is freed only after it returns.
void stream_connection::on_connect_completion(completion& c) {
    auto* self = static_cast<stream_connection*>(c.context);
    connection_pool::callback_scope scope(self->pool_);
    self->connect_pending_ = false;
    if (!self->open_) return;
    if (c.error == io_error::none) self->last_receive_ns_ = self->now_ns();
    self->on_connected(c.error);
}

void stream_connection::on_recv_completion(completion& c) {
    auto* self = static_cast<stream_connection*>(c.context);
    connection_pool::callback_scope scope(self->pool_);
    self->recv_pending_ = false;
    if (!self->open_) return;
    if (c.error == io_error::none) self->last_receive_ns_ = self->now_ns();
    self->on_received(c.error, c.bytes);
}

void stream_connection::on_post_completion(completion& c) {
    auto* self = static_cast<stream_connection*>(c.context);
    connection_pool::callback_scope scope(self->pool_);
    self->post_pending_ = false;
    if (!self->open_) return;
    if (self->frames_done_unreported_ != 0) {
        const std::size_t frames = std::exchange(self->frames_done_unreported_, 0);
        self->on_sent(io_error::none, 0, frames);
        if (!self->open_) return;
    }
    self->on_posted();
}

// ---- the send queue ------------------------------------------------------------------------------

void stream_connection::queue_copy(std::span<const std::uint8_t> bytes, std::size_t frames) {
    if (!open_) return;
    if (bytes.empty()) return queue_mark(frames);
    const bool back_in_flight = send_pending_ && queue_.size() == 1;
    if (!queue_.empty() && queue_.back().borrowed.empty() && !back_in_flight && queue_.back().offset == 0 &&
        queue_.back().owned.size() + bytes.size() <= send_options_.coalesce_bytes_max) {
        send_item& back = queue_.back();
        back.owned.insert(back.owned.end(), bytes.begin(), bytes.end());
        back.frames += frames;
    } else {
        // Copied into the kept buffer first (nothing is queued if that throws), then the item is
        // built in place around it: no temporary item to move into the deque and destroy.
        spare_.assign(bytes.begin(), bytes.end());
        send_item& item = queue_.emplace_back();
        item.owned.swap(spare_);
        item.frames = frames;
    }
    queued_bytes_ += bytes.size();
}

void stream_connection::queue_borrowed(std::span<const std::uint8_t> bytes, std::shared_ptr<const void> hold,
                                       std::size_t frames) {
    if (!open_) return;
    if (bytes.empty()) return queue_mark(frames);
    send_item item;
    item.borrowed = bytes;
    item.hold = std::move(hold);
    item.frames = frames;
    queue_.push_back(std::move(item));
    queued_bytes_ += bytes.size();
}

void stream_connection::queue_mark(std::size_t frames) {
    if (!open_ || frames == 0) return;
    if (!queue_.empty()) {
        queue_.back().frames += frames;  // done with the last bytes queued before it
        return;
    }
    // Nothing to wait for, but never reported inside the caller's call: from the loop.
    frames_done_unreported_ += frames;
    post();
}

void stream_connection::flush() {
    if (!open_ || send_pending_ || queue_.empty()) return;
    const send_item& front = queue_.front();
    const std::span<const std::uint8_t> bytes = front.bytes();
    assert(front.offset < bytes.size());
    const std::size_t size = std::min(send_options_.send_piece_bytes_max, bytes.size() - front.offset);
    send_pending_ = true;
    send_started_ns_ = now_ns();
    pool_.loop_.send(socket_, bytes.subspan(front.offset, size), send_completion_);
}

void stream_connection::on_send_completion(completion& c) {
    auto* self = static_cast<stream_connection*>(c.context);
    connection_pool::callback_scope scope(self->pool_);
    self->send_pending_ = false;
    self->handle_send();
}

void stream_connection::handle_send() {
    if (!open_) {
        queue_.clear();  // the loop is done with the bytes: borrowed ones may go now
        return;
    }
    // Read before flush(), which restarts the completion.
    const io_error error = send_completion_.error;
    const std::size_t bytes = send_completion_.bytes;
    if (error != io_error::none) {
        on_sent(error, bytes, 0);
        return;
    }
    send_item& front = queue_.front();
    front.offset += bytes;
    queued_bytes_ -= bytes;
    std::size_t frames = 0;
    if (front.offset == front.bytes().size()) {
        frames = front.frames;
        finish_front();
    }
    // Sending again first: the socket is busy while the protocol handles what was sent.
    flush();
    on_sent(io_error::none, bytes, frames);
}

void stream_connection::finish_front() {
    send_item& front = queue_.front();
    if (front.borrowed.empty() && front.owned.capacity() <= send_options_.keep_bytes_max &&
        front.owned.capacity() > spare_.capacity()) {
        front.owned.clear();
        spare_ = std::move(front.owned);
    }
    queue_.pop_front();
}

// ---- connection_pool -----------------------------------------------------------------------------

connection_pool::connection_pool(event_loop& loop, connection_pool_options options)
    : loop_(loop),
      options_(options),
      listener_(options.listen_socket),
      accept_completion_(std::make_unique<completion>()),
      tick_completion_(std::make_unique<completion>()) {
    options_.tick_ns = std::max<std::uint64_t>(options_.tick_ns, 1'000'000);
    accept_completion_->callback = &on_accept_completion;
    accept_completion_->context = this;
    tick_completion_->callback = &on_tick_completion;
    tick_completion_->context = this;
}

connection_pool::~connection_pool() {
    assert(callback_depth_ == 0 && "connection_pool destroyed from inside one of its callbacks");
    shutdown(0);
    drain();
    assert(drained() && "connection_pool destroyed with operations still pending");
}

bool connection_pool::listen(const socket_address& address, io_error& error) {
    error = io_error::none;
    if (listener_ == invalid_socket) listener_ = loop_.listen(address, options_.listen_backlog, error);
    return listener_ != invalid_socket;
}

std::uint16_t connection_pool::port() const { return listener_ == invalid_socket ? 0 : loop_.local_port(listener_); }

void connection_pool::start(std::uint64_t first_delay_ns) {
    if (stopping_) return;
    accept_next();
    tick_pending_ = true;
    loop_.timeout(first_delay_ns, *tick_completion_);
}

void connection_pool::shutdown(std::uint8_t reason) {
    if (stopping_) return;
    stopping_ = true;
    if (listener_ != invalid_socket) {
        loop_.close(listener_);  // cancels the pending accept
        listener_ = invalid_socket;
    }
    if (tick_pending_) loop_.cancel(*tick_completion_);
    // By index: on_closed may call into the protocol, but nothing adds connections now.
    for (std::size_t i = 0; i < connections_.size(); i++) connections_[i]->close(reason);
    if (callback_depth_ == 0) sweep();
}

bool connection_pool::drained() const noexcept { return !accept_pending_ && !tick_pending_ && connections_.empty(); }

void connection_pool::drain() {
    // Every operation was cancelled by shutdown(): a few iterations hand them back.
    for (int i = 0; i < 1000 && !drained(); i++) {
        sweep();
        if (drained()) break;
        loop_.run_once(0);
    }
}

void connection_pool::shutdown_and_drain(std::uint8_t reason) {
    shutdown(reason);
    drain();
    assert(drained() && "connection_pool: operations still pending after shutdown");
}

void connection_pool::accept_next() {
    if (stopping_ || listener_ == invalid_socket || accept_pending_) return;
    accept_pending_ = true;
    loop_.accept(listener_, *accept_completion_);
}

void connection_pool::on_accept_completion(completion& c) {
    auto* self = static_cast<connection_pool*>(c.context);
    callback_scope scope(*self);
    self->accept_pending_ = false;
    if (self->stopping_ || c.error == io_error::cancelled) {
        if (c.error == io_error::none) self->loop_.close(c.accepted);  // raced with shutdown
        return;
    }
    if (c.error != io_error::none) {
        // Out of descriptors or similar: retrying at once would spin, so the tick retries.
        self->accept_paused_ = true;
        if (self->on_accept) self->on_accept(accept_outcome::failed, invalid_socket);
        return;
    }
    if (self->open_connections_ >= self->options_.connections_max) {
        self->loop_.close(c.accepted);
        if (self->on_accept) self->on_accept(accept_outcome::refused, invalid_socket);
    } else if (self->on_accept) {
        self->on_accept(accept_outcome::accepted, c.accepted);
    } else {
        self->loop_.close(c.accepted);
    }
    self->accept_next();
}

void connection_pool::on_tick_completion(completion& c) {
    auto* self = static_cast<connection_pool*>(c.context);
    callback_scope scope(*self);
    self->tick_pending_ = false;
    if (self->stopping_) return;
    const std::uint64_t now = self->loop_.monotonic_ns();
    self->close_overdue_connects(now);
    if (self->on_tick && !self->stopping_) self->on_tick(now);
    if (self->stopping_) return;  // the tick (or a callback it ran) shut down
    if (self->accept_paused_) {
        self->accept_paused_ = false;
        self->accept_next();
    }
    self->tick_pending_ = true;
    self->loop_.timeout(self->options_.tick_ns, *self->tick_completion_);
}

void connection_pool::close_overdue_connects(std::uint64_t now) {
    // By index: on_closed may call into the protocol, which adds no connections from there.
    for (std::size_t i = 0; i < connections_.size(); i++) {
        stream_connection& conn = *connections_[i];
        if (conn.open() && conn.connecting() && now - conn.opened_ns() > options_.connect_timeout_ns) {
            conn.close(options_.connect_timeout_reason);
        }
    }
}

void connection_pool::sweep() {
    if (closed_unreleased_ == 0) return;
    const std::size_t before = connections_.size();
    std::erase_if(connections_, [](const auto& conn) { return conn->released(); });
    closed_unreleased_ -= before - connections_.size();
}

}  // namespace platform
