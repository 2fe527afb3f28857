// The bridge between SQLite and a metadata_disk: a SQLite VFS whose files are metadata_files.
//
// Production, the tests and the simulator all reach the metadata store's files through it, so
// the simulator runs the production engine over its own disks (crashes, torn writes, rot), as
// FoundationDB ran its SQLite engine over simulated files.
//
// What it adds on the way:
// - Page checksums. Every database is created with 8 reserved bytes at the end of each page
//   (SQLITE_FCNTL_RESERVE_BYTES, set by metadata_store before the first write). Every page-sized
//   write to the database or its WAL stores XXH64 of the page in them; every page-sized read
//   checks it and answers SQLITE_IOERR_DATA on a mismatch, then zeroes them again (SQLite's WAL
//   frame checksums cover its own copy of the page, whose reserved bytes are zero). So rot at
//   rest, a torn page and a zeroed page are errors, never wrong answers. Pages are recognised by
//   size (a power of two of at least 512): SQLite's other I/O (the WAL header and frame headers,
//   the first 100 bytes of the database header) has other sizes. Whole frames read by WAL
//   recovery are left to SQLite's own frame checksums, which end the WAL at a torn commit.
// - Locks and WAL shared memory in process memory. One process owns a store, but it opens two
//   connections to it (the executing one, and a reader of the last checkpoint that serves state
//   transfer), so SQLite's file locks and WAL-index locks are kept here, per file name, with
//   SQLite's semantics: a reader's snapshot is protected from the checkpointer exactly as with
//   the default VFS. Nothing is shared with other processes.
// - Determinism: no clock (a fixed time), no sleeps, randomness from a seeded generator.
//
// Each sqlite_vfs registers itself under a name of its own and unregisters when destroyed; it
// must outlive every connection opened through it.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/metadata_disk.hpp"
#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"
#include "vsr/random.hpp"

namespace toastyfs {

/// Counters of what the bridge saw (tests and status).
struct sqlite_vfs_counters {
    std::uint64_t page_checksum_failures = 0;  // page-sized reads whose checksum did not match
    std::uint64_t io_errors = 0;               // calls the disk failed (no_space included)
    std::uint64_t pages_written = 0;
    std::uint64_t pages_read = 0;
    std::uint64_t syncs = 0;
};

/// Bytes reserved at the end of every page for its checksum.
inline constexpr int sqlite_page_checksum_size = 8;

class sqlite_vfs {
public:
    /// SQLite draws WAL salts from one generator per process, seeded from the default VFS, not
    /// from ours: a simulation seeds it so that its files are the same bytes in every run.
    static void seed_process_randomness(std::uint32_t seed) {
        sqlite3_test_control(SQLITE_TESTCTRL_PRNG_SEED, static_cast<int>(seed | 1), nullptr);
    }

    sqlite_vfs(metadata_disk& disk, std::uint64_t seed) : disk_(disk), random_(seed) {
        static std::atomic<std::uint64_t> instances{0};
        name_ = "toastyfs-" + std::to_string(instances.fetch_add(1));
        vfs_.iVersion = 2;
        vfs_.szOsFile = sizeof(open_file);
        vfs_.mxPathname = 512;
        vfs_.zName = name_.c_str();
        vfs_.pAppData = this;
        vfs_.xOpen = &x_open;
        vfs_.xDelete = &x_delete;
        vfs_.xAccess = &x_access;
        vfs_.xFullPathname = &x_full_pathname;
        vfs_.xRandomness = &x_randomness;
        vfs_.xSleep = [](sqlite3_vfs*, int microseconds) { return microseconds; };
        vfs_.xCurrentTime = [](sqlite3_vfs*, double* out) {
            *out = fixed_time_ms / 86'400'000.0;
            return SQLITE_OK;
        };
        vfs_.xGetLastError = [](sqlite3_vfs*, int, char*) { return 0; };
        vfs_.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* out) {
            *out = fixed_time_ms;
            return SQLITE_OK;
        };
        registered_ = sqlite3_vfs_register(&vfs_, 0) == SQLITE_OK;
    }
    ~sqlite_vfs() {
        if (registered_) sqlite3_vfs_unregister(&vfs_);
    }
    sqlite_vfs(const sqlite_vfs&) = delete;
    sqlite_vfs& operator=(const sqlite_vfs&) = delete;

    bool registered() const noexcept { return registered_; }
    const char* name() const noexcept { return name_.c_str(); }
    const sqlite_vfs_counters& counters() const noexcept { return counters_; }
    metadata_disk& disk() noexcept { return disk_; }

private:
    static constexpr sqlite3_int64 fixed_time_ms = 211'813'444'800'000;  // 2000-01-01 as a Julian day in ms

    /// File locks (xLock) and WAL-index memory and locks (xShm*) of one database, shared by every
    /// connection to it in this process.
    struct shared_file {
        int open_count = 0;
        int shared_locks = 0;
        const void* reserved = nullptr;  // holders of the RESERVED, PENDING and EXCLUSIVE locks
        const void* pending = nullptr;
        const void* exclusive = nullptr;
        std::vector<std::unique_ptr<std::uint8_t[]>> regions;  // the WAL index
        int mapped_count = 0;
        std::array<int, SQLITE_SHM_NLOCK> shm_shared{};
        std::array<const void*, SQLITE_SHM_NLOCK> shm_exclusive{};
    };

    struct open_file {
        sqlite3_file base;  // first: SQLite sees an open_file as a sqlite3_file
        sqlite_vfs* vfs;
        metadata_disk* disk;  // the store's, or the one for temporaries
        std::unique_ptr<metadata_file> file;
        std::string name;
        shared_file* shared;  // main database files only
        int lock;
        bool checksummed;  // the main database and its WAL hold pages with checksums
        bool wal;
        bool delete_on_close;
        bool mapped;
        std::uint16_t shm_shared_mask;
        std::uint16_t shm_exclusive_mask;
        std::vector<std::uint8_t> page;  // a page being written, with its checksum
    };

    static sqlite_vfs& of(sqlite3_vfs* vfs) noexcept { return *static_cast<sqlite_vfs*>(vfs->pAppData); }
    static open_file& of(sqlite3_file* file) noexcept { return *reinterpret_cast<open_file*>(file); }

    static constexpr int wal_frame_header_size = 24;

    static bool is_page_size(int amount) noexcept {
        return amount >= 512 && amount <= 65536 && (amount & (amount - 1)) == 0;
    }
    static std::uint64_t page_checksum(const std::uint8_t* page, int amount) noexcept {
        return vsr::checksum(
            std::span<const std::uint8_t>(page, static_cast<std::size_t>(amount - sqlite_page_checksum_size)));
    }

    int io_error(metadata_io status, int code) noexcept {
        ++counters_.io_errors;
        return status == metadata_io::no_space ? SQLITE_FULL : code;
    }

    // ---- the VFS ----

    static int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* out, int flags, int* out_flags) {
        sqlite_vfs& self = of(vfs);
        out->pMethods = nullptr;
        std::string file_name;
        metadata_disk* disk = &self.disk_;
        if (name == nullptr) {  // a temporary: in memory, gone at close
            file_name = "temporary-" + std::to_string(self.temporaries_++);
            disk = &self.temporary_disk_;
            flags |= SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_CREATE;
        } else {
            file_name = name;
        }
        if ((flags & (SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_TRANSIENT_DB |
                      SQLITE_OPEN_SUBJOURNAL)) != 0) {
            disk = &self.temporary_disk_;  // statement journals, temp tables: never on the store's disk
        }
        metadata_io status = metadata_io::ok;
        auto file = disk->open(file_name, (flags & SQLITE_OPEN_CREATE) != 0, status);
        if (file == nullptr) {
            return status == metadata_io::not_found ? SQLITE_CANTOPEN : self.io_error(status, SQLITE_CANTOPEN);
        }
        auto* f = new (out) open_file{};
        f->vfs = &self;
        f->disk = disk;
        f->file = std::move(file);
        f->name = std::move(file_name);
        f->checksummed = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
        f->wal = (flags & SQLITE_OPEN_WAL) != 0;
        f->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
        if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
            auto& shared = self.shared_[f->name];
            if (shared == nullptr) shared = std::make_unique<shared_file>();
            ++shared->open_count;
            f->shared = shared.get();
        }
        f->base.pMethods = &methods;
        if (out_flags != nullptr) *out_flags = flags;
        return SQLITE_OK;
    }

    static int x_delete(sqlite3_vfs* vfs, const char* name, int) {
        sqlite_vfs& self = of(vfs);
        const metadata_io status = self.disk_.remove(name);
        if (status == metadata_io::ok) return SQLITE_OK;
        if (status == metadata_io::not_found) return SQLITE_IOERR_DELETE_NOENT;
        return self.io_error(status, SQLITE_IOERR_DELETE);
    }

    static int x_access(sqlite3_vfs* vfs, const char* name, int, int* out) {
        *out = of(vfs).disk_.exists(name) ? 1 : 0;
        return SQLITE_OK;
    }

    static int x_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
        const std::size_t length = std::strlen(name);
        if (length + 1 > static_cast<std::size_t>(size)) return SQLITE_CANTOPEN;
        std::memcpy(out, name, length + 1);
        return SQLITE_OK;
    }

    static int x_randomness(sqlite3_vfs* vfs, int size, char* out) {
        sqlite_vfs& self = of(vfs);
        for (int i = 0; i < size; i++) out[i] = static_cast<char>(self.random_.next_u64());
        return size;
    }

    // ---- files ----

    static int x_close(sqlite3_file* file) {
        open_file& f = of(file);
        sqlite_vfs& self = *f.vfs;
        x_shm_unmap(file, 0);
        if (f.shared != nullptr) {
            x_unlock(file, SQLITE_LOCK_NONE);
            if (--f.shared->open_count == 0) self.shared_.erase(f.name);
        }
        const bool remove = f.delete_on_close;
        const std::string name = f.name;
        metadata_disk* disk = f.disk;
        f.~open_file();
        if (remove) disk->remove(name);
        return SQLITE_OK;
    }

    static int x_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
        open_file& f = of(file);
        sqlite_vfs& self = *f.vfs;
        std::size_t read = 0;
        auto* bytes = static_cast<std::uint8_t*>(out);
        const metadata_io status = f.file->read(static_cast<std::uint64_t>(offset),
                                                std::span<std::uint8_t>(bytes, static_cast<std::size_t>(amount)), read);
        if (status != metadata_io::ok) return self.io_error(status, SQLITE_IOERR_READ);
        if (read < static_cast<std::size_t>(amount)) return SQLITE_IOERR_SHORT_READ;  // zero-filled
        if (!f.checksummed) return SQLITE_OK;
        if (is_page_size(amount)) {
            ++self.counters_.pages_read;
            if (vsr::load_le64(bytes + amount - sqlite_page_checksum_size) != page_checksum(bytes, amount)) {
                ++self.counters_.page_checksum_failures;
                return SQLITE_IOERR_DATA;
            }
            hide_checksum(bytes, amount);
        } else if (f.wal && amount > wal_frame_header_size && is_page_size(amount - wal_frame_header_size)) {
            // A whole frame, read by WAL recovery: SQLite's frame checksum decides whether it is
            // valid (frames past the last commit are torn or stale, not damaged), so ours is only
            // hidden.
            hide_checksum(bytes + wal_frame_header_size, amount - wal_frame_header_size);
        }
        return SQLITE_OK;
    }

    /// SQLite never sees a page checksum: it computes the WAL's frame checksums over its own
    /// copy of each page, whose reserved bytes it never writes, so they must read back as the
    /// zeros it keeps there (new pages are zeroed whole).
    static void hide_checksum(std::uint8_t* page, int amount) noexcept {
        std::memset(page + amount - sqlite_page_checksum_size, 0, sqlite_page_checksum_size);
    }

    static int x_write(sqlite3_file* file, const void* in, int amount, sqlite3_int64 offset) {
        open_file& f = of(file);
        sqlite_vfs& self = *f.vfs;
        std::span<const std::uint8_t> bytes(static_cast<const std::uint8_t*>(in), static_cast<std::size_t>(amount));
        if (f.checksummed && is_page_size(amount)) {
            f.page.assign(bytes.begin(), bytes.end());
            vsr::store_le64(f.page.data() + amount - sqlite_page_checksum_size, page_checksum(f.page.data(), amount));
            bytes = f.page;
            ++self.counters_.pages_written;
        }
        const metadata_io status = f.file->write(static_cast<std::uint64_t>(offset), bytes);
        return status == metadata_io::ok ? SQLITE_OK : self.io_error(status, SQLITE_IOERR_WRITE);
    }

    static int x_truncate(sqlite3_file* file, sqlite3_int64 size) {
        open_file& f = of(file);
        const metadata_io status = f.file->truncate(static_cast<std::uint64_t>(size));
        return status == metadata_io::ok ? SQLITE_OK : f.vfs->io_error(status, SQLITE_IOERR_TRUNCATE);
    }

    static int x_sync(sqlite3_file* file, int) {
        open_file& f = of(file);
        ++f.vfs->counters_.syncs;
        const metadata_io status = f.file->sync();
        return status == metadata_io::ok ? SQLITE_OK : f.vfs->io_error(status, SQLITE_IOERR_FSYNC);
    }

    static int x_file_size(sqlite3_file* file, sqlite3_int64* out) {
        open_file& f = of(file);
        std::uint64_t size = 0;
        const metadata_io status = f.file->size(size);
        if (status != metadata_io::ok) return f.vfs->io_error(status, SQLITE_IOERR_FSTAT);
        *out = static_cast<sqlite3_int64>(size);
        return SQLITE_OK;
    }

    // File locks, with SQLite's levels: many SHARED; one RESERVED beside them; PENDING keeps new
    // SHARED out while an EXCLUSIVE waits for the others to leave.
    static int x_lock(sqlite3_file* file, int level) {
        open_file& f = of(file);
        if (f.shared == nullptr || f.lock >= level) return SQLITE_OK;
        shared_file& s = *f.shared;
        const void* me = &f;
        if (level == SQLITE_LOCK_SHARED) {
            if ((s.pending != nullptr && s.pending != me) || (s.exclusive != nullptr && s.exclusive != me)) {
                return SQLITE_BUSY;
            }
            ++s.shared_locks;
            f.lock = SQLITE_LOCK_SHARED;
            return SQLITE_OK;
        }
        if (level == SQLITE_LOCK_RESERVED) {
            if (s.reserved != nullptr && s.reserved != me) return SQLITE_BUSY;
            s.reserved = me;
            f.lock = SQLITE_LOCK_RESERVED;
            return SQLITE_OK;
        }
        // EXCLUSIVE (through PENDING).
        if (s.pending != nullptr && s.pending != me) return SQLITE_BUSY;
        if (s.reserved != nullptr && s.reserved != me) return SQLITE_BUSY;
        s.pending = me;
        s.reserved = me;
        if (s.shared_locks > 1) {
            f.lock = SQLITE_LOCK_PENDING;
            return SQLITE_BUSY;
        }
        s.exclusive = me;
        f.lock = SQLITE_LOCK_EXCLUSIVE;
        return SQLITE_OK;
    }

    static int x_unlock(sqlite3_file* file, int level) {
        open_file& f = of(file);
        if (f.shared == nullptr || f.lock <= level) return SQLITE_OK;
        shared_file& s = *f.shared;
        const void* me = &f;
        if (s.exclusive == me) s.exclusive = nullptr;
        if (s.pending == me) s.pending = nullptr;
        if (s.reserved == me) s.reserved = nullptr;
        if (level == SQLITE_LOCK_NONE) --s.shared_locks;
        f.lock = level;
        return SQLITE_OK;
    }

    static int x_check_reserved_lock(sqlite3_file* file, int* out) {
        open_file& f = of(file);
        *out = f.shared != nullptr && (f.shared->reserved != nullptr || f.shared->exclusive != nullptr) ? 1 : 0;
        return SQLITE_OK;
    }

    static int x_file_control(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
    static int x_sector_size(sqlite3_file*) { return 4096; }
    static int x_device_characteristics(sqlite3_file*) { return SQLITE_IOCAP_POWERSAFE_OVERWRITE; }

    // The WAL index: regions in process memory, shared by every connection to the database.
    static int x_shm_map(sqlite3_file* file, int region, int region_size, int extend, void volatile** out) {
        open_file& f = of(file);
        *out = nullptr;
        if (f.shared == nullptr) return SQLITE_IOERR_SHMMAP;
        shared_file& s = *f.shared;
        if (!f.mapped) {
            f.mapped = true;
            ++s.mapped_count;
        }
        const auto index = static_cast<std::size_t>(region);
        if (index >= s.regions.size()) {
            if (extend == 0) return SQLITE_OK;
            while (s.regions.size() <= index) {
                s.regions.push_back(std::make_unique<std::uint8_t[]>(static_cast<std::size_t>(region_size)));
            }
        }
        *out = s.regions[index].get();
        return SQLITE_OK;
    }

    static int x_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
        open_file& f = of(file);
        if (f.shared == nullptr) return SQLITE_IOERR_SHMLOCK;
        shared_file& s = *f.shared;
        const void* me = &f;
        const auto mask = static_cast<std::uint16_t>(((1u << n) - 1) << offset);
        if ((flags & SQLITE_SHM_UNLOCK) != 0) {
            for (int i = offset; i < offset + n; i++) {
                const auto bit = static_cast<std::uint16_t>(1u << i);
                if ((f.shm_shared_mask & bit) != 0) --s.shm_shared[static_cast<std::size_t>(i)];
                if ((f.shm_exclusive_mask & bit) != 0) s.shm_exclusive[static_cast<std::size_t>(i)] = nullptr;
            }
            f.shm_shared_mask = static_cast<std::uint16_t>(f.shm_shared_mask & ~mask);
            f.shm_exclusive_mask = static_cast<std::uint16_t>(f.shm_exclusive_mask & ~mask);
            return SQLITE_OK;
        }
        for (int i = offset; i < offset + n; i++) {
            const auto slot = static_cast<std::size_t>(i);
            const auto bit = static_cast<std::uint16_t>(1u << i);
            if (s.shm_exclusive[slot] != nullptr && s.shm_exclusive[slot] != me) return SQLITE_BUSY;
            if ((flags & SQLITE_SHM_EXCLUSIVE) != 0) {
                const int others = s.shm_shared[slot] - ((f.shm_shared_mask & bit) != 0 ? 1 : 0);
                if (others > 0) return SQLITE_BUSY;
            }
        }
        for (int i = offset; i < offset + n; i++) {
            const auto slot = static_cast<std::size_t>(i);
            const auto bit = static_cast<std::uint16_t>(1u << i);
            if ((flags & SQLITE_SHM_EXCLUSIVE) != 0) {
                s.shm_exclusive[slot] = me;
                f.shm_exclusive_mask = static_cast<std::uint16_t>(f.shm_exclusive_mask | bit);
            } else if ((f.shm_shared_mask & bit) == 0) {
                ++s.shm_shared[slot];
                f.shm_shared_mask = static_cast<std::uint16_t>(f.shm_shared_mask | bit);
            }
        }
        return SQLITE_OK;
    }

    static void x_shm_barrier(sqlite3_file*) { std::atomic_thread_fence(std::memory_order_seq_cst); }

    static int x_shm_unmap(sqlite3_file* file, int) {
        open_file& f = of(file);
        if (f.shared == nullptr || !f.mapped) return SQLITE_OK;
        x_shm_lock(file, 0, SQLITE_SHM_NLOCK, SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED);
        f.mapped = false;
        if (--f.shared->mapped_count == 0) f.shared->regions.clear();  // the last one: the index goes
        return SQLITE_OK;
    }

    static constexpr sqlite3_io_methods methods{2,
                                                &x_close,
                                                &x_read,
                                                &x_write,
                                                &x_truncate,
                                                &x_sync,
                                                &x_file_size,
                                                &x_lock,
                                                &x_unlock,
                                                &x_check_reserved_lock,
                                                &x_file_control,
                                                &x_sector_size,
                                                &x_device_characteristics,
                                                &x_shm_map,
                                                &x_shm_lock,
                                                &x_shm_barrier,
                                                &x_shm_unmap,
                                                nullptr,
                                                nullptr};

    metadata_disk& disk_;
    memory_metadata_disk temporary_disk_;  // temporary files: never durable, never on the store's disk
    std::uint64_t temporaries_ = 0;
    vsr::xoshiro256 random_;
    std::map<std::string, std::unique_ptr<shared_file>, std::less<>> shared_;
    std::string name_;
    sqlite3_vfs vfs_{};
    bool registered_ = false;
    sqlite_vfs_counters counters_;
};

}  // namespace toastyfs
