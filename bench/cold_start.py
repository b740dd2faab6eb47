"""Cold start: the time to import the app in a fresh interpreter, against importing chalice and boto3 alone
(the floor any Chalice app on boto3 pays). Fresh processes, interleaved, median of 15 each; target <= 1.3x.

    .venv/bin/python bench/cold_start.py
"""
from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNS = 15
SUBJECTS = {
    "import app": "import app",
    "import chalice, boto3": "import chalice, boto3",
    "+ pydantic, pynamodb": "import chalice, boto3, pydantic, pynamodb.models; from pydantic import BaseModel",
    "a queue handler module": "import chalicelib.route_sharing.tasks",
}


def run(code: str) -> float:
    # Bytecode cached, as in a deployed runtime that ships .pyc (any value of the variable disables it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    for code in SUBJECTS.values():  # warm the bytecode and page caches
        run(code)
    samples: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for _ in range(RUNS):
        for name, code in SUBJECTS.items():
            samples[name].append(run(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"cold start: fresh interpreter, median of {RUNS}, interleaved")
    for name, median in medians.items():
        print(f"  {name:24s} {median:7.1f} ms")
    floor = medians["import chalice, boto3"]
    print(f"  ratio app / floor        {medians['import app'] / floor:.2f} (target <= 1.3)")
    print(f"  ratio handler / floor    {medians['a queue handler module'] / floor:.2f}")
    print(f"  ratio libraries / floor  {medians['+ pydantic, pynamodb'] / floor:.2f} (the stack's own share)")


if __name__ == "__main__":
    main()
