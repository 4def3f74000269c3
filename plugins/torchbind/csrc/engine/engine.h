// torch.classes.torchexec.Engine: a prepared program that runs node by node through the
// dispatcher, with no Python in the loop.
//
// The engine is built from an *encoded plan* (PlanState below, produced by
// torchexec_torchbind/_encode.py). Its shape is fixed and typed, so that Python hands it over
// without type inference and TorchScript pickles it as the engine's state. Building validates the
// whole plan and compiles every node into a list of argument steps; running only moves IValues
// between slots and a reused stack.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/function.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/jit_type.h>
#include <torch/custom_class.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace torchexec {

// Version of the encoded plan (the first two fields are "torchexec.engine", version).
constexpr int64_t kSpecVersion = 1;
constexpr const char* kSpecMagic = "torchexec.engine";

// One argument (or program output) of the encoded plan:
//   (keyword name or "", tag, ints, floats, text, value)
// tag "slot": ints = [slot]; "slots": ints = slots (-1 = None); "mixed": ints = pairs
// (is_slot, value); anything else is a static value: "none", "int" / "bool" (ints[0]),
// "float" (floats[0]), "complex" (floats = [re, im]), "str" / "dtype" / "layout" /
// "memory_format" / "device" (text), "ints" / "bools" (ints), "floats" (floats), "tensor" (value).
using ArgRow = std::tuple<std::string, std::string, std::vector<int64_t>, std::vector<double>,
                          std::string, c10::IValue>;
// (slot or -1, kind, dtype name or "", device type or "", device index or -1)
using InputRow = std::tuple<int64_t, std::string, std::string, std::string, int64_t>;
// (slot, kind, name, value)
using StateRow = std::tuple<int64_t, std::string, std::string, c10::IValue>;
// (name, kind, target, overload, args, outputs (-1 = unused), result mode, frees)
using NodeRow = std::tuple<std::string, std::string, std::string, std::string, std::vector<ArgRow>,
                           std::vector<int64_t>, std::string, std::vector<int64_t>>;
// (slot, "buffer" | "user_input", buffer name or "", user input index or -1)
using MutationRow = std::tuple<int64_t, std::string, std::string, int64_t>;
// (magic, version, allowed namespaces, num_slots, inputs, state, nodes, outputs, mutations)
using PlanState = std::tuple<std::string, int64_t, std::vector<std::string>, int64_t,
                             std::vector<InputRow>, std::vector<StateRow>, std::vector<NodeRow>,
                             std::vector<ArgRow>, std::vector<MutationRow>>;

// How one argument of a call is produced at run time.
enum class StepKind : uint8_t {
  kStatic,         // push statics[index] (prefilled at build)
  kSlot,           // push a copy of slots[index]
  kSlotMove,       // push slots[index] and leave the slot empty (its last read)
  kTensorList,     // build a Tensor[] from lists[index]
  kOptTensorList,  // build a Tensor?[] from lists[index] (-1 = None)
  kIntList,        // build an int[] from mixed[index]
  kNumberToTensor, // a number read from slots[index] where a tensor is expected (wrapped)
};

struct Step {
  StepKind kind;
  int64_t index;
};

// An element of a SymInt[] argument: a constant, or an int read from a slot.
struct MixedItem {
  bool from_slot;
  int64_t value;  // the constant, or the slot index
};

enum class NodeKind : uint8_t { kOp, kTorchBind, kPython, kHop };

// Higher-order operators a kHop node runs (hop.cpp), each on child engines (its subgraphs).
enum class Hop : uint8_t { kCond, kWhileLoop, kMap, kScan, kInvokeSubgraph };

class Engine;

// Integer / float arithmetic of SymInt nodes (the Python operator module's functions).
enum class PyFn : uint8_t {
  kAdd, kSub, kMul, kFloorDiv, kMod, kTrueDiv, kPow, kNeg,
  kEq, kNe, kLt, kLe, kGt, kGe, kAnd, kOr, kNot,
  kMax, kMin, kCeil, kFloor, kTrunc, kToFloat, kToInt,
  kPos, kLShift, kRShift, kIte, kSqrt,
};

struct Node {
  std::string name;     // the program's node name, used in every message
  std::string target;   // "aten::add.Tensor", "call_torchbind(Scale.apply)", "_operator.add"
  NodeKind kind = NodeKind::kOp;
  std::optional<c10::OperatorHandle> op;  // kOp
  torch::jit::Function* method = nullptr;  // kTorchBind (owned by the class type)
  c10::ClassTypePtr method_class;          // keeps the class type (and its methods) alive
  PyFn pyfn = PyFn::kAdd;                  // kPython
  std::vector<Step> steps;                 // one per stack entry, in order
  std::vector<c10::IValue> statics;
  std::vector<std::vector<int64_t>> lists;
  std::vector<std::vector<MixedItem>> mixed;
  std::vector<int64_t> outputs;  // slot of each returned value, -1 = unused
  bool returns_list = false;     // the single returned list is spread over `outputs`
  bool unpack_tuple = false;     // the single returned tuple is spread over `outputs`
  std::vector<int64_t> frees;    // slots cleared after the call (moved ones excluded)
  // kHop: the operator, its subgraphs (child engines, built and validated first), the
  // operand groups (in `lists`), and cond's predicate (a slot, or a constant).
  Hop hop = Hop::kCond;
  std::vector<c10::intrusive_ptr<Engine>> subgraphs;
  int64_t pred_slot = -1;
  bool pred_value = false;
  int64_t max_iterations = -1;  // while_loop: stop with an error after this many (-1: never)
};

// What a user input must be; encoded as "tensor", "int", "float", "bool", "str" or "any".
enum class InputKind : uint8_t { kTensor, kInt, kFloat, kBool, kStr, kAny };

// What run() checks of one user input.
struct InputSpec {
  int64_t slot = -1;  // -1: the program does not read it (a constant input)
  InputKind kind = InputKind::kAny;
  std::optional<c10::ScalarType> dtype;
  std::optional<c10::DeviceType> device_type;
  int64_t device_index = -1;  // -1: any index
};

enum class OutputKind : uint8_t { kSlot, kStatic };

struct Output {
  OutputKind kind;
  int64_t slot = -1;
  c10::IValue value;
};

struct Mutation {
  int64_t slot;
  bool to_buffer;         // true: copy into `buffer`; false: into user input `input_index`
  at::Tensor buffer;
  int64_t input_index = -1;
  std::string target;     // for messages
};

class Engine : public torch::CustomClassHolder {
 public:
  explicit Engine(PlanState plan);

  // Runs the program on the flat user inputs; returns the flat user outputs.
  std::vector<c10::IValue> run(std::vector<c10::IValue> inputs) const;

  // The encoded plan, as given (the pickled state).
  const PlanState& plan() const { return plan_; }

  int64_t num_nodes() const { return static_cast<int64_t>(nodes_.size()); }
  int64_t num_slots() const { return num_slots_; }
  int64_t num_inputs() const { return static_cast<int64_t>(inputs_.size()); }
  int64_t num_outputs() const { return static_cast<int64_t>(outputs_.size()); }
  std::vector<std::string> operators() const;
  std::vector<std::string> allowed_namespaces() const { return allowed_namespaces_; }

 private:
  friend class Builder;

  void check_inputs(const std::vector<c10::IValue>& inputs) const;
  std::vector<c10::IValue> initial_slots(const std::vector<c10::IValue>& inputs) const;
  std::vector<c10::IValue> program_outputs(const std::vector<c10::IValue>& slots) const;
  void apply_mutations(const std::vector<c10::IValue>& slots,
                       const std::vector<c10::IValue>& inputs) const;

  PlanState plan_;
  std::vector<std::string> allowed_namespaces_;
  int64_t num_slots_ = 0;
  std::vector<InputSpec> inputs_;
  std::vector<std::pair<int64_t, c10::IValue>> state_;
  std::vector<Node> nodes_;
  std::vector<Output> outputs_;
  std::vector<Mutation> mutations_;
  size_t max_stack_ = 0;
};

// Runs a kHop node on the slots; leaves its results on the stack (hop.cpp).
void run_hop(const Node& node, const std::vector<c10::IValue>& slots, torch::jit::Stack& stack);

// SymInt arithmetic (python.cpp).
std::optional<PyFn> python_function(const std::string& target);
int64_t python_arity(PyFn fn);
c10::TypePtr python_result_type(PyFn fn, const std::vector<c10::TypePtr>& args);
c10::IValue python_call(PyFn fn, const c10::IValue* args);

// Static values (statics.cpp): an encoded argument row (tag and payload) converted to the IValue
// a schema argument of type `type` takes. Throws c10::Error naming what was expected.
c10::IValue decode_static(const ArgRow& row, const c10::TypePtr& type);
// An encoded static with no schema to guide it (program outputs, arguments of Python nodes).
c10::IValue decode_static_untyped(const ArgRow& row);
// How a type reads in messages: schema spelling (Scalar, Tensor, List[int], class names).
std::string type_name(const c10::TypePtr& type);
// A dtype by its Python name ("float32", "int64", ...).
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType dtype);

}  // namespace torchexec
