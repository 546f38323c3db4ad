"""Examples: reference clients (clients/) and deliberately broken ones (broken/)."""
