// A fresh directory under the system's temporary directory for one test case, removed with all
// it holds when the test case ends. Shared by the tests of code that works on files.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace test_support {

struct temporary_directory {
    std::filesystem::path path;

    /// `prefix` names the test, so a directory left behind by a crash says whose it is.
    explicit temporary_directory(const std::string& prefix) {
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        for (int attempt = 0;; attempt++) {
            path = std::filesystem::temp_directory_path() /
                   (prefix + "_" + std::to_string(stamp) + "_" + std::to_string(attempt));
            if (std::filesystem::create_directory(path)) break;
        }
    }
    temporary_directory(const temporary_directory&) = delete;
    temporary_directory& operator=(const temporary_directory&) = delete;
    ~temporary_directory() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }

    std::string file(const std::string& name) const { return (path / name).string(); }

    /// The names in it (or in `directory` below it), sorted.
    std::vector<std::string> entries(const std::string& directory = ".") const {
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(path / directory)) {
            names.push_back(entry.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        return names;
    }
};

}  // namespace test_support
