"""What the platform routes may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue

from . import api

# The config API reads and writes the configs table; /ping and /openapi.json touch nothing.
grant(api.bp, read=[ConfigValue], write=[ConfigValue])
