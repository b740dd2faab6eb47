"""Builds the Chalice app: every service's blueprints, and the one error shape. Nothing else."""
from chalice import Chalice

from chalicelib.codedispatch import api as codedispatch_api
from chalicelib.core.api import uniform_errors
from chalicelib.core.coldstart import imports_done
from chalicelib.deptrans import api as deptrans_api
from chalicelib.deptrans import jobs as deptrans_jobs
from chalicelib.deptrans import tasks as deptrans_tasks
from chalicelib.picker_orders import api as picker_orders_api
from chalicelib.picker_orders import jobs as picker_orders_jobs
from chalicelib.picker_orders import tasks as picker_orders_tasks
from chalicelib.platform import api as platform_api
from chalicelib.platform import authorizers as platform_authorizers
from chalicelib.route_sharing import api as route_sharing_api
from chalicelib.route_sharing import tasks as route_sharing_tasks
from chalicelib.scooters import api as scooters_api
from chalicelib.scooters import jobs as scooters_jobs
from chalicelib.scooters import tasks as scooters_tasks

app = Chalice(app_name="taxi-delivery")
app.register_middleware(uniform_errors, "http")

for blueprint in (
    platform_api.bp,
    platform_authorizers.bp,
    route_sharing_api.bp,
    route_sharing_tasks.bp,
    picker_orders_api.bp,
    picker_orders_tasks.bp,
    picker_orders_jobs.bp,
    codedispatch_api.bp,
    deptrans_api.bp,
    deptrans_tasks.bp,
    deptrans_jobs.bp,
    scooters_api.bp,
    scooters_tasks.bp,
    scooters_jobs.bp,
):
    app.register_blueprint(blueprint)

# Last: every object made so far lives as long as the process (chalicelib/core/coldstart.py).
imports_done()
