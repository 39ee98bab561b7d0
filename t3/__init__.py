"""The `t3` command line and the report generators (sit on top of hw, sim_models, verif)."""
