"""Checkpoint fuzzing in the normal test run: a few hundred mutated checkpoints.

The mutator and the oracle live in ``tests/fuzz/checkpoint.py`` (run it
directly for longer campaigns). Each batch runs in a subprocess with a
timeout and an address-space limit, so a crash, a hang or a memory blow-up
fails the test naming the case (reproduce with ``--seed S --start CASE
--cases 1``) instead of taking the test run down.
"""

import json
import os
import subprocess
import sys

import pytest

import descramble

SCRIPT = os.path.join(os.path.dirname(__file__), "fuzz", "checkpoint.py")
PYTHONPATH = os.path.dirname(os.path.dirname(descramble.__file__))
BATCH = 100
SEED = 20261129


@pytest.mark.parametrize("batch", range(4))
def test_mutated_checkpoints_load_or_are_refused(batch, tmp_path):
    start = batch * BATCH
    env = dict(os.environ, PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # The scratch folder is the test's: a worker killed by a crash or the timeout leaves nothing in /tmp.
    command = [sys.executable, SCRIPT, "--json", "--seed", str(SEED), "--start", str(start),
               "--cases", str(BATCH), "--memory-mib", "2048", "--folder", str(tmp_path)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        stdout, crashed = proc.stdout, proc.returncode not in (0, 1)
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        crashed = "timed out"
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    results = [line for line in lines if "case" in line]
    if crashed:
        last = started[-1] if started else start
        pytest.fail(f"case {last} (seed {SEED}) {'hung' if crashed == 'timed out' else 'crashed'}: "
                    f"{proc.stderr[-2000:] if crashed != 'timed out' else ''}")
    findings = [r for r in results if r["outcome"] == "finding"]
    assert not findings, "\n".join(f"case {r['case']} (seed {SEED}, {r['what']}): {r['detail']}" for r in findings)
    assert len(results) == BATCH, proc.stderr[-2000:]
    outcomes = {r["outcome"] for r in results}
    assert outcomes == {"loaded", "refused"}, outcomes


def test_a_killed_checkpoint_worker_leaves_nothing_in_tmp(tmp_path):
    # The driver passes its own folder: the worker creates no temporary folder of its own.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(private_tmp),
               PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, SCRIPT, "--json", "--seed", str(SEED), "--cases", "100000",
                             "--folder", str(scratch)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().startswith("{")  # running cases
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert os.listdir(private_tmp) == []
