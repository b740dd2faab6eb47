"""Scooters: from a low battery to a scooter back in rent (design doc 003).

Two rooms, no import cycle between them:
- recharge/: the recharge task and its claim: lifecycle.py (the states and moves: THE one place), finder.py (the
  poll), planner.py + attempts.py + claims.py (booking, claim, no orphan claims), reactions.py (a claim's state
  applied to its task), follower.py (the claims journal), reconciler.py (claims/info for stale claims).
- courier/: the courier's screens and actions (authority, cabinet and return screens, scooter actions, point
  checks). It reads the recharge side (the task, its lifecycle); the recharge side never imports it.
Thin handlers on top: api.py (routes), tasks.py (the planning queue), jobs.py (schedules), access.py (grants).
"""
