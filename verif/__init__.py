"""cocotb testbenches, reusable drivers/monitors/scoreboards, and their pytest entry points."""
