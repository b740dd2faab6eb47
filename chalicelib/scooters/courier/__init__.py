"""The courier's side of a recharge (design doc 003, part 3): authority.py (who may act, where the courier is, the
claim's progress), exchange.py with cabinet.py (A) and returns.py (C) for the battery_exchange screens, locks.py
(one open cell per cabinet), actions.py (actions per point, the scooter's actions, slider checks), screens.py
(constructor items), upstreams.py (cabinets, scooter backend). Reads the recharge side; never imported by it.
"""
