// One intrusive list for all of rill: the pending queue, write queues, fiber
// queues and DNS queries all link their objects through an embedded
// list_node, so linking never allocates and unlinking is O(1) from the node
// alone.
//
// The list is circular around a sentinel head: an empty list points at
// itself, and a node that is on no list has null links (list_linked() tells).
#ifndef RILL_CORE_LIST_H
#define RILL_CORE_LIST_H

#include <cstddef>

namespace rill::detail {

// The object that embeds `member` at `ptr`. Only for standard-layout types.
#define RILL_CONTAINER_OF(ptr, type, member) \
  (reinterpret_cast<type *>(reinterpret_cast<char *>(ptr) - offsetof(type, member)))

struct list_node {
  list_node *prev = nullptr;
  list_node *next = nullptr;
};

inline bool list_linked(const list_node *n) noexcept { return n->next != nullptr; }

struct list {
  list_node head;

  // constexpr: a list with static storage is empty from the start, before
  // any dynamic initialization runs (net's shared empty write queue).
  constexpr list() noexcept : head{&head, &head} {}
  list(const list &) = delete;
  list &operator=(const list &) = delete;

  bool empty() const noexcept { return head.next == &head; }
  list_node *front() const noexcept { return empty() ? nullptr : head.next; }

  void push_back(list_node *n) noexcept {
    n->prev = head.prev;
    n->next = &head;
    head.prev->next = n;
    head.prev = n;
  }

  list_node *pop_front() noexcept {
    list_node *n = front();
    if (n)
      remove(n);
    return n;
  }

  // Unlinks `n` from whatever list holds it; a node on no list is left alone.
  static void remove(list_node *n) noexcept {
    if (!list_linked(n))
      return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
  }

  // Moves every node of `from` to the end of this list, leaving `from` empty.
  void splice_back(list &from) noexcept {
    if (from.empty())
      return;
    list_node *first = from.head.next, *last = from.head.prev;
    first->prev = head.prev;
    head.prev->next = first;
    last->next = &head;
    head.prev = last;
    from.head.prev = from.head.next = &from.head;
  }

  // Moves every node of `from` to the front of this list, in order, leaving
  // `from` empty.
  void splice_front(list &from) noexcept {
    if (from.empty())
      return;
    list_node *first = from.head.next, *last = from.head.prev;
    last->next = head.next;
    head.next->prev = last;
    first->prev = &head;
    head.next = first;
    from.head.prev = from.head.next = &from.head;
  }
};

}  // namespace rill::detail

#endif
