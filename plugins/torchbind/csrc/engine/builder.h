// The engine's builder: validates an encoded plan and compiles it into the Engine's nodes.
// Every problem raises c10::Error (RuntimeError in Python) whose message names the node;
// nothing invalid reaches Engine::run().
#pragma once

#include "engine.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace torchexec {

class Builder {
 public:
  explicit Builder(Engine& engine) : e_(engine) {}

  // build.cpp
  void build(const PlanState& plan);

 private:
  Engine& e_;
  std::vector<c10::TypePtr> type_;  // type of the value a slot holds; nullptr = empty
  std::vector<int64_t> freed_by_;   // index of the node that last freed a slot
  std::string where_ = "torchexec.Engine";  // prefix of every message
  std::unordered_map<std::string, at::Tensor> state_by_name_;

  // build.cpp: slots, inputs, state, program outputs and mutations.
  void check_slot_index(int64_t slot, const std::string& what) const;
  c10::TypePtr read(int64_t slot, const std::string& what) const;
  void write(int64_t slot, c10::TypePtr type, const std::string& what);
  void decode_inputs(const std::vector<InputRow>& rows);
  void decode_state(const std::vector<StateRow>& rows);
  void decode_outputs(const std::vector<ArgRow>& rows);
  void decode_mutations(const std::vector<MutationRow>& rows);

  // build_node.cpp: one node at a time.
  void decode_node(const NodeRow& row, int64_t index);
  std::vector<c10::TypePtr> compile_op(Node& node, const std::string& name,
                                       const std::string& overload,
                                       const std::vector<ArgRow>& args);
  std::vector<c10::TypePtr> compile_torchbind(Node& node, const std::vector<ArgRow>& args);
  std::vector<c10::TypePtr> compile_python(Node& node, const std::string& target,
                                           const std::vector<ArgRow>& args);
  // build_hop.cpp
  std::vector<c10::TypePtr> compile_hop(Node& node, const std::string& hop,
                                        const std::vector<ArgRow>& args);
  void bind_arguments(Node& node, const c10::FunctionSchema& schema, size_t first,
                      const std::vector<ArgRow>& args);
  void compile_argument(Node& node, const c10::Argument& param, const ArgRow& arg);
  void compile_frees(Node& node, const std::vector<int64_t>& frees, int64_t index);
  void bind_outputs(Node& node, const std::vector<c10::TypePtr>& returns,
                    const std::vector<int64_t>& outputs, bool tuple);
};

// Whether a slot holding a value of type `have` may be passed where `want` is expected.
bool accepts(const c10::TypePtr& have, const c10::TypePtr& want);
c10::TypePtr unwrap_optional(const c10::TypePtr& t);
std::string join(const std::vector<std::string>& parts);

}  // namespace torchexec
