"""What route sharing's Lambda functions may touch (see chalicelib/core/access.py)."""
from chalicelib.core.access import grant
from chalicelib.core.config import ConfigValue

from . import api, tasks
from .models import PhoneKey, SharedOrder, SharingKeyItem

# Keys by phone, corp info and sharedroute read the keys; cargo claims save an order's keys like the queue does.
grant(api.bp, read=[ConfigValue, PhoneKey, SharingKeyItem, SharedOrder], write=[SharedOrder, SharingKeyItem, PhoneKey])
# A refused save reads its order to tell a redelivery from a finish that came first.
grant(tasks.save_sharing_keys, read=[ConfigValue, SharedOrder], write=[SharedOrder, SharingKeyItem, PhoneKey])
grant(tasks.finish_shared_order, read=[ConfigValue, SharedOrder], write=[SharedOrder, SharingKeyItem, PhoneKey])
