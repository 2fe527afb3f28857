// The regular build's stand-in for libFuzzer: runs a fuzz target's LLVMFuzzerTestOneInput over
// every file named on the command line, or found (recursively, in name order) in a directory
// named there. The `fuzz` test suite uses it to replay the committed corpora and regression
// inputs; a crash or FUZZ_CHECK failure aborts the test.
//
//   x_fuzz_replay tests/fuzz/corpus/x tests/fuzz/regressions/x
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const fs::path path(argv[i]);
        if (fs::is_directory(path)) {
            for (const auto& entry : fs::recursive_directory_iterator(path)) {
                if (entry.is_regular_file() && entry.path().filename().string().front() != '.') {
                    files.push_back(entry.path());
                }
            }
        } else if (fs::is_regular_file(path)) {
            files.push_back(path);
        } else if (!fs::exists(path)) {
            continue;  // an empty regressions directory need not exist
        }
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& path : files) {
        const std::vector<std::uint8_t> data = read_file(path);
        std::fprintf(stderr, "replay %s (%zu bytes)\n", path.c_str(), data.size());
        LLVMFuzzerTestOneInput(data.data(), data.size());
    }
    std::printf("replayed %zu inputs\n", files.size());
    return files.empty() ? 1 : 0;  // an empty corpus means a wrong path, not a pass
}
