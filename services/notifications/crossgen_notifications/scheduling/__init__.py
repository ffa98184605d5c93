"""When messages go out, and the worker that sends each due message once."""
