"""The fuzzing harness itself: crashes and hangs are detected and named, cases are
reproducible, and every reference agrees with ``aten`` on the unmutated corpus (an oracle that
disagreed with it would make the fuzz tests meaningless)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fuzzing.cases import check_engine_plan, check_ep_json, check_extern, check_pt2, encoded_plan
from fuzzing.chooser import RandomChooser, seed_for
from fuzzing.corpus import Corpus, load, shared_corpus_dir
from fuzzing.harness import LoaderRun, run_cases, summary_table
from fuzzing.jsonmut import Mutant, mutate_document
from fuzzing.outcome import RunResult, classify
from fuzzing.planmut import PlanMutant, mutate_plan
from fuzzing.planref import run_plan
from fuzzing.reference import RefResult, compare, ep_json_reference, pt2_reference
from fuzzing.skeleton import same_program
from fuzzing.zipmut import mutate_archive


@pytest.fixture(scope="module")
def corpus_dir() -> Path:
    return shared_corpus_dir()


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path) -> Corpus:
    return load(corpus_dir)


def test_crashes_and_hangs_are_detected_and_named(corpus_dir: Path) -> None:
    """The self-test cases: 0 and 5 agree, 1 segfaults, 2 overruns its alarm, 3 blocks the
    alarm and must be killed by the parent, 4 exits without a result."""
    run = run_cases("selftest", list(range(6)), corpus_dir, time_limit=1.0, hard_limit=6.0)
    got = [(o.case, o.outcome) for o in run.outcomes]
    assert got == [
        (0, "agreed"),
        (1, "crash"),
        (2, "hang"),
        (3, "hang"),
        (4, "crash"),
        (5, "agreed"),
    ]
    by_case = {o.case: o for o in run.outcomes}
    assert "SIGSEGV" in by_case[1].detail and by_case[1].phase == "load"
    assert "over 1.0 s" in by_case[2].detail
    assert "killed" in by_case[3].detail
    assert "exit status 0" in by_case[4].detail
    # one worker to start, then one more after each crash and after the hang it killed
    assert run.workers_started == 4


def test_cases_are_reproducible_from_their_seed(corpus: Corpus) -> None:
    item = corpus.programs[0]

    def document(case: int) -> bytes:
        return mutate_document(item.model_json, RandomChooser(seed_for("ep_json", case))).data

    def archive(case: int) -> bytes:
        return mutate_archive(item.pt2, RandomChooser(seed_for("pt2", case))).data

    assert document(7) == document(7) and document(7) != document(8)
    assert archive(7) == archive(7) and archive(7) != archive(8)
    plan = encoded_plan(item)
    first = mutate_plan(plan, RandomChooser(seed_for("torchbind", 3)))
    again = mutate_plan(plan, RandomChooser(seed_for("torchbind", 3)))
    assert first.description == again.description


def test_unmutated_corpus_agrees_on_every_loader(corpus: Corpus, tmp_path: Path) -> None:
    """Each program, unchanged, loads and agrees with its recorded ``aten`` results (extern
    nodes: with the node called through ``torch.ops``)."""
    for item in corpus.programs:
        outcome = check_ep_json(item, Mutant(item.model_json, False, []))
        assert outcome[0] == "agreed", (item.name, outcome)
        outcome = check_pt2(item, Mutant(item.pt2, False, []), tmp_path / f"{item.name}.pt2")
        assert outcome[0] == "agreed", (item.name, outcome)
        if item.engine:  # the plan interpreter does not model subgraphs
            outcome = check_engine_plan(item, PlanMutant(encoded_plan(item), True, []))
            assert outcome[0] == "agreed", (item.name, outcome)
    for ext in corpus.externs:
        outcome = check_extern(ext, Mutant(ext.text.encode(), False, []))
        assert outcome[0] == "agreed", (ext.name, outcome)


def test_references_match_aten(corpus: Corpus, tmp_path: Path) -> None:
    """Every reference computes the corpus's recorded ``aten`` results: torch's deserializer,
    ``torch.export.load`` (on the rewritten archive, as for a mutant) and the torchbind
    engine's plan interpreter, with the state and inputs after the run."""
    for item in corpus.programs:
        weights, constants = item.fresh_state()
        path = tmp_path / f"{item.name}.pt2"
        path.write_bytes(item.pt2)
        results = {
            "deserialize": ep_json_reference(
                item.model_json, weights, constants, item.fresh_inputs()
            ),
            "export.load": pt2_reference(path, item.fresh_inputs(), None, item.pt2),
        }
        if item.engine:
            results["plan"] = run_plan(encoded_plan(item), item.fresh_inputs())
        for name, result in results.items():
            assert result.status == "ok", (item.name, name, result.message)
            assert compare(item.expected, result.outputs) is None, (item.name, name)
            assert compare(item.expected_inputs, result.inputs) is None, (item.name, name)
            for buffer, value in item.expected_state.items():
                if buffer in result.state:
                    assert compare([value], [result.state[buffer]]) is None, (item.name, name)


def test_comparison_is_bit_for_bit() -> None:
    x = torch.tensor([1.0, float("nan")])
    assert compare([x], [x.clone()]) is None  # NaN where NaN was
    assert compare([torch.tensor(0.0)], [torch.tensor(-0.0)]) == "value 0: values differ"
    assert compare([x], [x.double()]) is not None
    assert compare([1], [True]) is not None
    assert compare([math.nan], [math.nan]) is None
    assert compare([0.0], [-0.0]) is not None


def test_semantics_preserving_changes_are_recognised(corpus: Corpus) -> None:
    item = corpus.program("mlp")
    doc = json.loads(item.model_json)
    doc["graph_module"]["graph"]["nodes"][0]["metadata"] = {"stack_trace": "elsewhere"}
    doc["graph_module"]["graph"]["tensor_values"].popitem()
    assert same_program(item.doc, json.dumps(doc).encode("utf-16"))
    doc["graph_module"]["graph"]["nodes"][0]["inputs"].reverse()  # order is not meaning
    assert same_program(item.doc, json.dumps(doc).encode())
    doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.matmul.default"
    assert not same_program(item.doc, json.dumps(doc).encode())


def test_outcome_rules() -> None:
    ok = RefResult("ok", [torch.ones(2)])
    assert classify(RunResult([torch.ones(2)]), ok)[0] == "agreed"
    assert classify(RunResult([torch.zeros(2)]), ok)[0] == "mismatch"
    failed = RunResult(error=RuntimeError("shape"))
    assert classify(failed, ok)[0] == "run_error"
    assert classify(failed, RefResult("run_error", message="shape"))[0] == "failed_like_reference"
    assert classify(failed, RefResult("rejected", message="bad"))[0] == "late_error"
    assert classify(RunResult([torch.ones(2)]), RefResult("rejected"))[0] == "unverified"


def test_summary_table_counts_each_outcome(corpus: Corpus) -> None:
    from fuzzing.outcome import Outcome

    outcomes = [
        Outcome("ep_json", i, "p", o)
        for i, o in enumerate(("agreed", "rejected", "rejected", "crash"))
    ]
    table = summary_table([LoaderRun("ep_json", outcomes, 1.0)]).splitlines()
    assert table[0].startswith("| loader | programs | accepted, agreed | rejected (ProgramError)")
    assert table[2] == "| ep_json | 4 | 1 | 2 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 0 | 1 |"


def test_documents_nested_too_deep_for_the_tree_mutators_are_damaged_as_text() -> None:
    """pt2 case 45515 of the long run: an earlier mutation nested a config 500 deep, and writing
    the tree back (with a repeated key) overflowed Python's stack inside the harness."""
    deep = b'{"a": ' * 500 + b"1" + b"}" * 500
    for seed in range(40):
        mutant = mutate_document(deep, RandomChooser(seed))  # raised RecursionError
        assert isinstance(mutant.data, bytes) and mutant.description
