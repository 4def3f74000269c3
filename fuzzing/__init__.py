"""Fuzzing the program loaders: valid programs, mutated, checked against a reference.

A library of its own at the repository root (importable from there, as tests and benchmarks
run): the CI run in ``tests/reliability/test_fuzz_*`` and the long run in
``benchmarks/fuzz_long.py`` both use it.

The pieces, each a small module:

- :mod:`.chooser`: where the randomness comes from. Every mutator takes a :class:`Chooser`;
  a seeded ``random.Random`` drives the batch runs (deterministic, one seed per case) and
  hypothesis's ``st.data()`` drives the in-process property tests (so failures shrink).
- :mod:`.corpus`: a small, varied set of valid programs (elementwise, multi-output, views,
  cat, an MLP with weights, buffer and input mutations, dtype/layout/device enums, dynamic
  shapes, a TorchBind object) in every format a loader reads: ExportedProgram JSON, ``.pt2``
  archives, AOTInductor extern-kernel JSON, and the torchbind engine's encoded plan.
- :mod:`.jsonmut`, :mod:`.zipmut`, :mod:`.planmut`: the mutators.
- :mod:`.reference`: what a mutated program should compute when a loader accepts it.
- :mod:`.cases`: one case = one mutated program through one loader, classified.
- :mod:`.worker` and :mod:`.harness`: cases run in subprocesses reporting JSON lines, so that a
  crash or a hang is detected, counted and named, never hidden.
"""
