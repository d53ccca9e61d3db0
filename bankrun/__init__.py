"""bankrun: replay bank runs against real exchange microservices and see which reserve policy
survives, for how long, and who got paid."""

__version__ = "0.1.0"
