"""Pure-Python models of T3, built on the contract (they import no HDL and nothing of the
project but :mod:`contract`): the GPU producer (partials, store traces), the collective
library's programming, a ring run's workload, the golden models and the system-level
performance model."""
