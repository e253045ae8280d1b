"""The sandbox PSA's Autotask dialect."""
