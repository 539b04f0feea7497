"""HTTP surfaces: thin routes and wire shapes. Domain errors are mapped to HTTP here, once."""
