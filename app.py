"""The whole app: every service's blueprints and the one error shape.

`chalice package`, `chalice local` and the tests import this module for everything: routes, authorizers, queue
and schedule handlers. No Lambda function imports it: each service's routes run in that service's API function
(chalicelib/core/api_function.py), and every other function's handler is its own module (tests/test_template.py
checks both).
"""
from chalicelib.codedispatch import api as codedispatch_api
from chalicelib.core import authorizers
from chalicelib.core.api import make_app
from chalicelib.deptrans import api as deptrans_api
from chalicelib.deptrans import jobs as deptrans_jobs
from chalicelib.deptrans import tasks as deptrans_tasks
from chalicelib.picker_orders import api as picker_orders_api
from chalicelib.picker_orders import jobs as picker_orders_jobs
from chalicelib.picker_orders import tasks as picker_orders_tasks
from chalicelib.platform import api as platform_api
from chalicelib.route_sharing import api as route_sharing_api
from chalicelib.route_sharing import tasks as route_sharing_tasks
from chalicelib.scooters import api as scooters_api
from chalicelib.scooters import jobs as scooters_jobs
# The config API serves every service's configs: each defines them in its schemas module, which its queue and
# schedule handlers may be the only ones to import otherwise.
from chalicelib.scooters import tasks as scooters_tasks
from chalicelib.scooters.recharge import schemas as scooters_schemas  # noqa: F401

app = make_app((
    platform_api.bp,
    authorizers.bp,
    route_sharing_api.bp,
    picker_orders_api.bp,
    codedispatch_api.bp,
    deptrans_api.bp,
    scooters_api.bp,
    route_sharing_tasks.bp,
    picker_orders_tasks.bp,
    picker_orders_jobs.bp,
    deptrans_tasks.bp,
    deptrans_jobs.bp,
    scooters_tasks.bp,
    scooters_jobs.bp,
))
