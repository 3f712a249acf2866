#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "check.hpp"

// descramble_tests [FRAGMENT...]: runs every case, or only those whose name
// contains one of the fragments (e.g. the threaded ones under ThreadSanitizer).
int main(int argc, char** argv) {
  using namespace descramble::testing;
  const std::vector<std::string> filters(argv + 1, argv + argc);
  auto selected = [&](const std::string& name) {
    if (filters.empty()) return true;
    for (const auto& f : filters)
      if (name.find(f) != std::string::npos) return true;
    return false;
  };
  int passed = 0;
  int failed = 0;
  for (const auto& test : registry()) {
    if (!selected(test.name)) continue;
    const int before = failures();
    try {
      test.body();
    } catch (const std::exception& e) {
      ++failures();
      std::cerr << test.name << ": unexpected exception: " << e.what() << "\n";
    }
    const bool ok = failures() == before;
    (ok ? passed : failed) += 1;
    std::cout << (ok ? "[pass] " : "[FAIL] ") << test.name << "\n";
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  if (passed + failed == 0) {
    std::cerr << "no test matches the filter\n";
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
