"""The embedded panel: server-rendered shells, small JavaScript modules, one stylesheet."""
