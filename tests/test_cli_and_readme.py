"""The command line and the README's commands, run as written (setup excepted: this environment is set up)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from e2rank_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CAPITALS = ROOT / "examples" / "data" / "capitals.txt"


def readme_command(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```", README, flags=re.S)
    assert match, f"README has no {marker} block"
    return match.group(1).strip()


def test_cli_rerank_plain_output(capsys) -> None:
    assert (
        main(
            [
                "rerank",
                "--model",
                "sentence-transformers/all-MiniLM-L6-v2",
                "-q",
                "capital of France",
                "--top-k",
                "3",
                str(CAPITALS),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "Paris is the capital" in lines[0]


def test_cli_rerank_jsonl_from_stdin(monkeypatch, capsys) -> None:
    import io

    records = "\n".join(json.dumps({"text": t}) for t in ["Oslo is in Norway", "Paris is the capital of France"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(records + "\n"))
    assert (
        main(
            [
                "rerank",
                "--model",
                "sentence-transformers/all-MiniLM-L6-v2",
                "-q",
                "capital of France",
                "--jsonl",
                "--input-format",
                "jsonl",
                "-",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["index"] == 1
    assert rows[0]["score"] >= rows[1]["score"]


def test_cli_reports_bad_input_cleanly(capsys) -> None:
    assert (
        main(["rerank", "--model", "sentence-transformers/all-MiniLM-L6-v2", "-q", "x", "--top-k", "0", str(CAPITALS)])
        == 2
    )
    assert "--top-k" in capsys.readouterr().err
    assert main(["rerank", "--model", "no-such/model-anywhere", "-q", "x", str(CAPITALS)]) == 2
    assert "not a local path" in capsys.readouterr().err


def test_readme_main_command_runs_as_written() -> None:
    command = readme_command("main-command")
    setup, _, run = command.partition(" && ")
    assert setup == "bash .ci/setup" and (ROOT / ".ci" / "setup").is_file()
    argv = shlex.split(run)
    assert argv[0] == ".venv/bin/e2rank"
    argv[0] = str(Path(sys.executable).with_name("e2rank"))  # the environment this suite runs in
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 8 and "Paris is the capital" in lines[0]


def test_readme_test_command_is_what_ci_runs() -> None:
    command = readme_command("test-command")
    assert command in (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in (ROOT / ".ci" / "setup").read_text()


@pytest.mark.parametrize("script", ["examples/quickstart.py"])
def test_quickstart_example_runs(script: str) -> None:
    out = subprocess.run(
        [sys.executable, script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert "1. " in out.stdout and "Search Query: What is the capital of France?" in out.stdout
