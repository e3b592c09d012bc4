//! Spawning and supervising host Envoy processes for `gantry run`. (Placeholder.)
