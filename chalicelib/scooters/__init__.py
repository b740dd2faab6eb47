"""Scooters: from a low battery to a scooter back in rent (design doc 003).

Recharge flow (finder.py, planner.py, follower.py) and the courier screens (api.py, courier*.py).
"""
