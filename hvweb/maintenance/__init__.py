"""Maintenance you can plan: timed drain plans, and drains checked against them."""
