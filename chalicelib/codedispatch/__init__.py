"""Codedispatch: a driver types an order's code and gets that order (design doc 004_a2cf9e450bbb9d75)."""
