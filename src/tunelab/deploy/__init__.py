"""Turning a finished run into something to ship: exports now, serving later."""
