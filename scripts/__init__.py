"""Thin entry points, one per mode of main.py: each has ``add_arguments(parser)``, ``EXAMPLES`` and ``main(args)``."""
