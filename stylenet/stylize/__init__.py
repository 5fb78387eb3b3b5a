"""Load any checkpoint, exported .onnx file or shipped name as a Stylizer; bind a style; strips.

from stylenet import stylize
run = stylize.load("cin").bind(style="wave")   # photo (3, H, W) in [0, 1] -> picture
"""

from stylenet.stylize.stylizer import Bound, Stylizer, UsageError, load

__all__ = ["Bound", "Stylizer", "UsageError", "load"]
