"""kiku: a self-hosted Heroku."""
