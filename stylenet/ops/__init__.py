"""Image operations without learning: colour, cel shading, classic filters, matting."""
