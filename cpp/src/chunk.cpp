#include "descramble/chunk.hpp"

namespace descramble {

std::size_t scalar_size(ScalarType t) noexcept {
  switch (t) {
    case ScalarType::float64:
    case ScalarType::int64:
    case ScalarType::uint64:
      return 8;
    case ScalarType::float32:
    case ScalarType::int32:
    case ScalarType::uint32:
      return 4;
    case ScalarType::int16:
    case ScalarType::uint16:
      return 2;
    case ScalarType::int8:
    case ScalarType::uint8:
    case ScalarType::boolean:
      return 1;
  }
  return 0;
}

const char* scalar_name(ScalarType t) noexcept {
  switch (t) {
    case ScalarType::float64: return "float64";
    case ScalarType::float32: return "float32";
    case ScalarType::int8: return "int8";
    case ScalarType::int16: return "int16";
    case ScalarType::int32: return "int32";
    case ScalarType::int64: return "int64";
    case ScalarType::uint8: return "uint8";
    case ScalarType::uint16: return "uint16";
    case ScalarType::uint32: return "uint32";
    case ScalarType::uint64: return "uint64";
    case ScalarType::boolean: return "bool";
  }
  return "unknown";
}

}  // namespace descramble
