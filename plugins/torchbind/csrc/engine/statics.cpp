// Static argument values: an encoded argument row (tag and payload) turned into the IValue that
// a schema argument of a given type takes (dtypes, layouts and memory formats become ints, lists
// become typed lists, numbers in tensor positions become wrapped-number tensors, ...). Everything
// that does not fit raises c10::Error; nothing is guessed.

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
  const std::string& tag;
  const std::vector<int64_t>& ints;
  const std::vector<double>& floats;
  const std::string& text;
  const IValue& value;

  explicit Encoded(const ArgRow& row)
      : tag(std::get<1>(row)),
        ints(std::get<2>(row)),
        floats(std::get<3>(row)),
        text(std::get<4>(row)),
        value(std::get<5>(row)) {}

  int64_t one_int() const {
    TORCH_CHECK(ints.size() == 1, "static '", tag, "' needs exactly one int");
    return ints[0];
  }
  double one_float() const {
    TORCH_CHECK(floats.size() == 1, "static '", tag, "' needs exactly one float");
    return floats[0];
  }
  c10::complex<double> complex() const {
    TORCH_CHECK(floats.size() == 2, "static 'complex' needs a real and an imaginary part");
    return {floats[0], floats[1]};
  }
  bool is_number() const {
    return tag == "int" || tag == "float" || tag == "bool" || tag == "complex";
  }
  bool is_list() const {
    return tag == "ints" || tag == "floats" || tag == "bools";
  }
  // Elements of an "ints" / "floats" / "bools" list as scalars.
  std::vector<IValue> elements() const {
    std::vector<IValue> out;
    if (tag == "floats") {
      out.assign(floats.begin(), floats.end());
    } else {
      for (int64_t v : ints) {
        out.emplace_back(tag == "bools" ? IValue(v != 0) : IValue(v));
      }
    }
    return out;
  }
};

TypePtr unwrap_optional_type(const TypePtr& type) {
  if (auto opt = type->cast<c10::OptionalType>()) {
    return opt->getElementType();
  }
  return type;
}

[[noreturn]] void mismatch(const TypePtr& type, const Encoded& e) {
  TORCH_CHECK(false, "expected a value of type ", type_name(type), ", got a static '", e.tag,
              "'");
}

// One element of a static list converted to the list's element type.
IValue element(const IValue& v, const TypePtr& elem) {
  const TypePtr t = elem->kind() == TypeKind::OptionalType
      ? elem->expectRef<c10::OptionalType>().getElementType()
      : elem;
  switch (t->kind()) {
    case TypeKind::IntType:
      TORCH_CHECK(v.isInt(), "expected ints in a list of ", type_name(elem));
      return v;
    case TypeKind::FloatType:
      TORCH_CHECK(v.isInt() || v.isDouble(), "expected numbers in a list of ",
                  type_name(elem));
      return v.isInt() ? IValue(static_cast<double>(v.toInt())) : v;
    case TypeKind::BoolType:
      TORCH_CHECK(v.isBool(), "expected bools in a list of ", type_name(elem));
      return v;
    case TypeKind::NumberType:
    case TypeKind::AnyType:
      return v;
    default:
      TORCH_CHECK(false, "a static list cannot hold values of type ", type_name(elem));
  }
}

IValue decode_list(const Encoded& e, const TypePtr& list_type) {
  const TypePtr& elem = list_type->expectRef<c10::ListType>().getElementType();
  const auto items = e.elements();
  switch (elem->kind()) {
    case TypeKind::IntType: {
      c10::List<int64_t> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(element(item, elem).toInt());
      }
      return out;
    }
    case TypeKind::FloatType: {
      c10::List<double> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(element(item, elem).toDouble());
      }
      return out;
    }
    case TypeKind::BoolType: {
      // An empty list arrives as "ints": it has no elements to say otherwise.
      TORCH_CHECK(e.tag == "bools" || items.empty(), "expected a list of bools, got '", e.tag,
                  "'");
      c10::List<bool> out;
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(element(item, elem).toBool());
      }
      return out;
    }
    default: {
      c10::impl::GenericList out(elem);
      out.reserve(items.size());
      for (const auto& item : items) {
        out.push_back(element(item, elem));
      }
      return out;
    }
  }
}

at::Tensor wrapped_number(const Encoded& e) {
  at::Scalar scalar;
  if (e.tag == "int") {
    scalar = e.one_int();
  } else if (e.tag == "float") {
    scalar = e.one_float();
  } else if (e.tag == "bool") {
    scalar = e.one_int() != 0;
  } else {
    scalar = e.complex();
  }
  at::Tensor t = at::scalar_to_tensor(scalar);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

}  // namespace

std::string type_name(const TypePtr& t) {
  if (t->kind() == TypeKind::NumberType) {
    return "Scalar";
  }
  if (auto cls = t->cast<c10::ClassType>()) {
    if (cls->name()) {
      return cls->name()->qualifiedName();
    }
  }
  return t->annotation_str();
}

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

namespace {

// The typed conversions of decode_static, one per schema type kind. Each returns the IValue the
// argument takes or throws naming what was expected.

// int, SymInt, and the enums a schema spells as int: ScalarType, Layout, MemoryFormat.
IValue static_int(const Encoded& e, const TypePtr& want) {
  if (e.tag == "int") {
    return e.one_int();
  }
  if (e.tag == "dtype") {
    return static_cast<int64_t>(parse_dtype(e.text));
  }
  if (e.tag == "layout") {
    return static_cast<int64_t>(parse_layout(e.text));
  }
  if (e.tag == "memory_format") {
    return static_cast<int64_t>(parse_memory_format(e.text));
  }
  mismatch(want, e);
}

IValue static_float(const Encoded& e, const TypePtr& want) {
  if (e.tag == "float") {
    return e.one_float();
  }
  if (e.tag == "int") {
    return static_cast<double>(e.one_int());
  }
  mismatch(want, e);
}

IValue static_complex(const Encoded& e, const TypePtr& want) {
  if (e.tag == "complex") {
    return e.complex();
  }
  if (e.tag == "float") {
    return c10::complex<double>(e.one_float(), 0.0);
  }
  if (e.tag == "int") {
    return c10::complex<double>(static_cast<double>(e.one_int()), 0.0);
  }
  mismatch(want, e);
}

IValue static_tensor(const Encoded& e, const TypePtr& want) {
  if (e.tag == "tensor") {
    TORCH_CHECK(e.value.isTensor(), "static 'tensor' needs a tensor value");
    return e.value;
  }
  // A number where a tensor is expected (aten.add.Tensor(x, 1) in a graph) becomes a
  // wrapped-number tensor, exactly as torch.ops converts it when called from Python, so type
  // promotion treats it as a scalar.
  if (e.is_number()) {
    return wrapped_number(e);
  }
  mismatch(want, e);
}

// A static of one tag only (bool, str, Device, a list): its value, or a mismatch.
template <typename Decode>
IValue static_of(const Encoded& e, const TypePtr& want, bool matches, Decode decode) {
  if (matches) {
    return decode();
  }
  mismatch(want, e);
}

}  // namespace

IValue decode_static(const ArgRow& row, const TypePtr& type) {
  const Encoded e(row);
  if (e.tag == "none") {
    TORCH_CHECK(type->kind() == TypeKind::OptionalType || type->kind() == TypeKind::NoneType ||
                    type->kind() == TypeKind::AnyType,
                "expected a value of type ", type_name(type), ", got None");
    return IValue();
  }
  const TypePtr want = unwrap_optional_type(type);
  switch (want->kind()) {
    case TypeKind::AnyType:
      return decode_static_untyped(row);
    case TypeKind::IntType:
      return static_int(e, want);
    case TypeKind::FloatType:
      return static_float(e, want);
    case TypeKind::ComplexType:
      return static_complex(e, want);
    case TypeKind::TensorType:
      return static_tensor(e, want);
    case TypeKind::NumberType:  // Scalar
      return static_of(e, want, e.is_number(), [&] { return decode_static_untyped(row); });
    case TypeKind::BoolType:
      return static_of(e, want, e.tag == "bool", [&] { return IValue(e.one_int() != 0); });
    case TypeKind::StringType:
      return static_of(e, want, e.tag == "str", [&] { return IValue(e.text); });
    case TypeKind::DeviceObjType:
      return static_of(e, want, e.tag == "device", [&] { return IValue(c10::Device(e.text)); });
    case TypeKind::ListType:
      return static_of(e, want, e.is_list(), [&] { return decode_list(e, want); });
    default:
      TORCH_CHECK(false, "a static value cannot be given for an argument of type ",
                  type_name(type), " (got '", e.tag, "')");
  }
}

IValue decode_static_untyped(const ArgRow& row) {
  const Encoded e(row);
  if (e.tag == "none") {
    return IValue();
  }
  if (e.tag == "int") {
    return e.one_int();
  }
  if (e.tag == "float") {
    return e.one_float();
  }
  if (e.tag == "bool") {
    return e.one_int() != 0;
  }
  if (e.tag == "complex") {
    return e.complex();
  }
  if (e.tag == "str") {
    return e.text;
  }
  if (e.tag == "dtype") {
    return static_cast<int64_t>(parse_dtype(e.text));
  }
  if (e.tag == "layout") {
    return static_cast<int64_t>(parse_layout(e.text));
  }
  if (e.tag == "memory_format") {
    return static_cast<int64_t>(parse_memory_format(e.text));
  }
  if (e.tag == "device") {
    return c10::Device(e.text);
  }
  if (e.tag == "tensor") {
    TORCH_CHECK(e.value.isTensor(), "static 'tensor' needs a tensor value");
    return e.value;
  }
  if (e.tag == "ints") {
    return c10::List<int64_t>(e.ints);
  }
  if (e.tag == "floats") {
    return c10::List<double>(e.floats);
  }
  if (e.tag == "bools") {
    c10::List<bool> out;
    for (int64_t v : e.ints) {
      out.push_back(v != 0);
    }
    return out;
  }
  TORCH_CHECK(false, "unknown static value tag '", e.tag, "'");
}

}  // namespace torchexec
