"""Deptrans: drivers' registry ID and line state exchanged with the city's registry (KRT); feeds for caches.

The rules live by topic:

- bindings.py: the driver's registry ID (bind after KRT's check, "is one bound")
- events.py:   status events -> the status queue (conditional, batch-grouped writes)
- sender.py:   the status queue -> licences' line states -> KRT (schedule DeptransStatusSender); the flow
               of a licence's line state is lines.py, its storage store.py, reportability verdicts.py,
               regions regions.py, KRT's answers sessions.py
- membership.py: which profiles belong to a licence (the driver-profiles cache decides)
- feeds.py:    incremental feeds over the bindings and session statuses
- krt.py, upstreams.py, caches.py: the clients and the doc's caches
"""
