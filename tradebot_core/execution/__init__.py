"""Orders, net positions, the state store and reconciliation: what a venue reports into."""
