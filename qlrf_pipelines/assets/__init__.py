"""Software-defined assets, thin wrappers over the domain code."""
