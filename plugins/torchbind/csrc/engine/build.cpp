// Building an Engine, part 1: the plan's header, slots, user inputs, state, program outputs and
// mutations. Nodes are in build_node.cpp.

#include "builder.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <tuple>
#include <utility>

namespace torchexec {

using c10::IValue;
using c10::TypeKind;
using c10::TypePtr;

namespace {

constexpr int64_t kMaxSlots = int64_t{1} << 30;

}  // namespace

TypePtr unwrap_optional(const TypePtr& t) {
  if (auto opt = t->cast<c10::OptionalType>()) {
    return opt->getElementType();
  }
  return t;
}

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
  return have->kind() == TypeKind::NumberType &&
      (w->kind() == TypeKind::IntType || w->kind() == TypeKind::FloatType ||
       w->kind() == TypeKind::BoolType);
}

std::string join(const std::vector<std::string>& parts) {
  std::ostringstream out;
  for (size_t i = 0; i < parts.size(); ++i) {
    out << (i ? ", " : "") << parts[i];
  }
  return out.str();
}

void Builder::build(const PlanState& plan) {
  TORCH_CHECK(std::get<0>(plan) == kSpecMagic,
              "torchexec.Engine: not an engine plan (its first field must be '", kSpecMagic,
              "'); build it with torchexec_torchbind.encode_plan()");
  const int64_t version = std::get<1>(plan);
  TORCH_CHECK(version == kSpecVersion, "torchexec.Engine: plan version ", version,
              " is not supported (this engine reads version ", kSpecVersion, ")");
  e_.allowed_namespaces_ = std::get<2>(plan);
  e_.num_slots_ = std::get<3>(plan);
  // Every slot holds an input, a state value or a node output: a plan never needs more, and the
  // bound keeps a corrupted plan from allocating without limit.
  size_t writers = std::get<4>(plan).size() + std::get<5>(plan).size();
  for (const auto& node : std::get<6>(plan)) {
    writers += std::get<5>(node).size();
  }
  TORCH_CHECK(e_.num_slots_ >= 0 && e_.num_slots_ <= kMaxSlots &&
                  static_cast<size_t>(e_.num_slots_) <= writers + 1,
              "torchexec.Engine: num_slots is ", e_.num_slots_, ", but the plan writes at most ",
              writers, " values");
  type_.assign(static_cast<size_t>(e_.num_slots_), nullptr);
  freed_by_.assign(static_cast<size_t>(e_.num_slots_), -1);

  decode_inputs(std::get<4>(plan));
  decode_state(std::get<5>(plan));
  const auto& nodes = std::get<6>(plan);
  e_.nodes_.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    decode_node(nodes[i], static_cast<int64_t>(i));
  }
  where_ = "torchexec.Engine";
  decode_outputs(std::get<7>(plan));
  decode_mutations(std::get<8>(plan));
}

void Builder::check_slot_index(int64_t slot, const std::string& what) const {
  TORCH_CHECK(slot >= 0 && slot < e_.num_slots_, where_, ": ", what, " refers to slot ", slot,
              ", outside [0, ", e_.num_slots_, ")");
}

TypePtr Builder::read(int64_t slot, const std::string& what) const {
  check_slot_index(slot, what);
  const TypePtr& t = type_[static_cast<size_t>(slot)];
  if (!t) {
    const int64_t freer = freed_by_[static_cast<size_t>(slot)];
    TORCH_CHECK(freer < 0, where_, ": ", what, " reads slot ", slot, " after node '",
                e_.nodes_[static_cast<size_t>(freer)].name, "' freed it");
    TORCH_CHECK(false, where_, ": ", what, " reads slot ", slot, " before anything writes it");
  }
  return t;
}

void Builder::write(int64_t slot, TypePtr type, const std::string& what) {
  check_slot_index(slot, what);
  type_[static_cast<size_t>(slot)] = std::move(type);
}

namespace {

// An encoded input kind: the enum run() checks and the type the input's slot holds.
std::pair<InputKind, TypePtr> input_kind(const std::string& kind) {
  if (kind == "tensor") {
    return {InputKind::kTensor, c10::TensorType::get()};
  }
  if (kind == "int") {
    return {InputKind::kInt, c10::IntType::get()};
  }
  if (kind == "float") {
    return {InputKind::kFloat, c10::FloatType::get()};
  }
  if (kind == "bool") {
    return {InputKind::kBool, c10::BoolType::get()};
  }
  if (kind == "str") {
    return {InputKind::kStr, c10::StringType::get()};
  }
  TORCH_CHECK(kind == "any", "unknown input kind '", kind,
              "' (expected tensor, int, float, bool, str or any)");
  return {InputKind::kAny, c10::AnyType::get()};
}

}  // namespace

void Builder::decode_inputs(const std::vector<InputRow>& rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string what = "input " + std::to_string(i);
    const auto& [slot, kind, dtype, device, device_index] = rows[i];
    InputSpec spec;
    spec.slot = slot;
    spec.device_index = device_index;
    TypePtr type;
    try {
      std::tie(spec.kind, type) = input_kind(kind);
      if (!dtype.empty()) {
        spec.dtype = parse_dtype(dtype);
      }
      if (!device.empty()) {
        spec.device_type = c10::Device(device).type();
      }
    } catch (const c10::Error& err) {
      TORCH_CHECK(false, where_, ": ", what, ": ", err.msg());
    }
    if (slot != -1) {
      write(slot, type, what);
    }
    e_.inputs_.push_back(std::move(spec));
  }
}

void Builder::decode_state(const std::vector<StateRow>& rows) {
  for (const auto& [slot, kind, name, value] : rows) {
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

void Builder::decode_outputs(const std::vector<ArgRow>& rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string what = "program output " + std::to_string(i);
    const std::string& tag = std::get<1>(rows[i]);
    const auto& ints = std::get<2>(rows[i]);
    Output out;
    if (tag == "slot") {
      TORCH_CHECK(ints.size() == 1, where_, ": ", what, ": a slot output needs one slot");
      out.kind = OutputKind::kSlot;
      out.slot = ints[0];
      read(out.slot, what);
    } else if (tag == "slots" || tag == "mixed") {
      TORCH_CHECK(false, where_, ": ", what, ": must be a slot or a static value, got '", tag,
                  "'");
    } else {
      out.kind = OutputKind::kStatic;
      try {
        out.value = decode_static_untyped(rows[i]);
      } catch (const c10::Error& err) {
        TORCH_CHECK(false, where_, ": ", what, ": ", err.msg());
      }
    }
    e_.outputs_.push_back(std::move(out));
  }
}

void Builder::decode_mutations(const std::vector<MutationRow>& rows) {
  for (const auto& [slot, kind, target, input_index] : rows) {
    Mutation m;
    m.slot = slot;
    m.target = target;
    m.input_index = input_index;
    const TypePtr t = read(slot, "the update of " + kind + " '" + target + "'");
    TORCH_CHECK(accepts(t, c10::TensorType::get()), where_, ": the update of '", target,
                "' must be a tensor, slot ", slot, " holds ", type_name(t));
    if (kind == "buffer") {
      m.to_buffer = true;
      auto it = state_by_name_.find(target);
      TORCH_CHECK(it != state_by_name_.end(), where_, ": buffer '", target,
                  "' is not part of the state");
      m.buffer = it->second;
    } else if (kind == "user_input") {
      m.to_buffer = false;
      TORCH_CHECK(input_index >= 0 && input_index < static_cast<int64_t>(e_.inputs_.size()),
                  where_, ": user input ", input_index, " does not exist");
      TORCH_CHECK(e_.inputs_[static_cast<size_t>(input_index)].kind == InputKind::kTensor, where_,
                  ": user input ", input_index, " is not a tensor");
    } else {
      TORCH_CHECK(false, where_, ": unknown mutation kind '", kind,
                  "' (expected buffer or user_input)");
    }
    e_.mutations_.push_back(std::move(m));
  }
}

Engine::Engine(PlanState plan) : plan_(std::move(plan)) {
  Builder builder(*this);
  builder.build(plan_);
}

}  // namespace torchexec
