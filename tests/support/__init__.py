"""Test-only infrastructure: real external programs and loopback stand-ins."""
