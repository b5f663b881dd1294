"""Signed webhooks per team: a move's and a drain's ends, POSTed to endpoints."""
