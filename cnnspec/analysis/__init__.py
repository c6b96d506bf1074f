"""Static analysis over the IR: totals, reports and limits (no TensorFlow)."""
