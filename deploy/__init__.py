"""Deployment: the Dockerfile and compose helpers, and (``deploy.local``) the local development tools."""
