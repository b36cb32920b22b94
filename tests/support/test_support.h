// Helpers shared by synclap's tests.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace synclap::test {

// $SYNCLAP_GOLDEN_DIR, else ../shared/golden beside the source tree.
std::string golden_dir();
// $SYNCLAP_REALAUDIO_DIR, else ../shared/realaudio beside the source tree.
std::string realaudio_dir();
// A fresh, empty directory for one test (under the build tree), private to this process.
std::string temp_dir(const std::string& name);
// Files in `dir` whose names match the shell pattern (fnmatch), sorted.
std::vector<std::string> glob_files(const std::string& dir, const std::string& pattern);
bool file_exists(const std::string& path);
// The rows of a CSV file under its header line, each a map from column name to field (quoted fields with doubled
// quotes, CRLF or LF line ends, blank lines skipped); no rows when the file cannot be read.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path);

}  // namespace synclap::test
