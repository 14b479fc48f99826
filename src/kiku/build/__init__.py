"""The slug compiler: buildpacks turn a pushed commit into a slug in the blob store."""
