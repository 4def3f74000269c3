// SymInt arithmetic nodes: the functions of Python's operator module (and a few of torch's sym_*
// helpers) that exported programs with dynamic shapes use on sizes. They follow Python's
// semantics (floor division and modulo round towards negative infinity; bools are ints), and
// division by zero raises instead of being undefined behaviour.

#include "engine.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

namespace torchexec {
namespace {

using c10::IValue;

bool is_number(const IValue& v) {
  return v.isInt() || v.isDouble() || v.isBool();
}

int64_t as_int(const IValue& v) {
  return v.isBool() ? static_cast<int64_t>(v.toBool()) : v.toInt();
}

double as_double(const IValue& v) {
  if (v.isDouble()) {
    return v.toDouble();
  }
  return static_cast<double>(as_int(v));
}

bool integral(const IValue& v) {
  return v.isInt() || v.isBool();
}

void check_overflow(bool overflow) {
  TORCH_CHECK(!overflow, "integer overflow in a SymInt expression");
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_add_overflow(a, b, &r));
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_sub_overflow(a, b, &r));
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_mul_overflow(a, b, &r));
  return r;
}

int64_t to_int(double d) {
  TORCH_CHECK(std::isfinite(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18,
              "cannot convert ", d, " to an int");
  return static_cast<int64_t>(d);
}

int64_t floor_div(int64_t a, int64_t b) {
  TORCH_CHECK(b != 0, "integer division or modulo by zero");
  TORCH_CHECK(!(a == std::numeric_limits<int64_t>::min() && b == -1),
              "integer overflow in a SymInt expression");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    q -= 1;
  }
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  TORCH_CHECK(b != 0, "integer division or modulo by zero");
  if (b == -1) {
    return 0;
  }
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) {
    r += b;
  }
  return r;
}

int64_t int_pow(int64_t base, int64_t exponent) {
  int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1) {
      result = checked_mul(result, base);
    }
    exponent >>= 1;
    if (exponent > 0) {
      base = checked_mul(base, base);
    }
  }
  return result;
}

IValue arith(PyFn fn, const IValue& a, const IValue& b) {
  TORCH_CHECK(is_number(a) && is_number(b), "expected numbers, got ", a.tagKind(), " and ",
              b.tagKind());
  const bool ints = integral(a) && integral(b);
  switch (fn) {
    case PyFn::kAdd:
      return ints ? IValue(checked_add(as_int(a), as_int(b))) : IValue(as_double(a) + as_double(b));
    case PyFn::kSub:
      return ints ? IValue(checked_sub(as_int(a), as_int(b))) : IValue(as_double(a) - as_double(b));
    case PyFn::kMul:
      return ints ? IValue(checked_mul(as_int(a), as_int(b))) : IValue(as_double(a) * as_double(b));
    case PyFn::kFloorDiv:
      if (ints) {
        return floor_div(as_int(a), as_int(b));
      }
      TORCH_CHECK(as_double(b) != 0.0, "float floor division by zero");
      return std::floor(as_double(a) / as_double(b));
    case PyFn::kMod:
      if (ints) {
        return floor_mod(as_int(a), as_int(b));
      }
      TORCH_CHECK(as_double(b) != 0.0, "float modulo by zero");
      return as_double(a) - std::floor(as_double(a) / as_double(b)) * as_double(b);
    case PyFn::kTrueDiv:
      TORCH_CHECK(as_double(b) != 0.0, "division by zero");
      return as_double(a) / as_double(b);
    case PyFn::kPow:
      if (ints && as_int(b) >= 0) {
        return int_pow(as_int(a), as_int(b));
      }
      return std::pow(as_double(a), as_double(b));
    case PyFn::kEq:
      return ints ? as_int(a) == as_int(b) : as_double(a) == as_double(b);
    case PyFn::kNe:
      return ints ? as_int(a) != as_int(b) : as_double(a) != as_double(b);
    case PyFn::kLt:
      return ints ? as_int(a) < as_int(b) : as_double(a) < as_double(b);
    case PyFn::kLe:
      return ints ? as_int(a) <= as_int(b) : as_double(a) <= as_double(b);
    case PyFn::kGt:
      return ints ? as_int(a) > as_int(b) : as_double(a) > as_double(b);
    case PyFn::kGe:
      return ints ? as_int(a) >= as_int(b) : as_double(a) >= as_double(b);
    case PyFn::kAnd:
    case PyFn::kOr:
      if (a.isBool() && b.isBool()) {
        return fn == PyFn::kAnd ? (a.toBool() && b.toBool()) : (a.toBool() || b.toBool());
      }
      TORCH_CHECK(ints, "and_/or_ take bools or ints");
      return fn == PyFn::kAnd ? (as_int(a) & as_int(b)) : (as_int(a) | as_int(b));
    case PyFn::kMax:
      if (ints) {
        return std::max(as_int(a), as_int(b));
      }
      return std::max(as_double(a), as_double(b));
    case PyFn::kMin:
      if (ints) {
        return std::min(as_int(a), as_int(b));
      }
      return std::min(as_double(a), as_double(b));
    case PyFn::kLShift:
    case PyFn::kRShift: {
      TORCH_CHECK(ints, "shifts take ints");
      const int64_t n = as_int(b);
      TORCH_CHECK(n >= 0, "negative shift count");
      const int64_t x = as_int(a);
      if (fn == PyFn::kRShift) {
        return n >= 63 ? (x < 0 ? int64_t{-1} : int64_t{0}) : (x >> n);
      }
      if (x == 0) {
        return int64_t{0};
      }
      TORCH_CHECK(n < 63, "integer overflow in a SymInt expression");
      return checked_mul(x, int64_t{1} << n);
    }
    default:
      TORCH_CHECK(false, "not a binary function");
  }
}

IValue unary(PyFn fn, const IValue& a) {
  TORCH_CHECK(is_number(a), "expected a number, got ", a.tagKind());
  switch (fn) {
    case PyFn::kNeg:
      return integral(a) ? IValue(checked_sub(0, as_int(a))) : IValue(-as_double(a));
    case PyFn::kNot:
      return !(integral(a) ? as_int(a) != 0 : as_double(a) != 0.0);
    case PyFn::kCeil:
      return integral(a) ? as_int(a) : to_int(std::ceil(as_double(a)));
    case PyFn::kFloor:
      return integral(a) ? as_int(a) : to_int(std::floor(as_double(a)));
    case PyFn::kTrunc:
    case PyFn::kToInt:
      return integral(a) ? as_int(a) : to_int(std::trunc(as_double(a)));
    case PyFn::kToFloat:
      return as_double(a);
    case PyFn::kPos:
      return integral(a) ? IValue(as_int(a)) : IValue(as_double(a));
    case PyFn::kSqrt:
      return std::sqrt(as_double(a));
    default:
      TORCH_CHECK(false, "not a unary function");
  }
}

}  // namespace

std::optional<PyFn> python_function(const std::string& target) {
  static const std::unordered_map<std::string, PyFn> table = {
      {"_operator.add", PyFn::kAdd},
      {"_operator.sub", PyFn::kSub},
      {"_operator.mul", PyFn::kMul},
      {"_operator.floordiv", PyFn::kFloorDiv},
      {"_operator.mod", PyFn::kMod},
      {"_operator.truediv", PyFn::kTrueDiv},
      {"_operator.pow", PyFn::kPow},
      {"_operator.neg", PyFn::kNeg},
      {"_operator.eq", PyFn::kEq},
      {"_operator.ne", PyFn::kNe},
      {"_operator.lt", PyFn::kLt},
      {"_operator.le", PyFn::kLe},
      {"_operator.gt", PyFn::kGt},
      {"_operator.ge", PyFn::kGe},
      {"_operator.and_", PyFn::kAnd},
      {"_operator.or_", PyFn::kOr},
      {"_operator.not_", PyFn::kNot},
      {"torch.sym_not", PyFn::kNot},
      {"torch.sym_max", PyFn::kMax},
      {"torch.sym_min", PyFn::kMin},
      {"torch.sym_float", PyFn::kToFloat},
      {"torch.sym_int", PyFn::kToInt},
      {"math.ceil", PyFn::kCeil},
      {"math.floor", PyFn::kFloor},
      {"math.trunc", PyFn::kTrunc},
      {"_operator.pos", PyFn::kPos},
      {"_operator.lshift", PyFn::kLShift},
      {"_operator.rshift", PyFn::kRShift},
      {"torch.sym_ite", PyFn::kIte},
      {"torch._sym_sqrt", PyFn::kSqrt},
  };
  auto it = table.find(target);
  if (it == table.end()) {
    return std::nullopt;
  }
  return it->second;
}

int64_t python_arity(PyFn fn) {
  switch (fn) {
    case PyFn::kNeg:
    case PyFn::kNot:
    case PyFn::kCeil:
    case PyFn::kFloor:
    case PyFn::kTrunc:
    case PyFn::kToFloat:
    case PyFn::kToInt:
    case PyFn::kPos:
    case PyFn::kSqrt:
      return 1;
    case PyFn::kIte:
      return 3;
    default:
      return 2;
  }
}

c10::TypePtr python_result_type(PyFn fn, const std::vector<c10::TypePtr>& args) {
  bool all_int = true;
  for (const auto& t : args) {
    if (t->kind() != c10::TypeKind::IntType && t->kind() != c10::TypeKind::BoolType) {
      all_int = false;
    }
  }
  switch (fn) {
    case PyFn::kEq:
    case PyFn::kNe:
    case PyFn::kLt:
    case PyFn::kLe:
    case PyFn::kGt:
    case PyFn::kGe:
    case PyFn::kNot:
      return c10::BoolType::get();
    case PyFn::kAnd:
    case PyFn::kOr:
      if (args[0]->kind() == c10::TypeKind::BoolType &&
          args[1]->kind() == c10::TypeKind::BoolType) {
        return c10::BoolType::get();
      }
      return all_int ? c10::TypePtr(c10::IntType::get()) : c10::TypePtr(c10::NumberType::get());
    case PyFn::kTrueDiv:
    case PyFn::kToFloat:
    case PyFn::kSqrt:
      return c10::FloatType::get();
    case PyFn::kIte:
      if (args[1]->kind() == args[2]->kind()) {
        return args[1];
      }
      return c10::NumberType::get();
    case PyFn::kCeil:
    case PyFn::kFloor:
    case PyFn::kTrunc:
    case PyFn::kToInt:
      return c10::IntType::get();
    case PyFn::kPow:
      return c10::NumberType::get();  // int ** negative int is a float
    default:
      return all_int ? c10::TypePtr(c10::IntType::get()) : c10::TypePtr(c10::NumberType::get());
  }
}

IValue python_call(PyFn fn, const IValue* args) {
  if (fn == PyFn::kIte) {
    TORCH_CHECK(args[0].isBool(), "sym_ite expects a bool condition, got ", args[0].tagKind());
    return args[0].toBool() ? args[1] : args[2];
  }
  if (python_arity(fn) == 1) {
    return unary(fn, args[0]);
  }
  return arith(fn, args[0], args[1]);
}

}  // namespace torchexec
