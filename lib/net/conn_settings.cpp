// The base's table of conn_settings (net_impl.h): connections with equal
// callback tables and sizes share one block, found by hashing its bytes.
//
// Every accepted connection looks up two blocks (conn_create's, then
// rill_conn_start's), so the lookup is a hash probe, never a scan of the
// base's blocks: a server whose connections each have their own sizes
// would otherwise pay for every live connection on every accept.
//
// Blocks no connection uses are kept, up to settings_unused_max, on a list
// in the order they were let go; one more evicts the oldest. So a server's
// own blocks, let go and taken again on every accept (a listener's
// creation block goes unused at each rill_conn_start), stay however many
// others came and went, while a program that makes ever new ones frees
// them.
#include <cstring>
#include <type_traits>

#include "core/alloc.h"
#include "net/net_impl.h"

namespace rill::detail {
namespace {

constexpr size_t settings_unused_max = 16;

// The key is the bytes before `refs`; comparing and hashing them as bytes
// is only sound if none of them is padding.
constexpr size_t key_bytes = offsetof(conn_settings, refs);
static_assert(std::has_unique_object_representations_v<rill_conn_events>,
              "the callback table has padding: hash and compare its fields instead");
static_assert(offsetof(conn_settings, read_max) == sizeof(rill_conn_events) &&
                  key_bytes == offsetof(conn_settings, read_max) + 4 * sizeof(uint32_t),
              "padding before conn_settings::refs would be compared");
static_assert(key_bytes % sizeof(uint64_t) == 0, "the key is hashed a word at a time");

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint32_t hash_key(const conn_settings &s) {
  const auto *bytes = reinterpret_cast<const unsigned char *>(&s);
  uint64_t h = key_bytes;
  for (size_t i = 0; i < key_bytes; i += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, bytes + i, sizeof word);
    h = mix(h ^ word);
  }
  return static_cast<uint32_t>(h);
}

bool same_key(const conn_settings &a, const conn_settings &b) {
  return std::memcmp(&a, &b, key_bytes) == 0;
}

conn_settings *unused_of(list_node *n) { return RILL_CONTAINER_OF(n, conn_settings, unused_link); }

}  // namespace

conn_settings_table::~conn_settings_table() {
  for (size_t i = 0; i < capacity_; i++)
    destroy(slots_[i]);
  mem_free(slots_);
}

conn_settings *conn_settings_table::find(const conn_settings &want, uint32_t hash) const {
  if (!capacity_)
    return nullptr;
  for (size_t i = hash & (capacity_ - 1);; i = (i + 1) & (capacity_ - 1)) {
    conn_settings *s = slots_[i];
    if (!s || (s->hash == hash && same_key(*s, want)))
      return s;
  }
}

void conn_settings_table::place(conn_settings *s) {
  size_t i = s->hash & (capacity_ - 1);
  while (slots_[i])
    i = (i + 1) & (capacity_ - 1);
  slots_[i] = s;
}

// Room for one more block at most half full, so probes stay short.
bool conn_settings_table::reserve_one() {
  if (2 * (count_ + 1) <= capacity_)
    return true;
  size_t grown = capacity_ ? 2 * capacity_ : 32;
  auto **slots = static_cast<conn_settings **>(mem_alloc(grown * sizeof(conn_settings *)));
  if (!slots)
    return false;
  std::memset(static_cast<void *>(slots), 0, grown * sizeof(conn_settings *));
  conn_settings **old = slots_;
  size_t old_capacity = capacity_;
  slots_ = slots;
  capacity_ = grown;
  for (size_t i = 0; i < old_capacity; i++)
    if (old[i])
      place(old[i]);
  mem_free(old);
  return true;
}

// Linear probing removal: the blocks after the hole that probed past it
// move back into it, so no probe stops early at a hole.
void conn_settings_table::erase(const conn_settings *s) {
  size_t mask = capacity_ - 1;
  size_t hole = s->hash & mask;
  while (slots_[hole] != s)
    hole = (hole + 1) & mask;
  for (size_t i = (hole + 1) & mask; slots_[i]; i = (i + 1) & mask) {
    size_t home = slots_[i]->hash & mask;
    // Whether `home` lies cyclically in (hole, i]: then it stays.
    bool stays = hole < i ? (hole < home && home <= i) : (hole < home || home <= i);
    if (!stays) {
      slots_[hole] = slots_[i];
      hole = i;
    }
  }
  slots_[hole] = nullptr;
  count_--;
}

const conn_settings *conn_settings_table::intern(const conn_settings &want) {
  uint32_t hash = hash_key(want);
  if (conn_settings *found = find(want, hash)) {
    if (found->refs++ == 0) {
      list::remove(&found->unused_link);
      unused_count_--;
    }
    return found;
  }
  if (!reserve_one())
    return nullptr;
  conn_settings *made = make<conn_settings>();
  if (!made)
    return nullptr;
  std::memcpy(static_cast<void *>(made), &want, key_bytes);
  made->refs = 1;
  made->hash = hash;
  place(made);
  count_++;
  return made;
}

void conn_settings_table::release(const conn_settings *held) {
  auto *s = const_cast<conn_settings *>(held);
  if (--s->refs)
    return;
  unused_.push_back(&s->unused_link);
  if (++unused_count_ <= settings_unused_max)
    return;
  conn_settings *oldest = unused_of(unused_.pop_front());
  unused_count_--;
  erase(oldest);
  destroy(oldest);
}

const conn_settings *conn_settings_intern(rill_base *base, const conn_settings &want) {
  net_state *net = net_get(base);
  return net ? net->settings.intern(want) : nullptr;
}

void conn_settings_release(rill_base *base, const conn_settings *s) {
  static_cast<net_state *>(base->net)->settings.release(s);
}

}  // namespace rill::detail
