"""What codedispatch's Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue

from . import api
from .models import AreaCode, Assignment, WrongCodes

# Create writes an order's code and its guard; assign counts wrong codes, moves the assignment and sends it to
# order processing; status and lookup read and move it.
grant(api.bp, read=[ConfigValue, Assignment, AreaCode, WrongCodes], write=[Assignment, AreaCode, WrongCodes],
      send=["codedispatch_order_processing"])
