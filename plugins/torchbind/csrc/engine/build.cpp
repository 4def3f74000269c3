// Building an Engine: decode the encoded plan, validate all of it, and compile every node into
// argument steps. Every problem raises c10::Error (RuntimeError in Python) whose message names
// the node; nothing invalid reaches run().

#include "engine.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace torchexec {

using c10::IValue;
using c10::TypeKind;
using c10::TypePtr;

namespace {

constexpr int64_t kMaxSlots = int64_t{1} << 30;

std::vector<IValue> items(const IValue& v, const std::string& what) {
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    return std::vector<IValue>(elems.begin(), elems.end());
  }
  if (v.isList()) {
    auto list = v.toListRef();
    return std::vector<IValue>(list.begin(), list.end());
  }
  TORCH_CHECK(false, what, " must be a tuple, got ", v.tagKind());
}

std::vector<IValue> fixed(const IValue& v, size_t n, const std::string& what) {
  auto out = items(v, what);
  TORCH_CHECK(out.size() == n, what, " must have ", n, " fields, got ", out.size());
  return out;
}

int64_t to_int(const IValue& v, const std::string& what) {
  TORCH_CHECK(v.isInt(), what, " must be an int, got ", v.tagKind());
  return v.toInt();
}

std::string to_str(const IValue& v, const std::string& what) {
  TORCH_CHECK(v.isString(), what, " must be a str, got ", v.tagKind());
  return v.toStringRef();
}

TypePtr unwrap_optional(const TypePtr& t) {
  if (auto opt = t->cast<c10::OptionalType>()) {
    return opt->getElementType();
  }
  return t;
}

// Whether a slot holding a value of type `have` may be passed where `want` is expected.
bool accepts(const TypePtr& have, const TypePtr& want) {
  if (have->kind() == TypeKind::AnyType || want->kind() == TypeKind::AnyType) {
    return true;
  }
  if (have->isSubtypeOf(*want)) {
    return true;
  }
  const TypePtr w = unwrap_optional(want);
  // Scalar takes bools; an untyped number (a Scalar return) may feed an int/float/bool
  // argument: the kernel's IValue accessors check the actual value at run time.
  if (w->kind() == TypeKind::NumberType && have->kind() == TypeKind::BoolType) {
    return true;
  }
  if (have->kind() == TypeKind::NumberType &&
      (w->kind() == TypeKind::IntType || w->kind() == TypeKind::FloatType ||
       w->kind() == TypeKind::BoolType)) {
    return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& parts) {
  std::ostringstream out;
  for (size_t i = 0; i < parts.size(); ++i) {
    out << (i ? ", " : "") << parts[i];
  }
  return out.str();
}

}  // namespace

class Builder {
 public:
  explicit Builder(Engine& engine) : e_(engine) {}

  void build(const IValue& spec) {
    auto top = items(spec, "the engine plan");
    TORCH_CHECK(top.size() == 9 && top[0].isString() && top[0].toStringRef() == kSpecMagic,
                "torchexec.Engine: not an engine plan (expected a 9-tuple starting with '",
                kSpecMagic, "'); build it with torchexec_torchbind.encode_plan()");
    const int64_t version = to_int(top[1], "the plan version");
    TORCH_CHECK(version == kSpecVersion, "torchexec.Engine: plan version ", version,
                " is not supported (this engine reads version ", kSpecVersion, ")");
    for (const auto& ns : items(top[2], "allowed_namespaces")) {
      e_.allowed_namespaces_.push_back(to_str(ns, "an allowed namespace"));
    }
    e_.num_slots_ = to_int(top[3], "num_slots");
    TORCH_CHECK(e_.num_slots_ >= 0 && e_.num_slots_ <= kMaxSlots,
                "torchexec.Engine: num_slots must be in [0, 2^30], got ", e_.num_slots_);
    type_.assign(static_cast<size_t>(e_.num_slots_), nullptr);
    freed_by_.assign(static_cast<size_t>(e_.num_slots_), -1);

    where_ = "torchexec.Engine: input";
    decode_inputs(top[4]);
    where_ = "torchexec.Engine: state";
    decode_state(top[5]);
    auto nodes = items(top[6], "nodes");
    e_.nodes_.reserve(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      decode_node(nodes[i], static_cast<int64_t>(i));
    }
    where_ = "torchexec.Engine: program output";
    decode_outputs(top[7]);
    where_ = "torchexec.Engine: mutation";
    decode_mutations(top[8]);
  }

 private:
  Engine& e_;
  std::vector<TypePtr> type_;      // type of the value a slot holds; nullptr = empty
  std::vector<int64_t> freed_by_;  // index of the node that last freed a slot
  std::string where_;              // prefix of every message
  std::unordered_map<std::string, at::Tensor> state_by_name_;

  void check_slot_index(int64_t slot, const std::string& what) const {
    TORCH_CHECK(slot >= 0 && slot < e_.num_slots_, where_, ": ", what, " refers to slot ",
                slot, ", outside [0, ", e_.num_slots_, ")");
  }

  TypePtr read(int64_t slot, const std::string& what) const {
    check_slot_index(slot, what);
    const TypePtr& t = type_[static_cast<size_t>(slot)];
    if (!t) {
      const int64_t freer = freed_by_[static_cast<size_t>(slot)];
      TORCH_CHECK(freer < 0, where_, ": ", what, " reads slot ", slot, " after node '",
                  e_.nodes_[static_cast<size_t>(freer)].name, "' freed it");
      TORCH_CHECK(false, where_, ": ", what, " reads slot ", slot,
                  " before anything writes it");
    }
    return t;
  }

  void write(int64_t slot, TypePtr type, const std::string& what) {
    check_slot_index(slot, what);
    type_[static_cast<size_t>(slot)] = std::move(type);
  }

  void decode_inputs(const IValue& v) {
    auto inputs = items(v, "inputs");
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string what = "input " + std::to_string(i);
      auto f = fixed(inputs[i], 5, what);
      InputSpec spec;
      spec.slot = to_int(f[0], what + " slot");
      spec.kind = to_str(f[1], what + " kind");
      const std::string dtype = to_str(f[2], what + " dtype");
      const std::string device = to_str(f[3], what + " device type");
      spec.device_index = to_int(f[4], what + " device index");
      TypePtr type;
      if (spec.kind == "tensor") {
        type = c10::TensorType::get();
      } else if (spec.kind == "int") {
        type = c10::IntType::get();
      } else if (spec.kind == "float") {
        type = c10::FloatType::get();
      } else if (spec.kind == "bool") {
        type = c10::BoolType::get();
      } else if (spec.kind == "str") {
        type = c10::StringType::get();
      } else if (spec.kind == "any") {
        type = c10::AnyType::get();
      } else {
        TORCH_CHECK(false, where_, " ", i, ": unknown input kind '", spec.kind,
                    "' (expected tensor, int, float, bool, str or any)");
      }
      if (!dtype.empty()) {
        spec.dtype = parse_dtype(dtype);
      }
      if (!device.empty()) {
        spec.device_type = c10::Device(device).type();
      }
      if (spec.slot != -1) {
        write(spec.slot, type, what);
      }
      e_.inputs_.push_back(std::move(spec));
    }
  }

  void decode_state(const IValue& v) {
    for (const auto& entry : items(v, "state")) {
      auto f = fixed(entry, 4, "a state entry");
      const int64_t slot = to_int(f[0], "state slot");
      const std::string kind = to_str(f[1], "state kind");
      const std::string name = to_str(f[2], "state name");
      const IValue& value = f[3];
      const std::string what = kind + " '" + name + "'";
      if (kind == "custom_obj") {
        TORCH_CHECK(!value.isNone(), where_, ": custom object '", name,
                    "' was not given; pass it by name in custom_objs");
        TORCH_CHECK(value.isObject() && !value.toObjectRef().type()->is_module(), where_,
                    ": custom object '", name, "' must be a TorchBind object, got ",
                    value.tagKind());
      } else if (kind == "parameter" || kind == "buffer" || kind == "constant") {
        TORCH_CHECK(value.isTensor() || (kind == "constant" && value.isObject()), where_, ": ",
                    what, " must be a tensor, got ", value.tagKind());
      } else {
        TORCH_CHECK(false, where_, ": unknown state kind '", kind, "' for '", name, "'");
      }
      write(slot, value.type(), what);
      if (value.isTensor()) {
        state_by_name_.emplace(name, value.toTensor());
      }
      e_.state_.emplace_back(slot, value);
    }
  }

  // ---- nodes ------------------------------------------------------------------------------

  void decode_node(const IValue& v, int64_t index) {
    where_ = "torchexec.Engine: node " + std::to_string(index);
    auto f = fixed(v, 9, "the node");
    Node node;
    node.name = to_str(f[0], "the node name");
    const std::string kind = to_str(f[1], "the node kind");
    const std::string target = to_str(f[2], "the node target");
    const std::string overload = to_str(f[3], "the node overload");
    where_ = "torchexec.Engine: node '" + node.name + "'";
    auto args = items(f[4], "the node's args");
    auto kwargs = items(f[5], "the node's kwargs");
    std::vector<int64_t> outputs;
    for (const auto& o : items(f[6], "the node's outputs")) {
      outputs.push_back(to_int(o, "an output slot"));
    }
    const std::string result_mode = to_str(f[7], "the node's result mode");
    TORCH_CHECK(result_mode == "values" || result_mode == "list" || result_mode == "tuple",
                where_, ": result mode must be values, list or tuple, got '", result_mode, "'");
    node.returns_list = result_mode == "list";
    std::vector<int64_t> frees;
    for (const auto& s : items(f[8], "the node's frees")) {
      frees.push_back(to_int(s, "a freed slot"));
    }

    std::vector<TypePtr> result_types;
    if (kind == "op") {
      node.kind = NodeKind::kOp;
      node.target = overload.empty() ? target : target + "." + overload;
      where_ += " (" + node.target + ")";
      result_types = compile_op(node, target, overload, args, kwargs);
    } else if (kind == "torchbind") {
      node.kind = NodeKind::kTorchBind;
      result_types = compile_torchbind(node, args, kwargs);
    } else if (kind == "python") {
      node.kind = NodeKind::kPython;
      node.target = target;
      where_ += " (" + target + ")";
      result_types = compile_python(node, target, args, kwargs);
    } else {
      TORCH_CHECK(false, where_, ": unknown node kind '", kind,
                  "' (expected op, torchbind or python)");
    }
    // Same order as run(): the call, then the frees, then the outputs are stored (so an output
    // may reuse a slot the call frees).
    compile_frees(node, frees, index);
    bind_outputs(node, result_types, outputs, result_mode == "tuple");
    e_.max_stack_ = std::max({e_.max_stack_, node.steps.size(), node.outputs.size()});
    e_.nodes_.push_back(std::move(node));
  }

  std::vector<TypePtr> compile_op(Node& node, const std::string& name,
                                  const std::string& overload, const std::vector<IValue>& args,
                                  const std::vector<IValue>& kwargs) {
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
    bind_arguments(node, schema, 0, args, kwargs);
    std::vector<TypePtr> returns;
    for (const auto& r : schema.returns()) {
      returns.push_back(r.type());
    }
    return returns;
  }

  std::vector<TypePtr> compile_torchbind(Node& node, const std::vector<IValue>& args,
                                         const std::vector<IValue>& kwargs) {
    TORCH_CHECK(args.size() >= 2, where_,
                ": call_torchbind needs the object and the method name, got ", args.size(),
                " arguments");
    auto obj = fixed(args[0], 2, "the object argument");
    TORCH_CHECK(to_str(obj[0], "the object argument's tag") == "slot", where_,
                ": the object of call_torchbind must be read from a slot");
    const int64_t obj_slot = to_int(obj[1], "the object slot");
    const TypePtr obj_type = read(obj_slot, "the object");
    auto cls = obj_type->cast<c10::ClassType>();
    TORCH_CHECK(cls != nullptr, where_, ": call_torchbind needs a TorchBind object, slot ",
                obj_slot, " holds ", obj_type->repr_str());
    auto name_arg = fixed(args[1], 2, "the method name argument");
    TORCH_CHECK(to_str(name_arg[0], "the method name tag") == "static", where_,
                ": the method name of call_torchbind must be static");
    const IValue method_name = decode_static(name_arg[1], c10::StringType::get());
    const std::string& method = method_name.toStringRef();
    const std::string class_name = cls->name() ? cls->name()->qualifiedName() : cls->repr_str();
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
    TORCH_CHECK(!schema.arguments().empty(), where_, ": method '", method,
                "' does not take self");
    node.steps.push_back({StepKind::kSlot, obj_slot});
    std::vector<IValue> rest(args.begin() + 2, args.end());
    bind_arguments(node, schema, 1, rest, kwargs);
    std::vector<TypePtr> returns;
    for (const auto& r : schema.returns()) {
      returns.push_back(r.type());
    }
    return returns;
  }

  std::vector<TypePtr> compile_python(Node& node, const std::string& target,
                                      const std::vector<IValue>& args,
                                      const std::vector<IValue>& kwargs) {
    auto fn = python_function(target);
    TORCH_CHECK(fn.has_value(), where_, ": unsupported Python function '", target, "'");
    node.pyfn = *fn;
    TORCH_CHECK(kwargs.empty(), where_, ": Python functions take no keyword arguments");
    const int64_t arity = python_arity(*fn);
    TORCH_CHECK(static_cast<int64_t>(args.size()) == arity, where_, ": takes ", arity,
                " arguments, got ", args.size());
    std::vector<TypePtr> arg_types;
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string what = "argument " + std::to_string(i);
      auto a = fixed(args[i], 2, what);
      const std::string tag = to_str(a[0], what + " tag");
      TypePtr t;
      if (tag == "static") {
        IValue value = decode_static_untyped(a[1]);
        TORCH_CHECK(value.isInt() || value.isDouble() || value.isBool(), where_, ": ", what,
                    " must be a number, got ", value.tagKind());
        t = value.type();
        node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
        node.statics.push_back(std::move(value));
      } else if (tag == "slot") {
        const int64_t slot = to_int(a[1], what + " slot");
        t = read(slot, what);
        const auto k = t->kind();
        TORCH_CHECK(k == TypeKind::IntType || k == TypeKind::FloatType ||
                        k == TypeKind::BoolType || k == TypeKind::NumberType ||
                        k == TypeKind::AnyType,
                    where_, ": ", what, " must be a number, slot ", slot, " holds ",
                    t->repr_str());
        node.steps.push_back({StepKind::kSlot, slot});
      } else {
        TORCH_CHECK(false, where_, ": ", what, " must be a slot or a static number, got '",
                    tag, "'");
      }
      arg_types.push_back(std::move(t));
    }
    return {python_result_type(*fn, arg_types)};
  }

  // Matches positional and keyword arguments to `schema.arguments()[first:]`, filling defaults.
  void bind_arguments(Node& node, const c10::FunctionSchema& schema, size_t first,
                      const std::vector<IValue>& args, const std::vector<IValue>& kwargs) {
    const auto& params = schema.arguments();
    const size_t n = params.size() - first;
    TORCH_CHECK(args.size() <= n, where_, ": takes ", n, " arguments, got ", args.size(),
                " positional ones");
    std::vector<std::optional<IValue>> bound(n);
    for (size_t i = 0; i < args.size(); ++i) {
      bound[i] = args[i];
    }
    for (const auto& kw : kwargs) {
      auto f = fixed(kw, 2, "a keyword argument");
      const std::string name = to_str(f[0], "a keyword argument name");
      size_t j = 0;
      while (j < n && params[first + j].name() != name) {
        ++j;
      }
      if (j == n) {
        std::vector<std::string> names;
        for (size_t k = first; k < params.size(); ++k) {
          names.push_back(params[k].name());
        }
        TORCH_CHECK(false, where_, ": no argument named '", name, "' (arguments: ",
                    join(names), ")");
      }
      TORCH_CHECK(!bound[j].has_value(), where_, ": argument '", name, "' is given twice");
      bound[j] = f[1];
    }
    for (size_t j = 0; j < n; ++j) {
      const c10::Argument& param = params[first + j];
      if (bound[j].has_value()) {
        compile_argument(node, param, *bound[j]);
      } else {
        TORCH_CHECK(param.default_value().has_value(), where_, ": missing argument '",
                    param.name(), "' (", param.type()->repr_str(), ")");
        node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
        node.statics.push_back(*param.default_value());
      }
    }
  }

  void compile_argument(Node& node, const c10::Argument& param, const IValue& encoded) {
    const std::string what = "argument '" + param.name() + "'";
    auto a = fixed(encoded, 2, what);
    const std::string tag = to_str(a[0], what + " tag");
    const TypePtr& want = param.type();
    if (tag == "static") {
      IValue value;
      try {
        value = decode_static(a[1], want);
      } catch (const c10::Error& err) {
        TORCH_CHECK(false, where_, ": ", what, ": ", err.msg());
      }
      node.steps.push_back({StepKind::kStatic, static_cast<int64_t>(node.statics.size())});
      node.statics.push_back(std::move(value));
    } else if (tag == "slot") {
      const int64_t slot = to_int(a[1], what + " slot");
      const TypePtr have = read(slot, what);
      const auto hk = have->kind();
      if (unwrap_optional(want)->kind() == TypeKind::TensorType &&
          (hk == TypeKind::IntType || hk == TypeKind::FloatType || hk == TypeKind::BoolType ||
           hk == TypeKind::NumberType)) {
        // A SymInt/SymFloat where the schema takes a tensor (aten.mul.Tensor(x, n)): wrapped
        // into a number tensor at run time, as torch.ops does for Python numbers.
        node.steps.push_back({StepKind::kNumberToTensor, slot});
        return;
      }
      TORCH_CHECK(accepts(have, want), where_, ": ", what, " expects ", want->repr_str(),
                  " but slot ", slot, " holds ", have->repr_str());
      node.steps.push_back({StepKind::kSlot, slot});
    } else if (tag == "slots") {
      const TypePtr list = unwrap_optional(want);
      auto list_type = list->cast<c10::ListType>();
      TORCH_CHECK(list_type != nullptr, where_, ": ", what, " expects ", want->repr_str(),
                  ", not a list of tensors");
      const TypePtr& elem = list_type->getElementType();
      const bool optional = elem->kind() == TypeKind::OptionalType;
      TORCH_CHECK(unwrap_optional(elem)->kind() == TypeKind::TensorType, where_, ": ", what,
                  " expects ", want->repr_str(), ", not a list of tensors");
      std::vector<int64_t> slots;
      for (const auto& item : items(a[1], what + " items")) {
        const int64_t slot = to_int(item, what + " item");
        if (slot == -1) {
          TORCH_CHECK(optional, where_, ": ", what, " expects ", want->repr_str(),
                      ", which has no missing (None) elements");
        } else {
          const TypePtr have = read(slot, what);
          TORCH_CHECK(accepts(have, c10::TensorType::get()), where_, ": ", what,
                      " expects tensors but slot ", slot, " holds ", have->repr_str());
        }
        slots.push_back(slot);
      }
      node.steps.push_back({optional ? StepKind::kOptTensorList : StepKind::kTensorList,
                            static_cast<int64_t>(node.lists.size())});
      node.lists.push_back(std::move(slots));
    } else if (tag == "mixed") {
      const TypePtr list = unwrap_optional(want);
      auto list_type = list->cast<c10::ListType>();
      TORCH_CHECK(list_type != nullptr &&
                      list_type->getElementType()->kind() == TypeKind::IntType,
                  where_, ": ", what, " expects ", want->repr_str(), ", not a list of ints");
      std::vector<MixedItem> mixed;
      for (const auto& item : items(a[1], what + " items")) {
        auto p = fixed(item, 2, what + " item");
        const std::string item_tag = to_str(p[0], what + " item tag");
        const int64_t value = to_int(p[1], what + " item value");
        if (item_tag == "int") {
          mixed.push_back({false, value});
        } else if (item_tag == "slot") {
          const TypePtr have = read(value, what);
          TORCH_CHECK(accepts(have, c10::IntType::get()), where_, ": ", what,
                      " expects ints but slot ", value, " holds ", have->repr_str());
          mixed.push_back({true, value});
        } else {
          TORCH_CHECK(false, where_, ": ", what, " item tag must be 'int' or 'slot', got '",
                      item_tag, "'");
        }
      }
      node.steps.push_back({StepKind::kIntList, static_cast<int64_t>(node.mixed.size())});
      node.mixed.push_back(std::move(mixed));
    } else {
      TORCH_CHECK(false, where_, ": ", what, " has unknown tag '", tag,
                  "' (expected static, slot, slots or mixed)");
    }
  }

  // "values": one output per returned value; "list": the single returned list spread over the
  // outputs; "tuple": the returned values, or the elements of a single returned tuple.
  void bind_outputs(Node& node, const std::vector<TypePtr>& returns,
                    const std::vector<int64_t>& outputs, bool tuple) {
    std::vector<TypePtr> types;
    if (node.returns_list) {
      TORCH_CHECK(returns.size() == 1, where_, ": returns_list is set but the operator returns ",
                  returns.size(), " values");
      auto list = unwrap_optional(returns[0])->cast<c10::ListType>();
      TORCH_CHECK(list != nullptr, where_, ": returns_list is set but the operator returns ",
                  returns[0]->repr_str());
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

  // A freed slot read exactly once by the call (as a plain slot argument) is moved onto the
  // stack instead of copied; the others are cleared after the call.
  void compile_frees(Node& node, const std::vector<int64_t>& frees, int64_t index) {
    std::unordered_map<int64_t, int> reads;
    for (const auto& step : node.steps) {
      if (step.kind == StepKind::kSlot) {
        reads[step.index] += 1;
      }
    }
    for (const auto& list : node.lists) {
      for (int64_t s : list) {
        reads[s] += 2;  // never moved
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

  void decode_outputs(const IValue& v) {
    auto outs = items(v, "outputs");
    for (size_t i = 0; i < outs.size(); ++i) {
      const std::string what = "output " + std::to_string(i);
      auto f = fixed(outs[i], 2, what);
      const std::string tag = to_str(f[0], what + " tag");
      Output out;
      if (tag == "slot") {
        out.kind = OutputKind::kSlot;
        out.slot = to_int(f[1], what + " slot");
        read(out.slot, what);
      } else if (tag == "static") {
        out.kind = OutputKind::kStatic;
        out.value = decode_static_untyped(f[1]);
      } else {
        TORCH_CHECK(false, where_, " ", i, ": unknown tag '", tag,
                    "' (expected slot or static)");
      }
      e_.outputs_.push_back(std::move(out));
    }
  }

  void decode_mutations(const IValue& v) {
    for (const auto& entry : items(v, "mutations")) {
      auto f = fixed(entry, 4, "a mutation");
      Mutation m;
      m.slot = to_int(f[0], "the mutation slot");
      const std::string kind = to_str(f[1], "the mutation kind");
      m.target = to_str(f[2], "the mutation target");
      m.input_index = to_int(f[3], "the mutation input index");
      const TypePtr t = read(m.slot, "the update of " + kind + " '" + m.target + "'");
      TORCH_CHECK(accepts(t, c10::TensorType::get()), where_, ": the update of '", m.target,
                  "' must be a tensor, slot ", m.slot, " holds ", t->repr_str());
      if (kind == "buffer") {
        m.to_buffer = true;
        auto it = state_by_name_.find(m.target);
        TORCH_CHECK(it != state_by_name_.end(), where_, ": buffer '", m.target,
                    "' is not part of the state");
        m.buffer = it->second;
      } else if (kind == "user_input") {
        m.to_buffer = false;
        TORCH_CHECK(m.input_index >= 0 &&
                        m.input_index < static_cast<int64_t>(e_.inputs_.size()),
                    where_, ": user input ", m.input_index, " does not exist");
        TORCH_CHECK(e_.inputs_[static_cast<size_t>(m.input_index)].kind == "tensor", where_,
                    ": user input ", m.input_index, " is not a tensor");
      } else {
        TORCH_CHECK(false, where_, ": unknown mutation kind '", kind,
                    "' (expected buffer or user_input)");
      }
      e_.mutations_.push_back(std::move(m));
    }
  }

};

Engine::Engine(c10::IValue spec) : spec_(std::move(spec)) {
  Builder builder(*this);
  builder.build(spec_);
}

}  // namespace torchexec
