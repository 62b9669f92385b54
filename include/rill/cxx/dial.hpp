/// @file
/// rill C++ API, part 4: dials and name lookups, each with one completion.
///
/// Include <rill.hpp>, not this file. The owner of a dial or a lookup
/// cancels it when destroyed, and its callable does not run; detach() lets
/// the operation complete on its own.
#ifndef RILL_CXX_DIAL_HPP
#define RILL_CXX_DIAL_HPP

#include "rill/cxx/net.hpp"

namespace rill {

namespace cxx_detail {

/// A handle that ends with one completion (a dial, a lookup): the owner's
/// destruction cancels it and mutes the callable; detach() lets it run.
template <class S, int (*Cancel)(decltype(S::h))>
class op_owner {
 public:
  op_owner() noexcept = default;
  /// Moves the owner; `other` is left empty.
  op_owner(op_owner &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  /// Cancels and mutes this owner's operation, then takes `other`'s.
  op_owner &operator=(op_owner &&other) noexcept {
    if (this != &other) {
      release();
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  op_owner(const op_owner &) = delete;
  op_owner &operator=(const op_owner &) = delete;
  ~op_owner() { release(); }

  /// False for an empty (default-constructed, moved-from or detached) owner.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  /// True until the completion has run.
  bool pending() const noexcept { return s_ != nullptr && s_->live; }

  /// Cancels: the completion then runs with errc::canceled, from the loop
  /// (unless it already failed otherwise). errc::closed once completed.
  std::error_code cancel() const noexcept {
    if (s_ == nullptr)
      return invalid();
    return to_error_code(s_->live ? Cancel(s_->h) : RILL_ECLOSED);
  }

  /// Lets the operation run to its completion without an owner.
  void detach() noexcept {
    if (s_ == nullptr)
      return;
    S *s = std::exchange(s_, nullptr);
    s->owned = false;
    release_if_unused(s);
  }

 protected:
  void release() noexcept {
    if (s_ == nullptr)
      return;
    S *s = std::exchange(s_, nullptr);
    s->owned = false;
    s->muted = true;
    if (s->live)
      Cancel(s->h);  // the completion comes, muted
    release_if_unused(s);
  }

  S *s_ = nullptr;
};

struct dial_state final : state_base {
  rill_dialer *h = nullptr;
  callback<void(conn, std::error_code, std::string_view)> fn;
};

inline void on_dialed(rill_dialer *d, rill_conn *c, int status, void *arg) {
  auto *s = static_cast<dial_state *>(arg);
  dispatch guard(s);
  s->live = false;
  s->h = nullptr;
  std::error_code ec = to_error_code(status);
  conn owner;
  if (c != nullptr)
    owner = conn_access::adopt(c, ec);
  if (s->muted)
    return;  // `owner`, if any, closes on the way out
  char what[320] = "";
  if (ec && rill_dialer_format_error(d, ec.value(), what, sizeof what) < 0)
    what[0] = '\0';
  s->fn(std::move(owner), ec, std::string_view(what));
}

struct dns_state final : state_base {
  rill_dns_query *h = nullptr;
  callback<void(std::error_code, const rill_dns_result *)> fn;
};

inline void on_resolved(rill_dns_query *, int status, const rill_dns_result *result, void *arg) {
  auto *s = static_cast<dns_state *>(arg);
  dispatch guard(s);
  s->live = false;
  s->h = nullptr;
  if (!s->muted)
    s->fn(to_error_code(status), status == 0 ? result : nullptr);
}

}  // namespace cxx_detail

// ---- dialing --------------------------------------------------------------------

/// A dial in flight (rill_dial). Destroying it cancels the dial and its
/// callable does not run; detach() lets the dial complete on its own.
class dialer : public cxx_detail::op_owner<cxx_detail::dial_state, &rill_dialer_cancel> {
 private:
  template <class F>
  friend dialer dial(base_ref, zstring, zstring, F &&, const net_options &, std::error_code &);
};

/// Connects to `address` ("127.0.0.1:7000", "localhost:7000": names are
/// resolved on the base) and calls `on_done(conn, ec)` once, from the
/// loop; the callable may take a third std::string_view argument: Go's
/// message for a failure ("dial tcp 127.0.0.1:1: connect: connection
/// refused"), empty on success. Keep the returned dialer (or detach() it):
/// dropping it cancels the dial. Errors met at once (a malformed address)
/// are returned through `ec` or thrown, and no callback follows. @{
template <class F>
[[nodiscard]] dialer dial(base_ref base, zstring network, zstring address, F &&on_done,
                          const net_options &options, std::error_code &ec) {
  using C = std::decay_t<F>;
  dialer d;
  std::unique_ptr<cxx_detail::dial_state> s(new cxx_detail::dial_state);
  if constexpr (std::is_invocable_v<C &, conn, std::error_code, std::string_view>) {
    s->fn = std::forward<F>(on_done);
  } else {
    static_assert(std::is_invocable_v<C &, conn, std::error_code>,
                  "rill: on_done takes (rill::conn, std::error_code[, std::string_view])");
    s->fn = [g = std::forward<F>(on_done)](conn c, std::error_code e, std::string_view) mutable {
      g(std::move(c), e);
    };
  }
  ec = to_error_code(rill_dial(base.get(), network.c_str(), address.c_str(), &options,
                               &cxx_detail::on_dialed, s.get(), &s->h));
  if (!ec)
    d.s_ = s.release();
  return d;
}

template <class F>
[[nodiscard]] dialer dial(base_ref base, zstring network, zstring address, F &&on_done,
                          const net_options &options = net_options{}) {
  std::error_code ec;
  dialer d = dial(base, network, address, std::forward<F>(on_done), options, ec);
  cxx_detail::throw_if_error(ec, "rill_dial");
  return d;
}
/// @}

// ---- name lookups -------------------------------------------------------------

/// The answer of a lookup: every address (IPv6 and IPv4, port 0) and the
/// canonical name. Valid during the callback only.
class dns_result {
 public:
  /// A view of `r`.
  explicit dns_result(const rill_dns_result *r) noexcept : r_(r) {}
  /// The canonical name.
  std::string_view canonical_name() const noexcept {
    return r_ != nullptr && r_->canonical_name != nullptr ? std::string_view(r_->canonical_name)
                                                          : std::string_view();
  }
  /// The addresses, as a container of sockaddr_storage. @{
  std::size_t size() const noexcept { return r_ != nullptr ? r_->count : 0; }
  bool empty() const noexcept { return size() == 0; }
  const sockaddr_storage *begin() const noexcept { return r_ != nullptr ? r_->addrs : nullptr; }
  const sockaddr_storage *end() const noexcept { return begin() + size(); }
  const sockaddr_storage &operator[](std::size_t i) const noexcept { return r_->addrs[i]; }
  /// @}
  /// Address `i` Go's way, without port ("127.0.0.1:0" is written "127.0.0.1").
  std::string format(std::size_t i) const {
    char buf[RILL_ADDRSTRLEN];
    const sockaddr_storage &a = (*this)[i];
    const socklen_t len = a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    const int n = rill_addr_format(reinterpret_cast<const sockaddr *>(&a), len, buf, sizeof buf);
    if (n < 0)
      return std::string();
    std::string s(buf, static_cast<std::size_t>(n));
    const std::size_t colon = s.rfind(':');  // the ":0" port
    s.erase(colon);
    if (!s.empty() && s.front() == '[')
      s = s.substr(1, s.size() - 2);
    return s;
  }

 private:
  const rill_dns_result *r_;
};

/// A lookup in flight (rill_resolve); like dialer, dropping it cancels.
class dns_query : public cxx_detail::op_owner<cxx_detail::dns_state, &rill_dns_query_cancel> {
 private:
  template <class F>
  friend dns_query resolve(base_ref, zstring, int, F &&, const rill_dns_config *, std::error_code &);
};

/// Resolves `host` for `family` (AF_UNSPEC, AF_INET, AF_INET6) and calls
/// `on_done(ec, const rill::dns_result &)` once, from the loop. `config`
/// overrides the base's resolver settings (nullptr: the base's).
template <class F>
[[nodiscard]] dns_query resolve(base_ref base, zstring host, int family, F &&on_done,
                                const rill_dns_config *config, std::error_code &ec) {
  static_assert(std::is_invocable_v<std::decay_t<F> &, std::error_code, const dns_result &>,
                "rill: on_done takes (std::error_code, const rill::dns_result &)");
  dns_query q;
  std::unique_ptr<cxx_detail::dns_state> s(new cxx_detail::dns_state);
  s->fn = [g = std::forward<F>(on_done)](std::error_code e, const rill_dns_result *r) mutable {
    g(e, dns_result(r));
  };
  ec = to_error_code(rill_resolve(base.get(), host.c_str(), family, config,
                                  &cxx_detail::on_resolved, s.get(), &s->h));
  if (!ec)
    q.s_ = s.release();
  return q;
}

/// The same, throwing std::system_error for an error met at once.
template <class F>
[[nodiscard]] dns_query resolve(base_ref base, zstring host, int family, F &&on_done,
                                const rill_dns_config *config = nullptr) {
  std::error_code ec;
  dns_query q = resolve(base, host, family, std::forward<F>(on_done), config, ec);
  cxx_detail::throw_if_error(ec, "rill_resolve");
  return q;
}

}  // namespace rill

#endif  // RILL_CXX_DIAL_HPP
