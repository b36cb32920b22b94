// synclap: errors. The library throws; the command line prints one line and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace synclap {

// Any failure synclap reports to its caller.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failure that belongs to one input file. what() is "PATH: problem".
class FileError : public Error {
 public:
  FileError(std::string path, const std::string& problem)
      : Error(path + ": " + problem), path_(std::move(path)), problem_(problem) {}
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

}  // namespace synclap
