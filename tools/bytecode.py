"""Cold-start post-processing of the Lambda zip that `chalice package` writes (build step; never deployed,
never imported by chalicelib).

    python -m tools.bytecode build/prod/package        # rewrites build/prod/package/deployment.zip

1. botocore's data only for the AWS services the app calls (chalicelib.core.aws.SERVICES; the client there
   refuses any other): botocore lists every service directory of its data before its first client (~440
   of them, a third of a cold process's first request) and they are 28 MB of the zip; and its endpoints.json
   (1.2 MB of JSON parsed by the first client of a process, ~25 ms) keeps those services' entries alone.
2. Bytecode, below.

Lambda's code directory is read-only, so a zip without bytecode compiles every imported module on every cold
start. This adds, next to each `.py` of the zip, `__pycache__/<name>.<cache tag>.pyc` compiled with
UNCHECKED_HASH invalidation: the import system loads it without comparing it to the source's mtime (the zip's
timestamps are meaningless) or hashing the source (that would cost what we are saving).

A .pyc is only valid for the Python minor version that wrote it (its magic number and cache tag), so this must
run on the same minor version as the functions' `Runtime` in sam.json. Chalice sets that Runtime from the
Python that ran `chalice package` and downloads the zip's compiled wheels for that Python too, so packaging and
this step share the interpreter; if the current one does not match, `python3.X` from PATH is used, else it
refuses rather than ship bytecode the runtime would ignore.
"""
from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import pathlib
import posixpath
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

_RUNTIME = re.compile(r"^python(\d+)\.(\d+)$")


def runtime_version(template: dict) -> tuple[int, int] | None:
    """The one Python version of the template's functions, e.g. (3, 11); None when it has no function."""
    runtimes = {resource.get("Properties", {}).get("Runtime")
                for resource in template.get("Resources", {}).values()
                if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    runtimes |= {template.get("Globals", {}).get("Function", {}).get("Runtime")}
    runtimes.discard(None)
    if not runtimes:
        return None
    if len(runtimes) > 1:
        raise SystemExit(f"functions use several runtimes {sorted(runtimes)}: one zip cannot serve them all")
    match = _RUNTIME.match(runtimes.pop())
    if not match:
        raise SystemExit(f"not a Python runtime: {runtimes}")
    return int(match.group(1)), int(match.group(2))


def _pyc_name(source: str) -> str:
    """`a/b.py` -> `a/__pycache__/b.cpython-311.pyc` (this interpreter's cache tag)."""
    folder, name = posixpath.split(source)
    return posixpath.join(folder, importlib.util.cache_from_source(name))


def _slim_endpoints(data: bytes, keep: frozenset[str]) -> bytes:
    """endpoints.json with every partition's `services` cut to `keep` (partitions, regions, defaults stay).
    Its service keys are endpoint prefixes (e.g. `dynamodb`, `sqs`, `ssm`, `sts`), the names used here."""
    endpoints = json.loads(data)
    for partition in endpoints["partitions"]:
        partition["services"] = {name: value for name, value in partition["services"].items() if name in keep}
    return json.dumps(endpoints, separators=(",", ":")).encode()


def prune(zip_path: pathlib.Path, keep: frozenset[str]) -> int:
    """Drop `botocore/data/<service>/` for every service not in `keep`, and any bytecode already in the zip
    (chalice copies the working tree's own __pycache__: timestamp-checked, possibly stale, so the runtime
    would recompile them anyway). Rewrites the zip; returns how many botocore data files went. The data
    directory's own files (endpoints, partitions, retry rules) stay."""
    zip_path = pathlib.Path(zip_path)
    prefix = "botocore/data/"

    def unused_data(name: str) -> bool:
        if not name.startswith(prefix):
            return False
        service, _, rest = name[len(prefix):].partition("/")
        return bool(rest or name.endswith("/")) and service not in keep

    def unused(name: str) -> bool:
        return unused_data(name) or "/__pycache__/" in "/" + name

    with zipfile.ZipFile(zip_path) as archive:
        entries = archive.infolist()
        dropped = [e for e in entries if unused_data(e.filename)]
        if not any(unused(e.filename) for e in entries):
            return 0
        staged = zip_path.with_name(zip_path.name + ".pruned")
        with zipfile.ZipFile(staged, "w") as out:
            for entry in entries:
                if unused(entry.filename):
                    continue
                data = archive.read(entry)
                if entry.filename == prefix + "endpoints.json":
                    data = _slim_endpoints(data, keep)
                out.writestr(entry, data, compress_type=entry.compress_type)
    staged.replace(zip_path)
    return len(dropped)


def add_bytecode(zip_path: pathlib.Path) -> int:
    """Add an unchecked-hash .pyc for every .py of the zip (rewritten in place); returns how many."""
    zip_path = pathlib.Path(zip_path)
    with tempfile.TemporaryDirectory(prefix="bytecode-") as tmp:
        root = pathlib.Path(tmp) / "src"
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
            names = {e.filename for e in entries}
            # Those that have no .pyc yet (a second run on the same zip adds nothing).
            sources = [e for e in entries if e.filename.endswith(".py") and not e.is_dir()
                       and _pyc_name(e.filename) not in names]
            for entry in sources:
                archive.extract(entry, root)
        # Paths inside the code objects: relative to the code root, as /var/task is on Lambda (the import
        # system rewrites co_filename to the real path when it loads the .pyc anyway).
        compiled = compileall.compile_dir(
            str(root), quiet=2, stripdir=str(root), prependdir="", workers=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        missing = [e.filename for e in sources
                   if not pathlib.Path(importlib.util.cache_from_source(str(root / e.filename))).exists()]
        if not compiled or missing:
            raise SystemExit(f"{len(missing)} module(s) of the zip do not compile, e.g. {missing[:5]}")
        count = 0
        # Appended: the zip's own entries stay byte for byte as chalice wrote them (no recompression).
        with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as out:
            for entry in sources:
                cached = pathlib.Path(importlib.util.cache_from_source(str(root / entry.filename)))
                name = cached.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=entry.date_time)  # fixed stamps: same input, same zip
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                out.writestr(info, cached.read_bytes())
                count += 1
    return count


def _matching_python(version: tuple[int, int]) -> str | None:
    return shutil.which(f"python{version[0]}.{version[1]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bytecode", description=__doc__.split("\n")[0])
    parser.add_argument("package_dir", type=pathlib.Path, help="the output directory of `chalice package`")
    args = parser.parse_args(argv)
    template = json.loads((args.package_dir / "sam.json").read_text())
    target = runtime_version(template)
    if target is not None and sys.version_info[:2] != target:
        other = _matching_python(target)
        if other is None:
            raise SystemExit(f"the functions run python{target[0]}.{target[1]}, this is "
                             f"{sys.version_info[0]}.{sys.version_info[1]} and python{target[0]}.{target[1]} "
                             "is not on PATH: its bytecode would be ignored")
        root = pathlib.Path(__file__).resolve().parents[1]
        subprocess.run([other, "-m", "tools.bytecode", str(args.package_dir)], cwd=root, check=True)
        return
    from chalicelib.core.aws import SERVICES

    zip_path = args.package_dir / "deployment.zip"
    pruned = prune(zip_path, SERVICES | {"sts"})  # sts: credential providers may call it
    count = add_bytecode(zip_path)
    print(json.dumps({"event": "bytecode.added", "pyc": count, "python": "%d.%d" % sys.version_info[:2],
                      "botocore_services": sorted(SERVICES | {"sts"}), "botocore_files_dropped": pruned,
                      "zip": str(zip_path), "mb": round(zip_path.stat().st_size / 2**20, 1)}))


if __name__ == "__main__":
    main()
