"""Serving rin-keras SavedModels: a TF Serving client and a local stand-in server."""
