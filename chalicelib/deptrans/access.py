"""What deptrans' Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue
from chalicelib.core.lease import Lease

from . import api, jobs, tasks
from .krt import CREDENTIALS_PARAMETER as KRT_CREDENTIALS  # one SecureString per stage
from .models import DriverCacheEntry, DriverProfile, KrtTokenItem, SessionStatus, StatusQueueEntry

# Routes: the ID routes read the driver cache (licence), write it on refresh, read and write bindings, and
# use the shared KRT token; the feeds only query the bindings' and session statuses' feed indexes.
grant(api.bp, read=[ConfigValue, DriverCacheEntry, DriverProfile, KrtTokenItem, SessionStatus],
      write=[DriverCacheEntry, DriverProfile, KrtTokenItem], parameters=[KRT_CREDENTIALS])
# Status events: one conditional UpdateItem per driver, no reads.
grant(tasks.deptrans_status_events, write=[StatusQueueEntry])
# The sender: the pending index and consistent re-reads of the queue, the caches, bindings (and the profiles
# seen with them), session statuses, the KRT token and the job's lease.
grant(jobs.deptrans_status_sender,
      read=[ConfigValue, StatusQueueEntry, DriverCacheEntry, DriverProfile, KrtTokenItem],
      write=[StatusQueueEntry, DriverCacheEntry, DriverProfile, SessionStatus, KrtTokenItem, Lease],
      parameters=[KRT_CREDENTIALS])
