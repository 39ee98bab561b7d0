"""The hardware flow: Verilog generation and post-processing (:mod:`flow.verilog`; the
project's one use of private Amaranth API is :mod:`flow.amaranth_private`), lint and
compile checks (:mod:`flow.lint`), synthesis and FPGA place and route (:mod:`flow.eda`),
area and Fmax reports (:mod:`flow.area`, :mod:`flow.liberty`, technology data in
``flow/data``). It sits on ``contract``, ``hw`` and ``sim_models``; the testbenches
(``verif``) build their simulators from its Verilog, and the ``t3`` command line sits on
top of both (tests/test_structure.py checks the layering)."""
