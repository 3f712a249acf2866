// A minimal self-contained test harness: TEST cases register themselves,
// CHECK records a failure and carries on, main() runs every case.
#pragma once

#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace descramble::testing {

struct Case {
  std::string name;
  std::function<void()> body;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures() {
  static int count = 0;
  return count;
}

struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::cerr << file << ":" << line << ": check failed: " << what << "\n";
}

}  // namespace descramble::testing

#define DESCRAMBLE_CAT2(a, b) a##b
#define DESCRAMBLE_CAT(a, b) DESCRAMBLE_CAT2(a, b)
#define TEST(name)                                                                        \
  static void name();                                                                     \
  static const ::descramble::testing::Register DESCRAMBLE_CAT(register_, name){#name, name}; \
  static void name()

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) ::descramble::testing::fail(__FILE__, __LINE__, #cond); \
  } while (0)

// CHECK_CLOSE(a, b, tol): |a - b| <= tol for scalars, or max |a - b| <= tol for Eigen objects.
#define CHECK_CLOSE(a, b, tol)                                                        \
  do {                                                                                \
    const double descramble_err_ = ::descramble::testing::max_abs_diff((a), (b));     \
    if (!(descramble_err_ <= (tol))) {                                                \
      std::ostringstream descramble_msg_;                                             \
      descramble_msg_ << #a " ~ " #b " (max abs diff " << descramble_err_ << " > " << (tol) << ")"; \
      ::descramble::testing::fail(__FILE__, __LINE__, descramble_msg_.str());         \
    }                                                                                 \
  } while (0)

#define CHECK_THROWS_WITH(expr, Exception, fragment)                                       \
  do {                                                                                     \
    bool descramble_thrown_ = false;                                                       \
    try {                                                                                  \
      expr;                                                                                \
    } catch (const Exception& e) {                                                         \
      descramble_thrown_ = std::string(e.what()).find(fragment) != std::string::npos;      \
      if (!descramble_thrown_)                                                             \
        ::descramble::testing::fail(__FILE__, __LINE__, std::string("message: ") + e.what()); \
      descramble_thrown_ = true;                                                           \
    }                                                                                      \
    if (!descramble_thrown_)                                                               \
      ::descramble::testing::fail(__FILE__, __LINE__, #expr " did not throw " #Exception); \
  } while (0)

#include <Eigen/Core>
#include <cmath>

namespace descramble::testing {
inline double max_abs_diff(double a, double b) { return std::abs(a - b); }
template <class A, class B>
double max_abs_diff(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  return (a - b).cwiseAbs().maxCoeff();
}
}  // namespace descramble::testing
