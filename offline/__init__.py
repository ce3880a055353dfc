"""Offline stand-ins for the things veo-relay talks to in the cloud."""
