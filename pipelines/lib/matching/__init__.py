"""Probabilistic matching, clustering, golden leads with stable ids, human decisions."""
