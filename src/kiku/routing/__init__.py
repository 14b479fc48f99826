"""The control plane's side of routing: the route feed and the router processes it runs."""
