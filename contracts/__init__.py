"""Versioned contracts of the single window: REST bodies, event payloads, the envelope and the topic catalogue.

Producers and consumers import models and topic names from here only, so nothing is spelled twice."""
