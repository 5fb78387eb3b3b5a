"""Load any checkpoint or shipped name as a Stylizer; bind a style; run in strips; ONNX."""
