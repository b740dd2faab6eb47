"""KRT's answers (the doc's deptrans.session_statuses): the latest per licence, and every one as history.

- deptrans_session_statuses: ONE row per licence, KRT's answer to its latest acknowledged flip (session status,
  ended_at, updated_at). The status feed reads it through `feed` (updated_at): a snapshot reads about one row
  per licence, an increment only the licences that changed, as each rewrite moves the row's feed key. `ended`
  is the doc's ended_at index (sparse: a shift with an end). A re-send of an older flip never overwrites a newer
  answer (condition on flip_seq).
- deptrans_session_history: every answer, keyed by the flip, kept deptrans_session_history_days (1-30, TTL).

Doc 002 reading: it says of deptrans.session_statuses both "changes often, history of the last 1-30 days may be
kept" and "about the number of unique drivers, 100 MB at most"; its consumers' caches want the current shift per
licence. Both hold only as two tables: the current row per licence (what the feed serves) and the history.
The row's park_id/driver_id are the profile the flip rests on (the on-line one, or the one whose event ended it).
"""
from __future__ import annotations

import datetime as dt

from chalicelib.core.dynamo import save_if

from .feeds import feed_fields
from .lines import Flip
from .models import FEED_SHARDS, SessionHistory, SessionStatus, shard_of
from .schemas import SESSION_HISTORY_DAYS, KrtShift


def _profile(flip: Flip) -> tuple[str, str]:
    park_id, _, driver_id = (flip.profile or "").partition("/")
    return park_id, driver_id


def record(licence: str, flip: Flip, shift: KrtShift, now: dt.datetime) -> None:
    park_id, driver_id = _profile(flip)
    answer = dict(session_status=shift.status, ended_at=shift.ends_at, line_state=flip.state.value,
                  changed_at=flip.changed_at, park_id=park_id, driver_id=driver_id, updated_at=now)
    SessionHistory(licence_pd_id=licence, change_key=f"{flip.seq:012d}#{flip.key}",
                   expires_at=now + dt.timedelta(days=SESSION_HISTORY_DAYS.get()), **answer).save()
    ended = {}
    if shift.ends_at:
        millis = int(shift.ends_at.timestamp() * 1000)
        ended = {"ended_shard": shard_of(licence, FEED_SHARDS), "ended_key": f"{millis:013d}#{licence}"}
    current = SessionStatus(licence_pd_id=licence, flip_seq=flip.seq, **answer, **ended,
                            **feed_fields(licence, licence, now))
    # Not saved when a newer flip's answer is already there: this one lives in the history only.
    save_if(current, SessionStatus.licence_pd_id.does_not_exist() | (SessionStatus.flip_seq <= flip.seq))
