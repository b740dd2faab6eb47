"""The upstream simulator: plays every HTTP upstream the app calls, on 127.0.0.1, with fault switches."""
