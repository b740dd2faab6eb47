"""Builds the Chalice app: every service's blueprints and the one error shape.

Packaging (`chalice package`, `chalice local`) and the tests import this module for everything: routes,
authorizers, queue and schedule handlers. Inside a Lambda only the API function imports it: every other
function's handler is its own module (tests/test_template.py checks it). There it skips the queue and
schedule modules it never runs, and makes the DynamoDB client in its init phase instead of in its first
request (bench/cold_start.py measures both).

The garbage collector is off while it imports: the imports make a few hundred thousand objects that all live
as long as the process, and the collections they trigger (~40 ms of a cold start here) would free none of
them. imports_done() at the end freezes them and turns the collector back on.
"""
import gc
import os

gc.disable()

from chalice import Chalice  # noqa: E402

from chalicelib.codedispatch import api as codedispatch_api  # noqa: E402
from chalicelib.core import dynamo  # noqa: E402
from chalicelib.core.api import uniform_errors  # noqa: E402
from chalicelib.core.coldstart import imports_done  # noqa: E402
from chalicelib.deptrans import api as deptrans_api  # noqa: E402
from chalicelib.picker_orders import api as picker_orders_api  # noqa: E402
from chalicelib.platform import api as platform_api  # noqa: E402
from chalicelib.platform import authorizers as platform_authorizers  # noqa: E402
from chalicelib.route_sharing import api as route_sharing_api  # noqa: E402
from chalicelib.scooters import api as scooters_api  # noqa: E402
# The config API serves every service's configs: each defines them in its schemas module, which its queue and
# schedule handlers may be the only ones to import otherwise.
from chalicelib.scooters.recharge import schemas as scooters_schemas  # noqa: E402,F401

# Set by the Lambda runtime (and the emulator's), never by packaging or the tests.
API_FUNCTION_ONLY = "AWS_LAMBDA_FUNCTION_NAME" in os.environ

app = Chalice(app_name="taxi-delivery")
app.register_middleware(uniform_errors, "http")

for blueprint in (
    platform_api.bp,
    platform_authorizers.bp,
    route_sharing_api.bp,
    picker_orders_api.bp,
    codedispatch_api.bp,
    deptrans_api.bp,
    scooters_api.bp,
):
    app.register_blueprint(blueprint)

if API_FUNCTION_ONLY:
    dynamo.warm_up()
else:
    from chalicelib.deptrans import jobs as deptrans_jobs
    from chalicelib.deptrans import tasks as deptrans_tasks
    from chalicelib.picker_orders import jobs as picker_orders_jobs
    from chalicelib.picker_orders import tasks as picker_orders_tasks
    from chalicelib.route_sharing import tasks as route_sharing_tasks
    from chalicelib.scooters import jobs as scooters_jobs
    from chalicelib.scooters import tasks as scooters_tasks

    for blueprint in (
        route_sharing_tasks.bp,
        picker_orders_tasks.bp,
        picker_orders_jobs.bp,
        deptrans_tasks.bp,
        deptrans_jobs.bp,
        scooters_tasks.bp,
        scooters_jobs.bp,
    ):
        app.register_blueprint(blueprint)

# Last: every object made so far lives as long as the process; the collector runs again from here on
# (chalicelib/core/coldstart.py).
imports_done()
