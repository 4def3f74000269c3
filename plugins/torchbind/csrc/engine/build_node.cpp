// Building an Engine, part 2: one node at a time. Operators are resolved through the dispatcher
// once, TorchBind methods through the object's class, arguments are matched to the schema
// (statics prefilled, slots type-checked), and frees become moves where possible.

#include "builder.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace torchexec {

using c10::IValue;
using c10::TypeKind;
using c10::TypePtr;

namespace {

const std::string& arg_name(const ArgRow& row) {
  return std::get<0>(row);
}
const std::string& arg_tag(const ArgRow& row) {
  return std::get<1>(row);
}
const std::vector<int64_t>& arg_ints(const ArgRow& row) {
  return std::get<2>(row);
}

bool is_slot_tag(const std::string& tag) {
  return tag == "slot" || tag == "slots" || tag == "mixed";
}

std::vector<TypePtr> return_types(const c10::FunctionSchema& schema) {
  std::vector<TypePtr> out;
  for (const auto& r : schema.returns()) {
    out.push_back(r.type());
  }
  return out;
}

}  // namespace

void Builder::decode_node(const NodeRow& row, int64_t index) {
  const auto& [name, kind, target, overload, args, outputs, result_mode, frees] = row;
  Node node;
  node.name = name;
  where_ = "torchexec.Engine: node '" + name + "'";
  TORCH_CHECK(result_mode == "values" || result_mode == "list" || result_mode == "tuple", where_,
              ": result mode must be values, list or tuple, got '", result_mode, "'");
  node.returns_list = result_mode == "list";

  std::vector<TypePtr> result_types;
  if (kind == "op") {
    node.kind = NodeKind::kOp;
    node.target = overload.empty() ? target : target + "." + overload;
    where_ += " (" + node.target + ")";
    result_types = compile_op(node, target, overload, args);
  } else if (kind == "torchbind") {
    node.kind = NodeKind::kTorchBind;
    result_types = compile_torchbind(node, args);
  } else if (kind == "python") {
    node.kind = NodeKind::kPython;
    node.target = target;
    where_ += " (" + target + ")";
    result_types = compile_python(node, target, args);
  } else if (kind == "hop") {
    node.kind = NodeKind::kHop;
    node.target = "higher_order::" + target;
    where_ += " (" + node.target + ")";
    result_types = compile_hop(node, target, args);
  } else {
    TORCH_CHECK(false, where_, ": unknown node kind '", kind,
                "' (expected op, torchbind, python or hop)");
  }
  // Same order as run(): the call, then the frees, then the outputs are stored (so an output
  // may reuse a slot the call frees).
  compile_frees(node, frees, index);
  bind_outputs(node, result_types, outputs, result_mode == "tuple");
  e_.max_stack_ = std::max({e_.max_stack_, node.steps.size(), node.outputs.size()});
  e_.nodes_.push_back(std::move(node));
}

std::vector<TypePtr> Builder::compile_op(Node& node, const std::string& name,
                                         const std::string& overload,
                                         const std::vector<ArgRow>& args) {
  const auto sep = name.find("::");
  TORCH_CHECK(sep != std::string::npos && sep > 0, where_, ": operator name '", name,
              "' is not of the form namespace::name");
  const std::string ns = name.substr(0, sep);
  const auto& allowed = e_.allowed_namespaces_;
  TORCH_CHECK(std::find(allowed.begin(), allowed.end(), ns) != allowed.end(), where_,
              ": operator namespace '", ns, "' is not allowed (allowed: ", join(allowed),
              "); pass allowed_namespaces=['", ns, "'] to run it");
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  TORCH_CHECK(handle.has_value(), where_, ": unknown operator ", node.target,
              " (no such operator or overload is registered with the dispatcher; is its "
              "library loaded?)");
  const c10::FunctionSchema& schema = handle->schema();
  TORCH_CHECK(!schema.is_vararg() && !schema.is_varret(), where_,
              ": operators with variadic arguments or returns are not supported");
  node.op = *handle;
  bind_arguments(node, schema, 0, args);
  return return_types(schema);
}

std::vector<TypePtr> Builder::compile_torchbind(Node& node, const std::vector<ArgRow>& args) {
  TORCH_CHECK(args.size() >= 2 && arg_name(args[0]).empty() && arg_name(args[1]).empty(),
              where_, ": call_torchbind needs the object and the method name first");
  TORCH_CHECK(arg_tag(args[0]) == "slot" && arg_ints(args[0]).size() == 1, where_,
              ": the object of call_torchbind must be read from a slot");
  const int64_t obj_slot = arg_ints(args[0])[0];
  const TypePtr obj_type = read(obj_slot, "the object");
  auto cls = obj_type->cast<c10::ClassType>();
  TORCH_CHECK(cls != nullptr, where_, ": call_torchbind needs a TorchBind object, slot ",
              obj_slot, " holds ", type_name(obj_type));
  TORCH_CHECK(arg_tag(args[1]) == "str", where_,
              ": the method name of call_torchbind must be a static str");
  const std::string& method = std::get<4>(args[1]);
  const std::string class_name = type_name(cls);
  node.target = "call_torchbind(" + class_name + "." + method + ")";
  where_ += " (" + node.target + ")";
  node.method = cls->findMethod(method);
  if (node.method == nullptr) {
    std::vector<std::string> names;
    for (const auto* fn : cls->methods()) {
      if (fn->name().rfind("__", 0) != 0) {
        names.push_back(fn->name());
      }
    }
    TORCH_CHECK(false, where_, ": class ", class_name, " has no method '", method,
                "' (methods: ", join(names), ")");
  }
  node.method_class = cls;
  const c10::FunctionSchema& schema = node.method->getSchema();
  TORCH_CHECK(!schema.arguments().empty(), where_, ": method '", method, "' does not take self");
  node.steps.push_back({StepKind::kSlot, obj_slot});
  const std::vector<ArgRow> rest(args.begin() + 2, args.end());
  bind_arguments(node, schema, 1, rest);
  return return_types(schema);
}

std::vector<TypePtr> Builder::compile_python(Node& node, const std::string& target,
                                             const std::vector<ArgRow>& args) {
  auto fn = python_function(target);
  TORCH_CHECK(fn.has_value(), where_, ": unsupported Python function '", target, "'");
  node.pyfn = *fn;
  const int64_t arity = python_arity(*fn);
  TORCH_CHECK(static_cast<int64_t>(args.size()) == arity, where_, ": takes ", arity,
              " arguments, got ", args.size());
  std::vector<TypePtr> arg_types;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string what = "argument " + std::to_string(i);
    const std::string& tag = arg_tag(args[i]);
    TORCH_CHECK(arg_name(args[i]).empty(), where_, ": Python functions take no keywords");
    TypePtr t;
    if (tag == "slot") {
      TORCH_CHECK(arg_ints(args[i]).size() == 1, where_, ": ", what, " needs one slot");
      const int64_t slot = arg_ints(args[i])[0];
      t = read(slot, what);
      const auto k = t->kind();
      TORCH_CHECK(k == TypeKind::IntType || k == TypeKind::FloatType ||
                      k == TypeKind::BoolType || k == TypeKind::NumberType ||
                      k == TypeKind::AnyType,
                  where_, ": ", what, " must be a number, slot ", slot, " holds ", type_name(t));
      node.steps.push_back({StepKind::kSlot, slot});
    } else {
      TORCH_CHECK(tag == "int" || tag == "float" || tag == "bool", where_, ": ", what,
                  " must be a slot or a static number, got '", tag, "'");
      IValue value = decode_static_untyped(args[i]);
      t = value.type();
      node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
      node.statics.push_back(std::move(value));
    }
    arg_types.push_back(std::move(t));
  }
  return {python_result_type(*fn, arg_types)};
}

void Builder::bind_arguments(Node& node, const c10::FunctionSchema& schema, size_t first,
                             const std::vector<ArgRow>& args) {
  const auto& params = schema.arguments();
  const size_t n = params.size() - first;
  std::vector<const ArgRow*> bound(n, nullptr);
  size_t given_by_position = 0;
  for (const ArgRow& arg : args) {
    given_by_position += arg_name(arg).empty() ? 1 : 0;
  }
  TORCH_CHECK(given_by_position <= n, where_, ": takes ", n, " arguments, got ",
              given_by_position, " positional ones");
  size_t positional = 0;
  for (const ArgRow& arg : args) {
    const std::string& name = arg_name(arg);
    if (name.empty()) {
      // As in eager PyTorch: a keyword-only parameter is never bound by position.
      TORCH_CHECK(!params[first + positional].kwarg_only(), where_, ": argument '",
                  params[first + positional].name(),
                  "' is keyword-only, but the plan passes it by position");
      TORCH_CHECK(bound[positional] == nullptr, where_, ": argument '",
                  params[first + positional].name(), "' is given twice");
      bound[positional++] = &arg;
      continue;
    }
    size_t j = 0;
    while (j < n && params[first + j].name() != name) {
      ++j;
    }
    if (j == n) {
      std::vector<std::string> names;
      for (size_t k = first; k < params.size(); ++k) {
        names.push_back(params[k].name());
      }
      TORCH_CHECK(false, where_, ": no argument named '", name, "' (arguments: ", join(names),
                  ")");
    }
    TORCH_CHECK(bound[j] == nullptr, where_, ": argument '", name, "' is given twice");
    bound[j] = &arg;
  }
  for (size_t j = 0; j < n; ++j) {
    const c10::Argument& param = params[first + j];
    if (bound[j] != nullptr) {
      compile_argument(node, param, *bound[j]);
    } else {
      TORCH_CHECK(param.default_value().has_value(), where_, ": missing argument '",
                  param.name(), "' (", type_name(param.type()), ")");
      node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
      node.statics.push_back(*param.default_value());
    }
  }
}

namespace {

// Whether a number may stand where the operator's schema takes a tensor. torch.ops (and so the
// `aten` reference and the proxy) converts a Python number to a wrapped-number tensor only for
// prims operators and a short list of ATen arithmetic ones (the list of PyTorch's Python argument
// parser, should_allow_numbers_as_tensors); any other operator, TorchBind method or custom
// operator refuses the call.
bool numbers_as_tensors(const Node& node) {
  if (node.kind != NodeKind::kOp || !node.op.has_value()) {
    return false;
  }
  const std::string& name = node.op->schema().name();
  const auto sep = name.find("::");
  if (sep == std::string::npos) {
    return false;
  }
  const std::string ns = name.substr(0, sep);
  if (ns == "prims") {
    return true;
  }
  // The same list as torchexec_proxy._schema's: these bases with "", "_" and "_out", and four more.
  static const std::unordered_set<std::string> kAten = [] {
    std::unordered_set<std::string> names = {"to", "_to_copy", "copy_", "_conj"};
    for (const char* base : {"add", "sub", "subtract", "mul", "multiply", "div", "divide",
                             "true_divide", "floor_divide"}) {
      for (const char* suffix : {"", "_", "_out"}) {
        names.insert(std::string(base) + suffix);
      }
    }
    return names;
  }();
  return ns == "aten" && kAten.count(name.substr(sep + 2)) > 0;
}

}  // namespace

void Builder::compile_argument(Node& node, const c10::Argument& param, const ArgRow& arg) {
  const std::string what = "argument '" + param.name() + "'";
  const std::string& tag = arg_tag(arg);
  const std::vector<int64_t>& ints = arg_ints(arg);
  const TypePtr& want = param.type();
  const bool tensor_param = unwrap_optional(want)->kind() == TypeKind::TensorType;
  if (!is_slot_tag(tag)) {
    const bool number = tag == "int" || tag == "float" || tag == "bool" || tag == "complex";
    TORCH_CHECK(!(tensor_param && number) || numbers_as_tensors(node), where_, ": ", what,
                " expects ", type_name(want), " but the plan gives a constant of type ",
                tag, " (", node.target, " does not take numbers as tensors)");
    IValue value;
    try {
      value = decode_static(arg, want);
    } catch (const c10::Error& err) {
      TORCH_CHECK(false, where_, ": ", what, ": ", err.msg());
    }
    node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
    node.statics.push_back(std::move(value));
  } else if (tag == "slot") {
    TORCH_CHECK(ints.size() == 1, where_, ": ", what, " needs exactly one slot");
    const int64_t slot = ints[0];
    const TypePtr have = read(slot, what);
    const auto hk = have->kind();
    if (tensor_param && (hk == TypeKind::IntType || hk == TypeKind::FloatType ||
                         hk == TypeKind::BoolType || hk == TypeKind::NumberType)) {
      TORCH_CHECK(numbers_as_tensors(node), where_, ": ", what, " expects ", type_name(want),
                  " but slot ", slot, " holds ", type_name(have), " (", node.target,
                  " does not take numbers as tensors)");
      // A SymInt/SymFloat where the schema takes a tensor (aten.mul.Tensor(x, n)): wrapped
      // into a number tensor at run time, as torch.ops does for Python numbers.
      node.steps.push_back({StepKind::kNumberToTensor, slot});
      return;
    }
    TORCH_CHECK(accepts(have, want), where_, ": ", what, " expects ", type_name(want),
                " but slot ", slot, " holds ", type_name(have));
    node.steps.push_back({StepKind::kSlot, slot});
  } else if (tag == "slots") {
    auto list_type = unwrap_optional(want)->cast<c10::ListType>();
    const bool tensors = list_type != nullptr &&
        unwrap_optional(list_type->getElementType())->kind() == TypeKind::TensorType;
    TORCH_CHECK(tensors, where_, ": ", what, " expects ", type_name(want),
                ", not a list of tensors");
    const bool optional = list_type->getElementType()->kind() == TypeKind::OptionalType;
    for (int64_t slot : ints) {
      if (slot == -1) {
        TORCH_CHECK(optional, where_, ": ", what, " expects ", type_name(want),
                    ", which has no missing (None) elements");
      } else {
        const TypePtr have = read(slot, what);
        TORCH_CHECK(accepts(have, c10::TensorType::get()), where_, ": ", what,
                    " expects tensors but slot ", slot, " holds ", type_name(have));
      }
    }
    node.steps.push_back({optional ? StepKind::kOptTensorList : StepKind::kTensorList,
                          static_cast<int64_t>(node.lists.size())});
    node.lists.push_back(ints);
  } else {  // mixed
    auto list_type = unwrap_optional(want)->cast<c10::ListType>();
    TORCH_CHECK(list_type != nullptr && list_type->getElementType()->kind() == TypeKind::IntType,
                where_, ": ", what, " expects ", type_name(want), ", not a list of ints");
    TORCH_CHECK(ints.size() % 2 == 0, where_, ": ", what,
                " must hold (is_slot, value) pairs");
    std::vector<MixedItem> mixed;
    for (size_t i = 0; i < ints.size(); i += 2) {
      if (ints[i] != 0) {
        const TypePtr have = read(ints[i + 1], what);
        TORCH_CHECK(accepts(have, c10::IntType::get()), where_, ": ", what,
                    " expects ints but slot ", ints[i + 1], " holds ", type_name(have));
      }
      mixed.push_back({ints[i] != 0, ints[i + 1]});
    }
    node.steps.push_back({StepKind::kIntList, static_cast<int64_t>(node.mixed.size())});
    node.mixed.push_back(std::move(mixed));
  }
}

// A freed slot read exactly once by the call (as a plain slot argument) is moved onto the stack
// instead of copied; the others are cleared after the call.
void Builder::compile_frees(Node& node, const std::vector<int64_t>& frees, int64_t index) {
  std::unordered_map<int64_t, int> reads;
  for (const auto& step : node.steps) {
    if (step.kind == StepKind::kSlot) {
      reads[step.index] += 1;
    } else if (step.kind == StepKind::kNumberToTensor) {
      reads[step.index] += 2;  // read, never moved
    }
  }
  for (const auto& list : node.lists) {
    for (int64_t s : list) {
      reads[s] += 2;
    }
  }
  for (const auto& list : node.mixed) {
    for (const auto& item : list) {
      if (item.from_slot) {
        reads[item.value] += 2;
      }
    }
  }
  for (int64_t slot : frees) {
    check_slot_index(slot, "a freed slot");
    TORCH_CHECK(type_[static_cast<size_t>(slot)] != nullptr, where_, ": frees slot ", slot,
                ", which holds no value");
    type_[static_cast<size_t>(slot)] = nullptr;
    freed_by_[static_cast<size_t>(slot)] = index;
    auto it = reads.find(slot);
    if (it != reads.end() && it->second == 1) {
      for (auto& step : node.steps) {
        if (step.kind == StepKind::kSlot && step.index == slot) {
          step.kind = StepKind::kSlotMove;
        }
      }
    } else {
      node.frees.push_back(slot);
    }
  }
}

// "values": one output per returned value; "list": the single returned list spread over the
// outputs; "tuple": the returned values, or the elements of a single returned tuple.
void Builder::bind_outputs(Node& node, const std::vector<TypePtr>& returns,
                           const std::vector<int64_t>& outputs, bool tuple) {
  std::vector<TypePtr> types;
  if (node.returns_list) {
    TORCH_CHECK(returns.size() == 1, where_, ": returns_list is set but the operator returns ",
                returns.size(), " values");
    auto list = unwrap_optional(returns[0])->cast<c10::ListType>();
    TORCH_CHECK(list != nullptr, where_, ": returns_list is set but the operator returns ",
                type_name(returns[0]));
    types.assign(outputs.size(), list->getElementType());
  } else if (tuple && returns.size() == 1 && returns[0]->kind() == TypeKind::TupleType &&
             returns[0]->containedTypes().size() == outputs.size()) {
    node.unpack_tuple = true;
    auto contained = returns[0]->containedTypes();
    types.assign(contained.begin(), contained.end());
  } else {
    TORCH_CHECK(outputs.size() == returns.size(), where_, ": returns ", returns.size(),
                " values but the plan stores ", outputs.size());
    types = returns;
  }
  node.outputs = outputs;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i] != -1) {
      write(outputs[i], types[i], "output " + std::to_string(i));
    }
  }
}

}  // namespace torchexec
