"""Reading and writing files: images, and atomic writes."""
