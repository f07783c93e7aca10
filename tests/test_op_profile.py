"""benchmarks/op_profile.py: op time of traced calls, from TensorFlow's profiler."""

import os
import sys

import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import op_profile  # noqa: E402


def _product():
    x = tf.random.stateless_normal([256, 256], seed=[0, 1])
    product = tf.function(lambda: tf.reduce_sum(tf.nn.relu(tf.matmul(x, x, name="product")), name="total"))
    product()  # Traced before the profile.
    return product


def test_traces_each_op_with_its_type():
    wall, ops = op_profile.trace_ops(_product(), calls=3)
    types = {op_type for _, op_type, _ in ops}
    assert wall > 0 and any("MatMul" in t for t in types) and "Sum" in types
    assert {"product", "total"} <= {name for name, _, _ in ops}
    assert all(ms >= 0 for _, _, ms in ops)


def test_prints_op_time_by_group(capsys):
    op_profile.print_op_time(_product(), calls=2, group=lambda name: "matmul" if name == "product" else "rest")
    out = capsys.readouterr().out
    assert out.startswith("profile: 2 x call,")
    assert "by part: " in out and "matmul " in out and "by op type: " in out
