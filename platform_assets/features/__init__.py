"""Features stage: Feast registry, online store and point-in-time training sets."""
