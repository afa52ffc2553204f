"""The content-addressed step cache: keys, stat index, manifests, safe restore, backends."""
