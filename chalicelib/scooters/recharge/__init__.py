"""The recharge flow (design doc 003, part 2 and the claim's statuses of part 3): see chalicelib/scooters/__init__.py.
Never imports the courier side."""
