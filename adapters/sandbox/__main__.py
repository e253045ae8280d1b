"""`python -m adapters.sandbox --port 8800`: the sandbox PSA, standalone."""

from adapters.sandbox.server import main

main()
