"""Test doubles: a loopback Anthropic API server and tiny models built from configs."""
