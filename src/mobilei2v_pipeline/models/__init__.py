"""MobileI2V models: presets, 3D RoPE, attention, the hybrid denoiser and its model card."""
