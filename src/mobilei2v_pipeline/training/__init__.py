"""The accelerate training loop shared by every stage."""
