"""What a Lambda process does once the imports of its cold start are done.

`imports_done()` moves every object made so far (modules, classes, pydantic and botocore models: hundreds of
thousands, all alive for the whole process) into the garbage collector's permanent generation. Otherwise the
first full collection after the imports, triggered by whatever allocates next (typically botocore building
the first client, inside the first request), walks all of them: measured here, the first DynamoDB client took
~60 ms instead of ~20 ms. Only the first call acts: later ones would freeze per-request objects too.

It also turns the collector back on: app.py (the API function) turns it off before its imports, which
would otherwise trigger full collections that free nothing (~40 ms of its cold start).

Called at the end of app.py and on the first message batch / job run (core.queues, core.lease), whose
functions import their handler module without app.py.
"""
from __future__ import annotations

import gc

_done = False


def imports_done() -> None:
    global _done
    if not _done:
        _done = True
        gc.freeze()
    gc.enable()
