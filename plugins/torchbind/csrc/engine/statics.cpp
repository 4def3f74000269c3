// Static argument values: an encoded (tag, payload) pair turned into the IValue that a schema
// argument of a given type takes (dtypes, layouts and memory formats become ints, lists become
// typed lists, ...). Everything that does not fit raises c10::Error; nothing is guessed.

#include "engine.h"

#include <ATen/ScalarOps.h>
#include <c10/core/Layout.h>
#include <c10/core/MemoryFormat.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <complex>
#include <string>
#include <unordered_map>

namespace torchexec {
namespace {

using c10::IValue;
using c10::TypeKind;
using c10::TypePtr;

const std::unordered_map<std::string, c10::ScalarType>& dtype_names() {
  static const auto* names = [] {
    auto* m = new std::unordered_map<std::string, c10::ScalarType>();
    for (int i = 0; i < static_cast<int>(c10::ScalarType::NumOptions); ++i) {
      auto t = static_cast<c10::ScalarType>(i);
      try {
        auto pair = c10::getDtypeNames(t);
        if (!std::string(pair.first).empty()) {
          m->emplace(std::string(pair.first), t);
        }
        if (!std::string(pair.second).empty()) {
          m->emplace(std::string(pair.second), t);
        }
      } catch (const c10::Error&) {
        // A scalar type without a Python name: not reachable from a program.
      }
    }
    return m;
  }();
  return *names;
}

c10::Layout parse_layout(const std::string& name) {
  static const std::unordered_map<std::string, c10::Layout> names = {
      {"strided", c10::kStrided},       {"sparse_coo", c10::kSparse},
      {"sparse_csr", c10::kSparseCsr},  {"sparse_csc", c10::kSparseCsc},
      {"sparse_bsr", c10::kSparseBsr},  {"sparse_bsc", c10::kSparseBsc},
      {"_mkldnn", c10::kMkldnn},        {"jagged", c10::kJagged},
  };
  auto it = names.find(name);
  TORCH_CHECK(it != names.end(), "unknown layout '", name, "'");
  return it->second;
}

c10::MemoryFormat parse_memory_format(const std::string& name) {
  static const std::unordered_map<std::string, c10::MemoryFormat> names = {
      {"contiguous_format", c10::MemoryFormat::Contiguous},
      {"preserve_format", c10::MemoryFormat::Preserve},
      {"channels_last", c10::MemoryFormat::ChannelsLast},
      {"channels_last_3d", c10::MemoryFormat::ChannelsLast3d},
  };
  auto it = names.find(name);
  TORCH_CHECK(it != names.end(), "unknown memory format '", name, "'");
  return it->second;
}

struct Encoded {
  std::string tag;
  IValue payload;
};

Encoded split(const IValue& encoded) {
  TORCH_CHECK(
      encoded.isTuple() && encoded.toTupleRef().elements().size() == 2 &&
          encoded.toTupleRef().elements()[0].isString(),
      "a static value must be encoded as a (tag, payload) tuple, got ",
      encoded.tagKind());
  const auto& elems = encoded.toTupleRef().elements();
  return {elems[0].toStringRef(), elems[1]};
}

int64_t payload_int(const Encoded& e) {
  TORCH_CHECK(e.payload.isInt(), "static '", e.tag, "' needs an int payload");
  return e.payload.toInt();
}

double payload_double(const Encoded& e) {
  TORCH_CHECK(e.payload.isDouble() || e.payload.isInt(), "static '", e.tag,
              "' needs a float payload");
  return e.payload.isDouble() ? e.payload.toDouble() : static_cast<double>(e.payload.toInt());
}

bool payload_bool(const Encoded& e) {
  TORCH_CHECK(e.payload.isBool(), "static '", e.tag, "' needs a bool payload");
  return e.payload.toBool();
}

const std::string& payload_str(const Encoded& e) {
  TORCH_CHECK(e.payload.isString(), "static '", e.tag, "' needs a str payload");
  return e.payload.toStringRef();
}

c10::complex<double> payload_complex(const Encoded& e) {
  TORCH_CHECK(e.payload.isTuple() && e.payload.toTupleRef().elements().size() == 2,
              "static 'complex' needs a (real, imag) payload");
  const auto& parts = e.payload.toTupleRef().elements();
  TORCH_CHECK(parts[0].isDouble() && parts[1].isDouble(),
              "static 'complex' needs float real and imaginary parts");
  return {parts[0].toDouble(), parts[1].toDouble()};
}

std::vector<IValue> payload_items(const Encoded& e) {
  if (e.payload.isTuple()) {
    const auto& elems = e.payload.toTupleRef().elements();
    return std::vector<IValue>(elems.begin(), elems.end());
  }
  TORCH_CHECK(e.payload.isList(), "static 'list' needs a tuple payload");
  auto list = e.payload.toListRef();
  return std::vector<IValue>(list.begin(), list.end());
}

[[noreturn]] void mismatch(const TypePtr& type, const Encoded& e) {
  TORCH_CHECK(false, "expected a value of type ", type->repr_str(), ", got a static '",
              e.tag, "'");
}

IValue decode_list(const Encoded& e, const TypePtr& list_type) {
  const TypePtr& elem = list_type->expectRef<c10::ListType>().getElementType();
  auto items = payload_items(e);
  switch (elem->kind()) {
    case TypeKind::IntType: {
      c10::List<int64_t> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(decode_static(item, elem).toInt());
      }
      return out;
    }
    case TypeKind::FloatType: {
      c10::List<double> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(decode_static(item, elem).toDouble());
      }
      return out;
    }
    case TypeKind::BoolType: {
      c10::List<bool> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(decode_static(item, elem).toBool());
      }
      return out;
    }
    default: {
      c10::impl::GenericList out(elem);
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(decode_static(item, elem));
      }
      return out;
    }
  }
}

}  // namespace

c10::ScalarType parse_dtype(const std::string& name) {
  auto it = dtype_names().find(name);
  TORCH_CHECK(it != dtype_names().end(), "unknown dtype '", name, "'");
  return it->second;
}

std::string dtype_name(c10::ScalarType dtype) {
  try {
    return "torch." + std::string(c10::getDtypeNames(dtype).first);
  } catch (const c10::Error&) {
    return c10::toString(dtype);
  }
}

IValue decode_static(const IValue& encoded, const TypePtr& type) {
  Encoded e = split(encoded);
  TypePtr want = type;
  if (e.tag == "none") {
    TORCH_CHECK(want->kind() == TypeKind::OptionalType || want->kind() == TypeKind::NoneType ||
                    want->kind() == TypeKind::AnyType,
                "expected a value of type ", want->repr_str(), ", got None");
    return IValue();
  }
  if (auto opt = want->cast<c10::OptionalType>()) {
    want = opt->getElementType();
  }
  switch (want->kind()) {
    case TypeKind::AnyType:
      return decode_static_untyped(encoded);
    case TypeKind::IntType:  // int, SymInt, ScalarType, Layout, MemoryFormat
      if (e.tag == "int") {
        return payload_int(e);
      }
      if (e.tag == "dtype") {
        return static_cast<int64_t>(parse_dtype(payload_str(e)));
      }
      if (e.tag == "layout") {
        return static_cast<int64_t>(parse_layout(payload_str(e)));
      }
      if (e.tag == "memory_format") {
        return static_cast<int64_t>(parse_memory_format(payload_str(e)));
      }
      mismatch(want, e);
    case TypeKind::FloatType:
      if (e.tag == "float" || e.tag == "int") {
        return payload_double(e);
      }
      mismatch(want, e);
    case TypeKind::BoolType:
      if (e.tag == "bool") {
        return payload_bool(e);
      }
      mismatch(want, e);
    case TypeKind::NumberType:  // Scalar
      if (e.tag == "int") {
        return payload_int(e);
      }
      if (e.tag == "float") {
        return payload_double(e);
      }
      if (e.tag == "bool") {
        return payload_bool(e);
      }
      if (e.tag == "complex") {
        return payload_complex(e);
      }
      mismatch(want, e);
    case TypeKind::ComplexType:
      if (e.tag == "complex") {
        return payload_complex(e);
      }
      if (e.tag == "float" || e.tag == "int") {
        return c10::complex<double>(payload_double(e), 0.0);
      }
      mismatch(want, e);
    case TypeKind::StringType:
      if (e.tag == "str") {
        return payload_str(e);
      }
      mismatch(want, e);
    case TypeKind::DeviceObjType:
      if (e.tag == "device") {
        return c10::Device(payload_str(e));
      }
      mismatch(want, e);
    case TypeKind::ListType:
      if (e.tag == "list") {
        return decode_list(e, want);
      }
      mismatch(want, e);
    case TypeKind::TensorType:
      if (e.tag == "tensor") {
        TORCH_CHECK(e.payload.isTensor(), "static 'tensor' needs a tensor payload");
        return e.payload;
      }
      // A number where a tensor is expected (aten.add.Tensor(x, 1) in a graph) becomes a
      // wrapped-number tensor, exactly as torch.ops converts it when called from Python, so
      // type promotion treats it as a scalar.
      if (e.tag == "int" || e.tag == "float" || e.tag == "bool" || e.tag == "complex") {
        at::Scalar scalar;
        if (e.tag == "int") {
          scalar = payload_int(e);
        } else if (e.tag == "float") {
          scalar = payload_double(e);
        } else if (e.tag == "bool") {
          scalar = payload_bool(e);
        } else {
          scalar = payload_complex(e);
        }
        at::Tensor t = at::scalar_to_tensor(scalar);
        t.unsafeGetTensorImpl()->set_wrapped_number(true);
        return t;
      }
      mismatch(want, e);
    default:
      TORCH_CHECK(false, "a static value cannot be given for an argument of type ",
                  type->repr_str(), " (got '", e.tag, "')");
  }
}

IValue decode_static_untyped(const IValue& encoded) {
  Encoded e = split(encoded);
  if (e.tag == "none") {
    return IValue();
  }
  if (e.tag == "int") {
    return payload_int(e);
  }
  if (e.tag == "float") {
    return payload_double(e);
  }
  if (e.tag == "bool") {
    return payload_bool(e);
  }
  if (e.tag == "str") {
    return payload_str(e);
  }
  if (e.tag == "complex") {
    return payload_complex(e);
  }
  if (e.tag == "dtype") {
    return static_cast<int64_t>(parse_dtype(payload_str(e)));
  }
  if (e.tag == "layout") {
    return static_cast<int64_t>(parse_layout(payload_str(e)));
  }
  if (e.tag == "memory_format") {
    return static_cast<int64_t>(parse_memory_format(payload_str(e)));
  }
  if (e.tag == "device") {
    return c10::Device(payload_str(e));
  }
  if (e.tag == "tensor") {
    TORCH_CHECK(e.payload.isTensor(), "static 'tensor' needs a tensor payload");
    return e.payload;
  }
  if (e.tag == "list") {
    auto items = payload_items(e);
    c10::impl::GenericList out(c10::AnyType::get());
    out.reserve(items.size());
    for (const auto& item : items) {
      out.push_back(decode_static_untyped(item));
    }
    return out;
  }
  TORCH_CHECK(false, "unknown static value tag '", e.tag, "'");
}

}  // namespace torchexec
