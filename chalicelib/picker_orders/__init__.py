"""Picker orders: grocery picker events drive the order-tracking screen (design doc 001_417a6ea162b84113)."""
