"""Kernel primitives and the filesystem/DAX path models."""
