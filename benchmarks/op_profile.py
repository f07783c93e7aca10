"""Where TensorFlow's CPU time goes: calls traced with TensorFlow's profiler, op time summed by group.

    from op_profile import print_op_time
    print_op_time(lambda: model.train_on_batch(*next(batches)), calls=40, group=layer_of)

Each op's time is its span on an executor thread (`tf_Compute`), the intra-op threads it used included; two executor
threads can run ops at once, so the op time of a call can exceed its wall time.
"""

import collections
import glob
import tempfile
import time
from typing import Callable


def trace_ops(run: Callable[[], object], calls: int) -> tuple[float, list[tuple[str, str, float]]]:
    """Runs `run` `calls` times under the profiler; returns the wall seconds a call and `(op name, op type, ms a
    call)` for every op event."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="rin_profile_") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(calls):
            run()
        wall = (time.perf_counter() - start) / calls
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    ops = []
    for plane in space.planes:
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    meta = plane.event_metadata[event.metadata_id]
                    if meta.display_name:  # An op (`name:type`), not executor bookkeeping.
                        ops.append((meta.name.split(":")[0], meta.display_name, event.duration_ps / 1e9 / calls))
    return wall, ops


def print_op_time(run: Callable[[], object], calls: int, group: Callable[[str], str], unit: str = "call",
                  top: int = 20) -> None:
    """Traces `calls` calls of `run` and prints op time a call by `group(op name)`, by op type and by both."""
    wall, ops = trace_ops(run, calls)
    by_group, by_type, by_both = collections.Counter(), collections.Counter(), collections.Counter()
    for name, op_type, ms in ops:
        by_group[group(name)] += ms
        by_type[op_type] += ms
        by_both[f"{group(name)} {op_type}"] += ms
    total = sum(by_type.values())
    print(f"profile: {calls} x {unit}, {1000 * wall:.1f} ms/{unit} wall, {total:.1f} ms/{unit} of op time")
    for title, counter in (("part", by_group), ("op type", by_type), ("part and op type", by_both)):
        print(f"  by {title}: " + ", ".join(f"{k} {v:.1f} ({100 * v / total:.0f}%)" for k, v in counter.most_common(top)))
