"""The hardware flow: Verilog generation and post-processing (:mod:`flow.verilog`), lint
and compile checks (:mod:`flow.lint`), synthesis and FPGA place and route
(:mod:`flow.eda`), area and Fmax reports (:mod:`flow.area`, :mod:`flow.liberty`,
technology data in ``flow/data``) and the report's throughput and model parts
(:mod:`flow.report_parts`). It sits on top of ``hw``, ``sim_models`` and ``verif``; the
``t3`` command line sits on top of it."""
