"""ConnectWise PSA (formerly Manage): everything Baton knows about it lives in this folder."""
