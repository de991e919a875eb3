"""target3d."""
