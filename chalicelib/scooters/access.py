"""What the scooters Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue
from chalicelib.core.lease import Lease

from . import api, jobs, tasks
from .courier.models import CabinetLock, ClaimProgress
from .recharge import attempts
from .recharge.models import JournalCursor, RechargeTask
from .recharge.upstreams import CARGO_TOKEN_PARAMETER as CARGO_TOKEN  # one SecureString per deployed stage

# Planning reads the depots/algorithm configs and moves its task; a reschedule sends the task's next message; an
# adopted claim's state is applied at once (cargo).
grant(tasks.scooters_misc_recharge, read=[ConfigValue, RechargeTask], write=[RechargeTask], send=[attempts.QUEUE],
      parameters=[CARGO_TOKEN])
# The finder creates tasks (conditional put), sweeps overdue ones through the due index, sends their planning.
grant(jobs.scooters_find_discharged, read=[ConfigValue, RechargeTask], write=[RechargeTask, Lease],
      send=[attempts.QUEUE])
# The follower finds tasks by claim (claim_id-index), moves them, keeps the journal cursor, reschedules.
grant(jobs.scooters_follow_claims, read=[ConfigValue, RechargeTask, JournalCursor],
      write=[RechargeTask, JournalCursor, Lease], send=[attempts.QUEUE], parameters=[CARGO_TOKEN])
# The reconciler reads the open claims (live_claim-index), applies claims/info through the follower's path.
grant(jobs.scooters_reconcile_claims, read=[ConfigValue, RechargeTask], write=[RechargeTask, Lease],
      send=[attempts.QUEUE], parameters=[CARGO_TOKEN])
# The courier screens (api.py, courier/) find the task by claim (claim_id-index), keep their own per-claim progress
# and per-cabinet locks, read the full-charge config, and ask cargo where a claim is (claims/info); they never
# write the task.
grant(api.bp, read=[ConfigValue, RechargeTask, ClaimProgress, CabinetLock], write=[ClaimProgress, CabinetLock],
      parameters=[CARGO_TOKEN])
