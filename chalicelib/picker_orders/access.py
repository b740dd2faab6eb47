"""What picker orders' Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue
from chalicelib.core.lease import Lease

from . import api, jobs, tasks
from .models import PickerOrder, PickerPhone

# The tracking screen reads the order and the picker's phone; an order whose customer is not known yet gets it
# filled in from eats-picker-orders (a conditional update).
grant(api.bp, read=[ConfigValue, PickerOrder, PickerPhone], write=[PickerOrder])
grant(tasks.picker_order_events, read=[ConfigValue, PickerOrder], write=[PickerOrder, PickerPhone])
# The updater finds stale orders through the status index, rewrites them, and holds the job's lease.
grant(jobs.picker_orders_updater, read=[ConfigValue, PickerOrder], write=[PickerOrder, Lease])
