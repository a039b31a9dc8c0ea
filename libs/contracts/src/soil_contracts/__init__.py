"""Typed contracts and mechanisms shared by every soil-ci package (see README.md)."""
