"""One module per CLI verb: ``add_arguments(parser)`` and a handler set as the default."""
