"""Codedispatch: a driver types an order's code and gets that order.

The rules live by topic: create.py (codes for orders), assign.py (a driver types a code), processing.py
(the processing push and the status polls), lookup.py (drivers-lookup), wrong_codes.py (brute-force
guard), store.py (the assignment record and its conditional moves), switches.py (experiment and configs).
Each module's docstring states its rules; what spans them is here. The handlers (api.py) call the topic
modules directly.

Attempts (what happens after error): statuses only move forward within an attempt (schemas.TRANSITIONS),
so an attempt that ended in error is never reused. Instead, typing the order's code again starts a NEW
attempt on the same item: `attempt` + 1, status pending -> processing for the driver who typed it (the
same driver after fixing GPS, or another one), error_code and processing_sent_at cleared, both steps
appended to the change log, each log entry tagged with its attempt. Chosen over "order/create issues a
new code" because the driver who sees the error is the one who can act (the status message tells them to
type the code again, and that now works), the passenger keeps the code they were given, and nobody has to
call create again. The restart is conditional on (status == error, same attempt), so of drivers racing to
retry one wins and the rest get 409. Every move is conditional on the attempt it read, so a slow
drivers-lookup of an old attempt cannot touch the current one; the tracker acquire's idempotency token is
a fresh uuid per attempt, so the new attempt really asks the tracker again. A new attempt needs the code
alive (it is typed again): after the code's expiry, 410 code_expired.

Expiry (store.py): the code can be typed until creation + the area's order_expire_seconds; the record then
lives as long as its status needs (each move extends it, schemas.KEEP_AFTER_MOVE), and a move that starts
an attempt is conditional on the code being alive and extends the record and the code's guard first.

Every status move is a conditional update that also appends an entry to the assignment's change log.

Design doc reading: the doc marks only the processing handlers (assign, status, lookup) as checking
CODE_DISPATCH_PROCESSING_ENABLED and says the `code_dispatch` experiment switches the feature "in all its
forms"; so create needs the experiment and an enabled area, and the processing handlers need the
experiment and CODE_DISPATCH_PROCESSING_ENABLED. The experiment is evaluated per call with kwargs
area_id, park_id, driver_profile_id: create knows the area only; assign the area and the driver; status
and lookup read the order first and use its area (so an unknown order is 404 there before any 409). Who
sets `assigned`, which the doc leaves open: see lookup.py.
"""
