"""Pure-Python models of T3 (no HDL): the spec, the GPU producer, the golden models and
the system-level performance model."""
