// A growable array of trivially copyable values on rill's allocator. The
// standard containers would allocate through operator new, out of reach of
// rill_set_allocator(), and hide when they allocate; this one grows only in
// push()/reserve() and never shrinks, so a steady state allocates nothing.
#ifndef RILL_CORE_VEC_H
#define RILL_CORE_VEC_H

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "core/alloc.h"

namespace rill::detail {

template <typename T>
class vec {
  static_assert(std::is_trivially_copyable_v<T>, "vec holds plain values");

 public:
  vec() = default;
  vec(const vec &) = delete;
  vec &operator=(const vec &) = delete;
  ~vec() { mem_free(data_); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T *data() { return data_; }
  T &operator[](size_t i) { return data_[i]; }
  const T &operator[](size_t i) const { return data_[i]; }
  T &back() { return data_[size_ - 1]; }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }

  // False when out of memory; the contents are then unchanged.
  bool reserve(size_t n) {
    if (n <= capacity_)
      return true;
    size_t cap = capacity_ ? capacity_ : 8;
    while (cap < n)
      cap *= 2;
    void *p = mem_realloc(data_, cap * sizeof(T));
    if (!p)
      return false;
    data_ = static_cast<T *>(p);
    capacity_ = cap;
    return true;
  }

  // Grows to n elements, zero-filling the new ones.
  bool resize_zeroed(size_t n) {
    if (n <= size_)
      return true;
    if (!reserve(n))
      return false;
    std::memset(static_cast<void *>(data_ + size_), 0, (n - size_) * sizeof(T));
    size_ = n;
    return true;
  }

  bool push(const T &value) {
    if (size_ == capacity_ && !reserve(size_ + 1))
      return false;
    data_[size_++] = value;
    return true;
  }

  void swap(vec &other) {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  T *data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace rill::detail

#endif
