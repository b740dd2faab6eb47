"""What deptrans' Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue
from chalicelib.core.lease import Lease

from . import api, jobs, tasks
from .krt import CREDENTIALS_PARAMETER as KRT_CREDENTIALS  # one SecureString per stage
from .models import (
    DriverCacheEntry, DriverProfile, KrtTokenItem, LicenceLine, SessionHistory, SessionStatus, StatusQueueEntry,
)

# Routes: the ID routes read the driver cache (licence; its `licence` index lists a licence's profiles at
# bind), write it on refresh (a profile that moved licence: both bindings, and its status entry queued again),
# read and write bindings, mark the licence due for the sender, and use the shared KRT token; the feeds only
# query the bindings' and session statuses' feed indexes.
grant(api.bp, read=[ConfigValue, DriverCacheEntry, DriverProfile, KrtTokenItem, SessionStatus],
      write=[DriverCacheEntry, DriverProfile, KrtTokenItem, LicenceLine, StatusQueueEntry],
      parameters=[KRT_CREDENTIALS])
# Status events: one conditional UpdateItem per driver, no reads.
grant(tasks.deptrans_status_events, write=[StatusQueueEntry])
# The sender: the pending index and consistent re-reads of the queue, the licences' line states (due index),
# the caches, bindings (and the profiles that move between them), KRT's answers (current and history), the
# KRT token and the job's lease.
grant(jobs.deptrans_status_sender,
      read=[ConfigValue, StatusQueueEntry, LicenceLine, DriverCacheEntry, DriverProfile, KrtTokenItem],
      write=[StatusQueueEntry, LicenceLine, DriverCacheEntry, DriverProfile, SessionStatus, SessionHistory,
             KrtTokenItem, Lease],
      parameters=[KRT_CREDENTIALS])
