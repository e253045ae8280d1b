"""Autotask PSA: everything Baton knows about it lives in this folder."""
