"""Route sharing: a delivery shows up in the recipient's app (design doc 000_675e16512adf7c2d)."""
