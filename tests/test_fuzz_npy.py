"""Seeded fuzzing of the .npy and raw file sources (tests/fuzz/npy.py).

A few hundred mutated files per run, many per worker subprocess: each must
give the right result or a ValueError/TypeError/OSError; a crash (signal), a
hang, another exception or a wrong result fails the test, naming the case.
Longer runs: ``python tests/fuzz/npy.py --cases 5000 --seed S``.
"""

import importlib.util
import os

import pytest

import descramble

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("descramble_fuzz_npy", os.path.join(HERE, "fuzz", "npy.py"))
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(descramble.__file__)),
                                                    os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("seed", [0, 1])
def test_mutated_npy_files_give_the_right_result_or_a_documented_error(seed):
    result = fuzz.run(seed=seed, cases=200, batch=100, timeout=60, env=ENV)
    findings = "\n".join(f"case {i} (seed {seed}): {what}" for i, what in result["findings"])
    assert not result["findings"], f"reproduce with tests/fuzz/npy.py --seed {seed} --start CASE --cases 1 " \
                                   f"--verbose\n{findings}"
    counts = result["counts"]
    assert counts["ok"] + counts["refused"] == 200
    assert counts["ok"] >= 20  # the mutator leaves enough files readable to check results


def test_the_mutator_is_reproducible():
    assert fuzz.make_case(7, 42) == fuzz.make_case(7, 42)
    assert fuzz.make_case(7, 42) != fuzz.make_case(7, 43)


@pytest.mark.parametrize("what", ["crash", "hang"])
def test_a_crash_or_a_hang_is_a_finding_naming_the_case(what):
    env = {**ENV, "DESCRAMBLE_FUZZ_SELFTEST": f"{what}:5"}
    result = fuzz.run(seed=0, cases=10, batch=10, timeout=3, env=env, per_case=0.1)
    assert [i for i, _ in result["findings"]] == [5]
    assert result["findings"][0][1].startswith("hang" if what == "hang" else "crash (exit status -11)")
    assert result["counts"]["ok"] + result["counts"]["refused"] == 9  # the run goes on after the culprit
