"""The sandbox PSA's ConnectWise dialect."""
