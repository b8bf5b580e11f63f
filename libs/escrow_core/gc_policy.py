"""How often a process of ours lets the cyclic garbage collector walk everything.

A server keeps many long-lived objects (remembered orders, cached keys) and the log readers
make many short-lived ones (a page of decoded events): full collections walking every object
the process holds were the main source of the API's latency tail (command mix p99 93 -> 55 ms)
and a third of the feed's decoding time. Young generations are collected as usual.
"""

import gc

FULL_COLLECTION_THRESHOLD = 1000  # generation-1 collections per full one (default 10)


def collect_rarely_in_full() -> None:
    """Applied once at start by the API, the CLI (and the worker it runs) and the benchmarks."""
    gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTION_THRESHOLD)
