"""The Lambda entry point of one service's API function: a Chalice app holding that service's routes only.

Each service's HTTP routes run in a function of their own (RouteSharingApi, PickerOrdersApi, CodedispatchApi,
DeptransApi, ScootersApi, and PlatformApi for /ping, the configs and the API document): its own role (its
service's grants), concurrency, log group and alarms, and a cold start that imports its service and core, nothing
else. The build (deploy/api_functions.py) gives each of them this handler, names in its environment the route
modules it serves (core.settings: route_modules), and points each route's integration at its service's function.
app.py, the whole app, is what `chalice package`, `chalice local` and the in-process tests use; no Lambda imports it.

The DynamoDB client every table shares is made here, in the init phase, and so are the routes' request and
response models, and the configs the routes declare are read: so the first request costs about what the second does
(bench/cold_start.py). The garbage collector is off while the function imports: the imports make
objects that all live as long as the process, and the collections they would trigger free none of them;
imports_done() freezes them and turns the collector back on (chalicelib/core/coldstart.py).
"""
import gc

gc.disable()

import importlib  # noqa: E402

from chalice import Blueprint  # noqa: E402

from . import config, dynamo  # noqa: E402
from .api import build_models, configs_of, make_app  # noqa: E402
from .coldstart import imports_done  # noqa: E402
from .settings import get_settings  # noqa: E402


def blueprints_of(route_modules: tuple[str, ...]) -> list[Blueprint]:
    """The blueprint each of these modules made (Blueprint(__name__): a module's routes are its own)."""
    found = []
    for name in route_modules:
        module = importlib.import_module(name)
        found += [value for value in vars(module).values()
                  if isinstance(value, Blueprint) and value._import_name == name]
    return found


ROUTE_MODULES = get_settings().route_modules
app = make_app(blueprints_of(ROUTE_MODULES))
dynamo.warm_up()
# What the first request would otherwise build or read, done here: its routes' models, the configs they read.
build_models(ROUTE_MODULES)
config.warm_up(configs_of(ROUTE_MODULES))
imports_done()
