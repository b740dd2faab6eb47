"""What the scooters Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue
from chalicelib.core.lease import Lease

from . import api, jobs, planner, tasks
from .courier_models import CabinetLock, CourierProgress
from .models import JournalCursor, RechargeTask
from .upstreams import CARGO_TOKEN_PARAMETER as CARGO_TOKEN  # one SecureString per deployed stage

# Planning reads the depots/algorithm configs and moves its task; a reschedule sends the task's next message.
grant(tasks.scooters_misc_recharge, read=[ConfigValue, RechargeTask], write=[RechargeTask], send=[planner.QUEUE],
      parameters=[CARGO_TOKEN])
# The finder creates tasks (conditional put), sweeps overdue ones through the due index, sends their planning.
grant(jobs.scooters_find_discharged, read=[ConfigValue, RechargeTask], write=[RechargeTask, Lease],
      send=[planner.QUEUE])
# The follower finds tasks by claim (claim_id-index), moves them, keeps the journal cursor, reschedules.
# (CourierProgress: whether the courier reported the scooter missing or destroyed.)
grant(jobs.scooters_follow_claims, read=[ConfigValue, RechargeTask, JournalCursor, CourierProgress],
      write=[RechargeTask, JournalCursor, Lease], send=[planner.QUEUE], parameters=[CARGO_TOKEN])
# The courier screens (api.py, courier*.py) find the task by claim (claim_id-index) and keep their own progress and
# per-cabinet locks; they never write the task.
grant(api.bp, read=[RechargeTask, CourierProgress, CabinetLock], write=[CourierProgress, CabinetLock])
