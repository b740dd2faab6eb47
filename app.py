"""Builds the Chalice app: every service's blueprints, and the one error shape. Nothing else."""
from chalice import Chalice

from chalicelib.core.api import uniform_errors
from chalicelib.platform import api as platform_api
from chalicelib.route_sharing import api as route_sharing_api
from chalicelib.route_sharing import tasks as route_sharing_tasks

app = Chalice(app_name="taxi-delivery")
app.register_middleware(uniform_errors, "http")

for blueprint in (
    platform_api.bp,
    route_sharing_api.bp,
    route_sharing_tasks.bp,
):
    app.register_blueprint(blueprint)
