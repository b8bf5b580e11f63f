"""The orders this process last wrote, kept in memory so its next command on the same order
skips the snapshot read.

Safe because nothing decided on a cached state is trusted blindly: a write carries the
cached version and inserts nothing if the stream has moved (another process wrote), and a
refusal decided on a cached state is decided again on the stored one before it is answered.
"""

from collections import OrderedDict

from escrow_core.domain.order import OrderState

# An order's state is ~6.5 KiB in memory, so the cache tops out at ~7 MiB; at 4,096 orders it
# grew the server ~29 MiB over its first quarter hour under the soak (bench/README.md). A
# command finds its order here only when the same process wrote it recently, which a few
# hundred orders in flight cover.
DEFAULT_SIZE = 1024


class SnapshotCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._orders: OrderedDict[str, OrderState] = OrderedDict()

    def get(self, order_id: str) -> OrderState | None:
        order = self._orders.get(order_id)
        if order is not None:
            self._orders.move_to_end(order_id)
        return order

    def put(self, order_id: str, order: OrderState) -> None:
        self._orders[order_id] = order
        self._orders.move_to_end(order_id)
        if len(self._orders) > self.size:
            self._orders.popitem(last=False)

    def forget(self, order_id: str) -> None:
        self._orders.pop(order_id, None)
