"""Once its imports are done, a Lambda process freezes them out of the garbage collector's way, once."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

# A queue function's process: its handler module WITHOUT app.py, then two batches.
CODE = """
import gc
from chalicelib.route_sharing import tasks
assert gc.get_freeze_count() == 0, "nothing frozen by the imports alone"
tasks.finish_shared_order({"Records": []}, None)
first = gc.get_freeze_count()
assert first > 10_000, first  # every module, class and schema imported so far
garbage = [[i] for i in range(50_000)]
tasks.finish_shared_order({"Records": []}, None)
assert gc.get_freeze_count() == first, "a later invocation must not freeze its own objects"
print("ok")
"""


def test_the_first_batch_freezes_the_imports_and_only_the_first():
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    answer = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert answer.returncode == 0 and answer.stdout.strip() == "ok", answer.stderr[-2000:]


def test_the_api_function_freezes_at_the_end_of_app_py():
    code = "import gc, app; assert gc.get_freeze_count() > 10_000; print('ok')"
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.stdout.strip() == "ok", answer.stderr[-2000:]
