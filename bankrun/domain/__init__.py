"""The business of a venue, with no Kafka, HTTP or clock: read this package to know bankrun."""
