import os

# This app uses no pydantic plugins. Without this, the first model pydantic builds in a process scans the
# metadata of every installed distribution for plugin entry points (~25-40 ms of every cold start, measured
# in bench/cold_start.py). Set before any model exists: chalicelib is imported before its submodules.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
