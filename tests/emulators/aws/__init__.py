"""A local AWS for the live-connector tests: moto's server (one per test session), a seeded EC2
estate, and fault injection in front of it (throttling, rejected credentials, an endpoint that
never answers). Nothing here reaches the internet; any access key is accepted by moto."""
