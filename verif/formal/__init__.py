"""Formal verification with SymbiYosys (yowasp-sby): property harnesses per block and a
runner. Harnesses wrap a block, constrain its inputs with Assume (stream rules, stable
configuration) and state its guarantees with Assert; Cover shows each is reachable."""
