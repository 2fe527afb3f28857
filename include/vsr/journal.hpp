// The journal: a persistent replica's durable state over a Storage (vsr/storage.hpp), and its
// recovery after a restart.
//
// Layout:
// - superblock zone: superblock_copies copies of the superblock, each checksummed, with a
//   sequence number; the valid copy with the highest sequence wins. It holds the view, the last
//   normal view, the durable checkpoint (zone, op, tag, checksum, size), and the log epoch.
// - journal_bodies: slot op % log_entries_max holds record op: a 64-byte record header, then
//   the entry. journal_headers: the same header again, in a dense ring (the redundant copy).
// - checkpoint_0/1: images; a new one goes to the zone the superblock does not name.
//
// A record header: u64 checksum (of bytes 8..80) | u64 body checksum | u64 op | u64 view (tag)
//   | u64 parent (the checksum of record op - 1) | u64 epoch | u32 body size | u32 magic
//   | u32 cluster | u8 replica | 3 zero bytes | u64 commit | 8 zero bytes
// `commit`: an op known committed when the entry was appended (the prepare's commit number), so
// a restarted replica knows which of its entries are committed: the uncommitted rest is then at
// most pipeline_max entries, as a view change needs.
//
// Order of writes in one flush (each step synced before the next begins):
//   1. entry bodies appended in this epoch, and checkpoint images;
//   2. if the log was truncated or replaced: a superblock with a new epoch, saying that records
//      after epoch_start_op count only if they carry it (so stale records past a truncation
//      never come back, even where a new record was lost);
//   3. bodies appended after that truncation;
//   4. the redundant headers of every body written, and the superblock if the view or the
//      checkpoint changed. When only entries were appended, these headers are synced by the
//      next flush's step 1, with the bodies appended meanwhile (one sync per flush under load).
// Only then does the replica send what it decided (vsr/replica.hpp, flush()), except a primary's
// prepares, which wait only for the view (view_durable; see replica.hpp, emit()).
//
// Recovery walks from the checkpoint: record op must have the right op, chain to the record
// before it (parent), and carry a valid epoch. A body that does not check out is lost if its
// redundant header does (the header was written only after the body was durable: the body was
// damaged after the fact), and the replica must not vote with that log: damaged. Where neither
// does, the log ends (a write that never completed, so never acknowledged). A redundant header of
// the current epoch past that end also means damage: its body, or one before it, was durable
// once.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/checkpoint.hpp"
#include "vsr/checksum.hpp"
#include "vsr/config.hpp"
#include "vsr/log_entry.hpp"
#include "vsr/storage.hpp"

namespace vsr {

inline constexpr std::size_t record_header_size = 80;
inline constexpr std::uint32_t record_magic = 0x4C'52'4E'4A;  // "JNRL" (LE)
inline constexpr std::size_t superblock_copies = 4;
inline constexpr std::size_t superblock_copy_size = 512;
inline constexpr std::uint64_t superblock_magic = 0x31'4B'4C'42'52'50'55'53;  // "SUPRBLK1" (LE)

struct record_header {
    std::uint64_t checksum = 0;
    std::uint64_t body_checksum = 0;
    std::uint64_t op = 0;
    std::uint64_t view = 0;
    std::uint64_t parent = 0;
    std::uint64_t epoch = 0;
    std::uint32_t body_size = 0;
    std::uint32_t cluster = 0;
    std::uint8_t replica = 0;
    std::uint64_t commit = 0;
};

inline void encode_record_header(const record_header& h, std::span<std::uint8_t, record_header_size> out) noexcept {
    std::fill(out.begin(), out.end(), std::uint8_t{0});
    store_le64(out.data() + 8, h.body_checksum);
    store_le64(out.data() + 16, h.op);
    store_le64(out.data() + 24, h.view);
    store_le64(out.data() + 32, h.parent);
    store_le64(out.data() + 40, h.epoch);
    store_le32(out.data() + 48, h.body_size);
    store_le32(out.data() + 52, record_magic);
    store_le32(out.data() + 56, h.cluster);
    out[60] = h.replica;
    store_le64(out.data() + 64, h.commit);
    store_le64(out.data(), checksum(std::span<const std::uint8_t>(out).subspan(8), h.cluster));
}

/// False unless the bytes are an intact record header of this cluster and replica.
inline bool decode_record_header(std::span<const std::uint8_t> bytes, std::uint32_t cluster, std::uint8_t replica,
                                 record_header& out) noexcept {
    if (bytes.size() < record_header_size) return false;
    const std::uint8_t* p = bytes.data();
    if (load_le32(p + 52) != record_magic || load_le32(p + 56) != cluster || p[60] != replica) return false;
    if (p[61] != 0 || p[62] != 0 || p[63] != 0 || load_le64(p + 72) != 0) return false;
    out.checksum = load_le64(p);
    if (out.checksum != checksum(bytes.subspan(8, record_header_size - 8), cluster)) return false;
    out.body_checksum = load_le64(p + 8);
    out.op = load_le64(p + 16);
    out.view = load_le64(p + 24);
    out.parent = load_le64(p + 32);
    out.epoch = load_le64(p + 40);
    out.body_size = load_le32(p + 48);
    out.commit = load_le64(p + 64);
    out.cluster = cluster;
    out.replica = replica;
    return true;
}

/// superblock::checkpoint_zone of a checkpoint whose image the state machine's own store keeps
/// (vsr::state_machine_with_stored_state): no checkpoint zone holds it.
inline constexpr std::uint8_t checkpoint_in_machine = 2;

struct superblock {
    std::uint64_t sequence = 0;  // 0: none
    std::uint32_t cluster = 0;
    std::uint8_t replica = 0;
    std::uint8_t replica_count = 0;
    std::uint64_t log_slots = 0;  // layout: a restart with another configuration is refused
    std::uint64_t body_slot_size = 0;
    std::uint64_t view = 0;
    std::uint64_t last_normal_view = 0;
    std::uint64_t epoch = 0;
    std::uint64_t epoch_start_op = 0;  // records after it count only with this epoch
    std::uint64_t start_checksum = 0;  // record checksum at checkpoint_op (0: none, e.g. restored)
    std::uint64_t checkpoint_op = 0;   // 0: none (the empty state)
    std::uint64_t checkpoint_view = 0;
    std::uint64_t checkpoint_timestamp_ns = 0;
    std::uint64_t checkpoint_checksum = 0;
    std::uint64_t checkpoint_size = 0;
    std::uint8_t checkpoint_zone = 0;  // 0 or 1, or checkpoint_in_machine
    std::uint8_t recovering = 0;       // 1: what is on disk is not to be trusted (see journal)
};

inline void encode_superblock(const superblock& s, std::vector<std::uint8_t>& out) {
    out.assign(superblock_copy_size, 0);
    std::vector<std::uint8_t> fields;
    byte_writer w(fields);
    w.u64(superblock_magic);
    w.u64(s.sequence);
    w.u32(s.cluster);
    w.u8(s.replica);
    w.u8(s.replica_count);
    w.u8(s.checkpoint_zone);
    w.u8(s.recovering);
    for (const std::uint64_t v :
         {s.log_slots, s.body_slot_size, s.view, s.last_normal_view, s.epoch, s.epoch_start_op, s.start_checksum,
          s.checkpoint_op, s.checkpoint_view, s.checkpoint_timestamp_ns, s.checkpoint_checksum, s.checkpoint_size}) {
        w.u64(v);
    }
    std::copy(fields.begin(), fields.end(), out.begin() + 8);
    store_le64(out.data(), checksum(std::span<const std::uint8_t>(out).subspan(8), s.cluster));
}

inline bool decode_superblock(std::span<const std::uint8_t> copy, std::uint32_t cluster, superblock& s) noexcept {
    if (copy.size() != superblock_copy_size || load_le64(copy.data()) != checksum(copy.subspan(8), cluster)) {
        return false;
    }
    byte_reader r(copy.subspan(8));
    std::uint64_t magic = 0;
    if (!(r.read_u64(magic) && magic == superblock_magic && r.read_u64(s.sequence) && r.read_u32(s.cluster) &&
          r.read_u8(s.replica) && r.read_u8(s.replica_count) && r.read_u8(s.checkpoint_zone) &&
          r.read_u8(s.recovering))) {
        return false;
    }
    for (std::uint64_t* v : {&s.log_slots, &s.body_slot_size, &s.view, &s.last_normal_view, &s.epoch, &s.epoch_start_op,
                             &s.start_checksum, &s.checkpoint_op, &s.checkpoint_view, &s.checkpoint_timestamp_ns,
                             &s.checkpoint_checksum, &s.checkpoint_size}) {
        if (!r.read_u64(*v)) return false;
    }
    return s.cluster == cluster && s.checkpoint_zone <= checkpoint_in_machine && s.recovering <= 1 && s.sequence > 0;
}

/// What a restart finds on disk.
enum class journal_state : std::uint8_t {
    empty,    // no superblock at all: a new replica, or one whose disk was lost
    loaded,   // a consistent state: the replica rejoins with it
    damaged,  // something it once held is unreadable: it must recover from its peers
    foreign,  // another cluster, replica or layout: refused
};

inline const char* to_string(journal_state s) noexcept {
    switch (s) {
        case journal_state::empty: return "empty";
        case journal_state::loaded: return "loaded";
        case journal_state::damaged: return "damaged";
        case journal_state::foreign: return "foreign";
    }
    return "unknown";
}

/// Why a persistent replica must not start with the journal it found (nullptr: it may start). A
/// driver asks its operator to say what an empty journal means: `format`, a new cluster's replica,
/// or `recovering`, a replica that lost its disk. Guessing "new" would let a replica whose data
/// directory was lost come back empty and vote, and its votes could drop acknowledged entries.
/// `format` on a journal that exists is refused too, so a start script that always passes it
/// cannot defeat the check.
inline const char* start_refusal(journal_state found, bool format, bool recovering) noexcept {
    const bool empty = found == journal_state::empty;
    if (empty && !format && !recovering) {
        return "it holds no journal. A new cluster's replica starts with --format; one that lost its data "
               "directory starts with --recovering (it recovers from the others)";
    }
    if (!empty && format) return "--format, but it holds a journal already (start it without --format)";
    return nullptr;
}

struct journal_contents {
    superblock durable;
    std::vector<std::uint8_t> checkpoint;        // the image at durable.checkpoint_op (empty if 0)
    std::vector<std::vector<std::uint8_t>> log;  // entries checkpoint_op + 1, + 2, ...
    std::uint64_t commit = 0;                    // entries up to here are known committed
    const char* damage = "";                     // why it is damaged, for the log
};

/// Writes a replica's durable state in the order the header explains, and reads it back.
template <storage Storage>
class journal {
public:
    journal(Storage& storage, const config& cfg, std::uint8_t replica) : storage_(storage), config_(cfg) {
        superblock_.cluster = cfg.cluster;
        superblock_.replica = replica;
        superblock_.replica_count = cfg.replica_count;
        superblock_.log_slots = cfg.log_entries_max;
        superblock_.body_slot_size = body_slot_size(cfg);
    }

    static std::uint64_t body_slot_size(const config& cfg) noexcept {
        const std::uint64_t size = record_header_size + cfg.entry_size_max();
        return (size + 4095) / 4096 * 4096;
    }

    bool persistent() const noexcept { return storage_.persistent(); }
    /// Writes are waiting for flush().
    bool dirty() const noexcept { return dirty_; }
    /// Every entry up to `op`, the view and the checkpoint are durable: only later entries wait.
    bool durable_through(std::uint64_t op) const noexcept {
        return !dirty_ || (!epoch_pending_ && !view_pending_ && !checkpoint_pending_ &&
                           (pending_.empty() || pending_.front().op > op));
    }
    /// The highest op whose entry, and every one before it, is durable in the view on disk, for
    /// a log that ends at `last_op`; 0 while a new epoch or view waits (nothing is claimed until
    /// the flush).
    std::uint64_t durable_op(std::uint64_t last_op) const noexcept {
        if (!dirty_) return last_op;
        if (epoch_pending_ || view_pending_) return 0;
        return pending_.empty() ? last_op : pending_.front().op - 1;
    }
    /// The superblock on disk names this view and last normal view, and no new log epoch waits:
    /// what is appended now belongs to a view a restart finds (see replica.hpp, prepares).
    bool view_durable(std::uint64_t view, std::uint64_t last_normal_view) const noexcept {
        return superblock_.sequence != 0 && !view_pending_ && !epoch_pending_ && superblock_.view == view &&
               superblock_.last_normal_view == last_normal_view;
    }
    std::uint64_t checkpoint_durable_op() const noexcept { return superblock_.checkpoint_op; }
    const superblock& durable() const noexcept { return superblock_; }
    std::uint64_t syncs() const noexcept { return syncs_; }

    // ---- recovery ----

    journal_state load(journal_contents& out) {
        superblock best;
        bool any = false;
        std::vector<std::uint8_t> copy(superblock_copy_size);
        for (std::size_t i = 0; i < superblock_copies; ++i) {
            superblock s;
            if (!storage_.read(zone::superblock, i * superblock_copy_size, copy)) continue;
            if (std::all_of(copy.begin(), copy.end(), [](std::uint8_t b) { return b == 0; })) continue;
            any = true;
            if (decode_superblock(copy, config_.cluster, s) && s.sequence > best.sequence) best = s;
        }
        if (best.sequence == 0) return any ? damaged(out, "no superblock copy is intact") : journal_state::empty;
        if (best.replica != superblock_.replica || best.replica_count != superblock_.replica_count ||
            best.log_slots != superblock_.log_slots || best.body_slot_size != superblock_.body_slot_size) {
            out.damage = "the superblock belongs to another replica or configuration";
            return journal_state::foreign;
        }
        out.durable = best;
        superblock_ = best;
        view_ = best.view;
        last_normal_view_ = best.last_normal_view;
        recovering_ = best.recovering != 0;
        if (best.checkpoint_op != 0 && best.checkpoint_zone != checkpoint_in_machine &&
            !load_checkpoint(best, out.checkpoint)) {
            return damaged(out, "the checkpoint image does not match its checksum");
        }
        return walk(best, out);
    }

    // ---- writing (each call stages; flush() makes it durable) ----

    /// The log now continues after `op` (a fresh log: 0; a restored or loaded one: its op),
    /// whose record checksum is `op_checksum` (0 when unknown).
    void start_log(std::uint64_t op, std::uint64_t op_checksum) {
        record_checksums_.clear();
        base_op_ = op;
        base_checksum_ = op_checksum;
    }

    /// `commit`: an op known committed now (entries up to it are the committed ones).
    void append(std::span<const std::uint8_t> entry, std::uint64_t commit) {
        if (!persistent()) return;
        const entry_header eh = read_entry_header(entry);
        record_header h;
        h.commit = std::min(commit, eh.op);
        h.body_checksum = checksum(entry);
        h.op = eh.op;
        h.view = eh.view;
        h.parent = record_checksum(eh.op - 1);
        h.epoch = epoch_pending_ ? superblock_.epoch + 1 : superblock_.epoch;
        h.body_size = static_cast<std::uint32_t>(entry.size());
        h.cluster = config_.cluster;
        h.replica = superblock_.replica;
        pending_record record;
        encode_record_header(h, record.header);
        h.checksum = load_le64(record.header.data());
        record.op = h.op;
        record_checksums_.push_back(h.checksum);
        dirty_ = true;
        if (epoch_pending_) {
            record.body.assign(entry.begin(), entry.end());  // written after the new epoch is durable
        } else {
            write_body(record.op, record.header, entry);
        }
        pending_.push_back(std::move(record));
    }

    /// Reads back the entry at `op` of the window, as appended and made durable: false if the
    /// record there is not that one (its checksum is not the one appended for op) or the body
    /// does not check out.
    bool read_entry(std::uint64_t op, std::vector<std::uint8_t>& out) {
        const std::uint64_t expected = record_checksum(op);
        if (!persistent() || expected == 0 || op <= base_op_) return false;
        const std::uint64_t offset = slot(op) * superblock_.body_slot_size;
        record_header h;
        if (!read_header(zone::journal_bodies, offset, h) || h.checksum != expected || h.op != op ||
            h.body_size > config_.entry_size_max()) {
            return false;
        }
        out.resize(h.body_size);
        return storage_.read(zone::journal_bodies, offset + record_header_size, out) &&
               checksum(out) == h.body_checksum;
    }

    /// Drops the records after `op` (op >= the durable checkpoint).
    void truncate(std::uint64_t op) {
        if (!persistent() || op >= base_op_ + record_checksums_.size()) return;
        record_checksums_.resize(op - base_op_);
        while (!pending_.empty() && pending_.back().op > op) pending_.pop_back();
        if (config_.bug == planted_bug::truncate_without_new_epoch) return;
        if (!epoch_pending_ || op < epoch_start_pending_) epoch_start_pending_ = op;
        epoch_pending_ = true;
        dirty_ = true;
    }

    /// The oldest records the checkpoint covers leave the window (their slots may be reused).
    void drop_oldest() {
        if (!persistent() || record_checksums_.empty()) return;
        base_checksum_ = record_checksums_.front();
        record_checksums_.pop_front();
        ++base_op_;
    }

    /// Part of an image being built, at `offset`: written to the zone the superblock does not
    /// name (the next checkpoint's), and synced by the flushes on the way. No superblock names it
    /// until checkpoint() stages it whole, so a crash meanwhile leaves the last one in force.
    void write_checkpoint_part(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        if (!persistent() || bytes.empty()) return;
        if (!storage_.write(next_checkpoint_zone(), offset, bytes)) io_error_ = true;
        written_ = true;
        dirty_ = true;
    }

    /// A checkpoint taken: its image becomes durable at the next flush. Its bytes from
    /// `unwritten_to` on were written already (write_checkpoint_part); the rest is written now.
    void checkpoint(const checkpoint_image& image, std::size_t unwritten_to) {
        if (!persistent()) return;
        stage_checkpoint(image, unwritten_to);
        checkpoint_start_checksum_ = record_checksum(image.op);
    }

    /// A checkpoint staged that the superblock does not name yet (the next flush does).
    bool checkpoint_pending() const noexcept { return checkpoint_pending_; }

    /// A checkpoint installed from another replica: the log restarts after it.
    void install(const checkpoint_image& image) {
        if (!persistent()) return;
        stage_checkpoint(image, image.bytes.size());
        checkpoint_start_checksum_ = 0;
        pending_.clear();
        start_log(image.op, 0);
        epoch_pending_ = true;
        epoch_start_pending_ = image.op;
    }

    /// A new replica of a new cluster: its first flush writes the superblock, so a restart
    /// before it has written anything else still finds a disk that promised nothing.
    void format() {
        if (!persistent()) return;
        dirty_ = true;
    }

    /// Nothing on disk is kept: the log starts empty in a new epoch, and the replica recovers
    /// from its peers (a damaged or lost disk).
    void restart_empty() {
        if (!persistent()) return;
        pending_.clear();
        start_log(0, 0);
        checkpoint_pending_ = true;  // no checkpoint either: the next superblock names none
        checkpoint_next_ = checkpoint_image{};
        checkpoint_next_size_ = 0;
        checkpoint_start_checksum_ = 0;
        checkpoint_next_zone_ = superblock_.checkpoint_zone;
        epoch_pending_ = true;
        epoch_start_pending_ = 0;
        dirty_ = true;
        set_recovering(true);
    }

    /// Recovering: the state on disk must not be trusted until recovery from the peers ends
    /// (a restart meanwhile recovers again). Set before the replica says anything.
    void set_recovering(bool recovering) {
        if (!persistent() || recovering_ == recovering) return;
        recovering_ = recovering;
        view_pending_ = true;
        dirty_ = true;
    }

    void set_view(std::uint64_t view, std::uint64_t last_normal_view) {
        if (!persistent() || (view == view_ && last_normal_view == last_normal_view_)) return;
        view_ = view;
        last_normal_view_ = last_normal_view;
        view_pending_ = true;
        dirty_ = true;
    }

    /// Makes what is staged durable, in the order the header explains. False on an I/O error:
    /// nothing staged may then be relied on. When only entries were appended (no new view,
    /// epoch or checkpoint), their redundant headers are written but not synced: the next
    /// flush's first sync makes them durable together with the bodies appended meanwhile, one
    /// sync per flush under load instead of two. dirty() stays true until then.
    bool flush() {
        if (!dirty_) return true;
        if (written_ && !sync()) return false;  // 1. bodies of this epoch, images; headers deferred
        auto synced =
            std::find_if(pending_.begin(), pending_.end(), [](const pending_record& r) { return !r.header_written; });
        pending_.erase(pending_.begin(), synced);  // their headers were written before that sync
        if (pending_.empty() && !epoch_pending_ && !view_pending_ && !checkpoint_pending_ &&
            superblock_.sequence != 0) {
            dirty_ = false;
            return !io_error_;
        }
        if (epoch_pending_) {  // 2. the new epoch
            superblock next = next_superblock();
            next.epoch = superblock_.epoch + 1;
            next.epoch_start_op = epoch_start_pending_;
            if (!write_superblock(next) || !sync()) return false;
            epoch_pending_ = false;
            view_pending_ = false;
            checkpoint_pending_ = false;
            for (pending_record& r : pending_) {  // 3. bodies of the new epoch
                if (r.body.empty()) continue;
                write_body(r.op, r.header, r.body);
                r.body.clear();
                r.body.shrink_to_fit();
            }
            if (written_ && !sync()) return false;
        }
        for (pending_record& r : pending_) {  // 4. redundant headers, superblock
            if (!storage_.write(zone::journal_headers, slot(r.op) * record_header_size, r.header)) io_error_ = true;
            r.header_written = true;
            written_ = true;
        }
        if (!view_pending_ && !checkpoint_pending_ && superblock_.sequence != 0) {
            return !io_error_;  // the headers are synced by the next flush's step 1
        }
        if (!write_superblock(next_superblock())) return false;  // the view or checkpoint changed, or the first
        if (written_ && !sync()) return false;
        pending_.clear();
        view_pending_ = false;
        checkpoint_pending_ = false;
        dirty_ = false;
        return !io_error_;
    }

private:
    struct pending_record {
        std::uint64_t op = 0;
        bool header_written = false;  // by the last flush (step 4), durable at the next one's sync
        std::array<std::uint8_t, record_header_size> header{};
        std::vector<std::uint8_t> body;  // only while waiting for a new epoch
    };

    std::uint64_t slot(std::uint64_t op) const noexcept { return op % config_.log_entries_max; }

    std::uint64_t record_checksum(std::uint64_t op) const noexcept {
        if (op <= base_op_) return op == base_op_ ? base_checksum_ : 0;
        const std::uint64_t index = op - base_op_ - 1;
        return index < record_checksums_.size() ? record_checksums_[index] : 0;
    }

    void write_body(std::uint64_t op, std::span<const std::uint8_t, record_header_size> header,
                    std::span<const std::uint8_t> entry) {
        const std::uint64_t offset = slot(op) * superblock_.body_slot_size;
        if (!storage_.write(zone::journal_bodies, offset, header) ||
            !storage_.write(zone::journal_bodies, offset + record_header_size, entry)) {
            io_error_ = true;
        }
        written_ = true;
    }

    /// The zone a new image goes to: the one the durable superblock does not name.
    std::uint8_t next_checkpoint_index() const noexcept {
        return superblock_.checkpoint_op == 0 || superblock_.checkpoint_zone > 1
                   ? 0
                   : static_cast<std::uint8_t>(1 - superblock_.checkpoint_zone);
    }
    zone next_checkpoint_zone() const noexcept {
        return next_checkpoint_index() == 0 ? zone::checkpoint_0 : zone::checkpoint_1;
    }

    /// Writes image bytes [0, unwritten_to) (the rest is there already) and names the image in
    /// the next superblock. An image the state machine keeps is durable already (its store
    /// committed it): only the superblock names it.
    void stage_checkpoint(const checkpoint_image& image, std::size_t unwritten_to) {
        std::uint8_t target = checkpoint_in_machine;
        if (!image.state_in_machine()) {
            target = next_checkpoint_index();
            const zone z = next_checkpoint_zone();
            if (!storage_.write(z, 0, std::span<const std::uint8_t>(image.bytes).first(unwritten_to))) io_error_ = true;
            written_ = true;
        }
        checkpoint_next_ = checkpoint_image{image.op, image.view, image.timestamp_ns, image.checksum, {}};
        checkpoint_next_size_ = image.size();
        checkpoint_next_zone_ = target;
        checkpoint_pending_ = true;
        dirty_ = true;
    }

    superblock next_superblock() const {
        superblock next = superblock_;
        next.view = view_;
        next.last_normal_view = last_normal_view_;
        next.recovering = recovering_ ? 1 : 0;
        if (checkpoint_pending_) {
            next.checkpoint_op = checkpoint_next_.op;
            next.checkpoint_view = checkpoint_next_.view;
            next.checkpoint_timestamp_ns = checkpoint_next_.timestamp_ns;
            next.checkpoint_checksum = checkpoint_next_.checksum;
            next.checkpoint_size = checkpoint_next_size_;
            next.checkpoint_zone = checkpoint_next_zone_;
            next.start_checksum = checkpoint_start_checksum_;
        }
        return next;
    }

    bool write_superblock(superblock next) {
        next.sequence = superblock_.sequence + 1;
        std::vector<std::uint8_t> copy;
        encode_superblock(next, copy);
        for (std::size_t i = 0; i < superblock_copies; ++i) {
            if (!storage_.write(zone::superblock, i * superblock_copy_size, copy)) return false;
        }
        written_ = true;
        superblock_ = next;
        return true;
    }

    bool sync() {
        ++syncs_;
        written_ = false;
        if (io_error_) return false;
        return storage_.sync();
    }

    bool load_checkpoint(const superblock& s, std::vector<std::uint8_t>& image) {
        if (s.checkpoint_size > config_.checkpoint_size_max) return false;
        image.resize(s.checkpoint_size);
        const zone z = s.checkpoint_zone == 0 ? zone::checkpoint_0 : zone::checkpoint_1;
        checkpoint_contents contents;
        const bool unchecked = config_.bug == planted_bug::restore_unchecked_checkpoint;
        return storage_.read(z, 0, image) && (unchecked || checksum(image) == s.checkpoint_checksum) &&
               decode_checkpoint(image, contents) && contents.op == s.checkpoint_op &&
               contents.view == s.checkpoint_view;
    }

    static journal_state damaged(journal_contents& out, const char* why) {
        out.damage = why;
        return journal_state::damaged;
    }

    bool read_header(zone z, std::uint64_t offset, record_header& h) {
        std::array<std::uint8_t, record_header_size> bytes{};
        return storage_.read(z, offset, bytes) && decode_record_header(bytes, config_.cluster, superblock_.replica, h);
    }

    /// Whether record header h may be record `op` after a record with checksum `parent`.
    bool fits(const record_header& h, const superblock& s, std::uint64_t op, std::uint64_t parent) const noexcept {
        if (h.op != op || h.body_size > config_.entry_size_max()) return false;
        if (parent != 0 && h.parent != parent) return false;
        return op > s.epoch_start_op ? h.epoch == s.epoch : h.epoch <= s.epoch;
    }

    journal_state walk(const superblock& s, journal_contents& out) {
        std::uint64_t parent = s.start_checksum;
        std::uint64_t op = s.checkpoint_op + 1;
        out.commit = s.checkpoint_op;
        record_checksums_.clear();
        for (;; ++op) {
            if (out.log.size() >= config_.log_entries_max) break;
            record_header body_header, redundant;
            const std::uint64_t offset = slot(op) * s.body_slot_size;
            std::vector<std::uint8_t> entry;
            bool body_ok = read_header(zone::journal_bodies, offset, body_header) && fits(body_header, s, op, parent);
            if (body_ok) {
                entry.resize(body_header.body_size);
                body_ok = storage_.read(zone::journal_bodies, offset + record_header_size, entry) &&
                          checksum(entry) == body_header.body_checksum &&
                          validate_entry(entry, config_.entry_size_max()) && read_entry_header(entry).op == op &&
                          read_entry_header(entry).view == body_header.view;
            }
            if (!body_ok) {
                if (read_header(zone::journal_headers, slot(op) * record_header_size, redundant) &&
                    fits(redundant, s, op, parent)) {
                    return damaged(out, "a journal entry whose header was durable is unreadable");
                }
                break;
            }
            parent = body_header.checksum;
            out.commit = std::max(out.commit, body_header.commit);
            out.log.push_back(std::move(entry));
            record_checksums_.push_back(body_header.checksum);
        }
        const std::uint64_t end = op - 1;
        if (end < s.epoch_start_op) return damaged(out, "the journal ends before the superblock's epoch starts");
        for (std::uint64_t i = 0; i < config_.log_entries_max; ++i) {
            record_header h;
            if (read_header(zone::journal_headers, i * record_header_size, h) && h.epoch == s.epoch && h.op > end) {
                return damaged(out, "a journal entry after the end of the readable log was durable once");
            }
        }
        base_op_ = s.checkpoint_op;
        base_checksum_ = s.start_checksum;
        // Records past the end that were never durable must not come back later, where a
        // new record at their op would be lost: the next records start a new epoch.
        epoch_pending_ = true;
        epoch_start_pending_ = end;
        dirty_ = true;
        return journal_state::loaded;
    }

    Storage& storage_;
    config config_;
    superblock superblock_;  // the latest written (durable after the flush that wrote it)
    std::uint64_t syncs_ = 0;

    // the log window's record checksums: ops base_op_ + 1 ...
    std::uint64_t base_op_ = 0;
    std::uint64_t base_checksum_ = 0;
    std::deque<std::uint64_t> record_checksums_;

    // staged
    bool dirty_ = false;
    bool written_ = false;  // writes since the last sync
    bool io_error_ = false;
    std::vector<pending_record> pending_;
    bool epoch_pending_ = false;
    std::uint64_t epoch_start_pending_ = 0;
    bool view_pending_ = false;  // view, last normal view or recovering
    std::uint64_t view_ = 0;
    std::uint64_t last_normal_view_ = 0;
    bool recovering_ = false;
    bool checkpoint_pending_ = false;
    checkpoint_image checkpoint_next_;  // identity only: no bytes
    std::uint64_t checkpoint_next_size_ = 0;
    std::uint8_t checkpoint_next_zone_ = 0;
    std::uint64_t checkpoint_start_checksum_ = 0;
};

}  // namespace vsr
