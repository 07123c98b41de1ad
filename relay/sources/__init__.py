"""Input protocols: each module turns request bytes into `relay.model.Stream`s."""
