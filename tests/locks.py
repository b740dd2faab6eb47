"""Reading the hashed locks (`make lock` writes them with uv; pip installs them with --require-hashes).

A lock is pip's requirements format: `name==version ; marker \\` then one `--hash=sha256:...` per file of that
release, each package on its logical line. Markers are kept (the locks are universal), so what applies is
worked out for an environment: this interpreter's, or the Lambda runtime's.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

RUNTIME_LOCK = ROOT / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
EMULATOR_LOCK = ROOT / "local" / "requirements-emulator.txt"
LOCKS = {ROOT / "requirements.in": RUNTIME_LOCK, ROOT / "requirements-dev.in": DEV_LOCK,
         ROOT / "local" / "requirements-emulator.in": EMULATOR_LOCK}
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    specifier: str  # "==1.2.3" when pinned
    marker: str | None
    hashes: frozenset[str]

    @property
    def version(self) -> str | None:
        return self.specifier[2:] if self.specifier.startswith("==") and "," not in self.specifier else None

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        return self.marker is None or Requirement(f"x ; {self.marker}").marker.evaluate(environment)


def _logical_lines(path: pathlib.Path):
    pending = ""
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if pending + line:
            yield (pending + line).strip()
        pending = ""


def read(path: pathlib.Path) -> dict[str, Pin]:
    """name -> Pin for every requirement of the file (options such as -r/-c are not followed)."""
    pins: dict[str, Pin] = {}
    for line in _logical_lines(path):
        if line.startswith("-"):
            continue
        hashes = frozenset(_HASH.findall(line))
        requirement = Requirement(_HASH.sub("", line).strip())
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} twice"
        pins[name] = Pin(name, str(requirement.specifier), str(requirement.marker) if requirement.marker else None,
                         hashes)
    return pins


def lambda_environment(python: tuple[int, int]) -> dict[str, str]:
    """Marker values on the Lambda runtime (Amazon Linux, x86_64, CPython of the template's Runtime)."""
    version = "%d.%d" % python
    return {**default_environment(), "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": "x86_64", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "python_version": version,
            "python_full_version": version + ".0", "implementation_version": version + ".0"}
