"""Neural-network building blocks: activations, connectivity, models."""
