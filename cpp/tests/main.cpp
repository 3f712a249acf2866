#include <exception>
#include <iostream>

#include "check.hpp"

int main() {
  using namespace descramble::testing;
  int passed = 0;
  int failed = 0;
  for (const auto& test : registry()) {
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
  return failed == 0 ? 0 : 1;
}
