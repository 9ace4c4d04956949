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


def test_cli_rerank_model_settings_default_to_the_models_own(capsys) -> None:
    """No flag: the model's stored settings (its e2rank_config.json); --query-weight and --num-input-docs are the
    core's per-call overrides, with its exact scores."""
    from e2rank_core import E2RankModel

    bundled = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu")
    documents = [line for line in CAPITALS.read_text(encoding="utf-8").splitlines() if line.strip()]
    query = "capital of France"

    def cli(*flags: str) -> list[tuple[int, float]]:
        argv = ["rerank", "--model", "e2rank/minilm-l6-e2rank", "--device", "cpu", "-q", query, "--jsonl", *flags]
        assert main([*argv, str(CAPITALS)]) == 0
        return [(row["index"], row["score"]) for row in map(json.loads, capsys.readouterr().out.splitlines())]

    def core(**options: object) -> list[tuple[int, float]]:
        return [(h.index, round(h.score, 6)) for h in bundled.rerank(query, documents, **options)]

    def same(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
        return [i for i, _ in got] == [i for i, _ in expected] and all(
            abs(a - b) <= 1e-6 for (_, a), (_, b) in zip(got, expected, strict=True)
        )

    default = cli()
    stored = {"query_weight": bundled.query_weight, "num_input_docs": bundled.num_input_docs}
    assert same(default, core()) and same(default, core(**stored))
    paper = cli("--query-weight", "0")
    assert same(paper, core(query_weight=0)) and not same(paper, default)
    assert same(cli("--num-input-docs", "3"), core(num_input_docs=3))
    for flag, value in (("--query-weight", "-1"), ("--query-weight", "nan"), ("--num-input-docs", "0")):
        assert main(["rerank", "-q", query, flag, value, str(CAPITALS)]) == 2
        assert flag in capsys.readouterr().err


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
