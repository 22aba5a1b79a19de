"""latent layer."""
