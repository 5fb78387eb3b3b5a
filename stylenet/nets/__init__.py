"""The networks that stylize: one file per family (Johnson et al.'s transform net, ...)."""
