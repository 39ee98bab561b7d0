"""The contract of T3: every shared fact, defined once.

Configuration, number formats, opcodes and field layouts (:mod:`contract.spec`), block
latencies (:mod:`contract.latency`), sticky error flags (:mod:`contract.errors`), the
register map (:mod:`contract.regmap`), region programming (:mod:`contract.program`), the
GEMM's output layout, tiling and chunks (:mod:`contract.gemm`) and the sizing rules that
fit a configuration to a GEMM (:mod:`contract.sizing`).
The hardware (``hw``), the models (``sim_models``), the testbenches (``verif``), the flow
(``flow``) and the command line (``t3``) import these facts from here and never restate
them. Pure Python (numpy only for line images): this package imports no HDL and nothing
else of the project.
"""
