"""The `t3` command line: argument parsing and output only. It sits on top of every other
package (the flow, verif, hw, sim_models, contract) and nothing imports it."""
