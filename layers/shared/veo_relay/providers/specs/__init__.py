"""One module per provider, each declaring its `SPEC` (veo_relay.providers.spec.ProviderSpec)."""
