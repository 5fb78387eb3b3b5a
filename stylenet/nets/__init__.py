"""The networks that stylize: one file per kind (Johnson et al.'s transform net, ...)."""
