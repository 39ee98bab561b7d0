"""The contract of T3: every shared fact, defined once.

Configuration, number formats, opcodes and field layouts (:mod:`contract.spec`), the
register map (:mod:`contract.regmap`), region programming (:mod:`contract.program`).
The hardware (``hw``), the models (``sim_models``), the testbenches (``verif``), the flow
(``flow``) and the command line (``t3``) import these facts from here and never restate
them. Pure Python: this package imports no HDL and nothing else of the project.
"""
