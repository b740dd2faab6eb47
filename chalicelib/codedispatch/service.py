"""Rules of code dispatching (design doc 004, stage 2): the entry points, and the rules in one place.

The rules live by topic: create.py (codes for orders), assign.py (a driver types a code), processing.py
(the processing push and the status polls), lookup.py (drivers-lookup), wrong_codes.py (brute-force
guard), store.py (the assignment record and its conditional moves), switches.py (experiment and configs).

Create: an order in an enabled area gets a code unique among the area's LIVE codes. The assignment and
its (area, code) guard are written in one transaction, each conditional on "absent or expired" (TTL deletes
late, so an expired item must not block). A collision draws another code, up to the configured attempts.
A second create for the order returns the first code; two creates racing for one order end with one
code (the loser re-reads the winner's).

Assign: a driver types the code; the first driver moves the assignment pending -> processing with a write
conditional on status == pending, so of two racing drivers exactly one wins and the other gets 409. The
same driver repeating the call is answered the current state; the attempt's processing push is sent once
per attempt (claimed by the write that makes the attempt processing), again only after a failed send. A driver is always compared by park_db_id AND
driver_profile_id, never by the joined `driver_id` ("a_b"+"c" and "a"+"b_c" join alike).

Processing push: after a successful send the assignment records `processing_sent_at`. If the send fails
after the state moved (the driver gets 503 and may leave), the assigned driver's status polls heal it:
a poll that finds the attempt processing, not sent, and older than PROCESSING_RESEND_AFTER (room for a
send still in flight) sends it and records it. A recorded send is never repeated by polls.

Drivers-lookup: lookup asks who typed the code; the driver is acquired in the tracker and the assignment
moves processing -> assigned, or -> error (driver_not_found_in_tracker). Tracker down: 503, no change.

Attempts (what happens after error): statuses only move forward within an attempt (schemas.TRANSITIONS),
so an attempt that ended in error is never reused. Instead, typing the order's code again starts a NEW
attempt on the same item: `attempt` + 1, status pending -> processing for the driver who typed it (the
same driver after fixing GPS, or another one), error_code and processing_sent_at cleared, both steps
appended to the change log, each log entry tagged with its attempt. Chosen over "order/create issues a
new code" because the driver who sees the error is the one who can act (the status message tells them to
type the code again, and that now works), the passenger keeps the code they were given, and nobody has to
call create again. The restart is conditional on (status == error, same attempt), so of drivers racing to
retry one wins and the rest get 409. Every move is conditional on the attempt it read, so a slow
drivers-lookup of an old attempt cannot touch the current one; the tracker acquire's idempotency key is
per attempt, so the new attempt really asks the tracker again. The code still expires with the order.

Brute force: codes are short, so a driver could try them all. Typed codes are counted per driver (park and
profile), per area, per fixed window (WrongCodes, TTL). Before looking a code up, assign reserves one try
with an atomic ADD conditional on count < limit (so concurrent guesses cannot overshoot); a code that
leads to an order gives the try back. Over the limit every code, right or wrong, gets 429
too_many_attempts until the window ends, so the answer leaks nothing. Limit and window are in
CODE_DISPATCH_GENERATOR_SETTINGS (default 10 per 10 minutes); malformed codes (400) do not count.

Every status move is a conditional update that also appends an entry to the assignment's change log.

Design doc reading: the doc marks only the processing handlers (assign, status, lookup) as checking
CODE_DISPATCH_PROCESSING_ENABLED and says the `code_dispatch` experiment switches the feature "in all its
forms"; so create needs the experiment and an enabled area, and the processing handlers need the
experiment and CODE_DISPATCH_PROCESSING_ENABLED. The experiment is evaluated per call with kwargs
area_id, park_id, driver_profile_id: create knows the area only; assign the area and the driver; status
and lookup read the order first and use its area (so an unknown order is 404 there before any 409). The doc also leaves open who sets `assigned`: the only
handler that learns the driver really gets the order is drivers-lookup (after acquiring the driver in
the tracker), so it moves the assignment to assigned.
"""

from __future__ import annotations

from .assign import assign_order
from .create import Created, create_order
from .lookup import lookup_driver
from .processing import ORDER_PROCESSING_QUEUE, PROCESSING_RESEND_AFTER, StatusView, assignment_status
from .store import Status
from .wrong_codes import TooManyAttempts

__all__ = [
    "ORDER_PROCESSING_QUEUE", "PROCESSING_RESEND_AFTER", "Created", "Status", "StatusView", "TooManyAttempts",
    "assign_order", "assignment_status", "create_order", "lookup_driver",
]
