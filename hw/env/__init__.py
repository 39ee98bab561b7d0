"""The test environment's hardware: what surrounds T3 units in simulation, not T3 itself.

The ring top (:mod:`hw.env.ring`), the link model (:mod:`hw.env.link`) and the
background GEMM read generator (:mod:`hw.env.readgen`) stand in for the GPU's
interconnect and compute units. They are synthesizable (so both simulators run them as
Verilog) but are not part of the T3 unit's area; ``hw`` itself holds exactly the unit's
blocks."""
