"""The moto_server (per module), moto and aws_env fixtures of tests/cloudtrail/moto.py, for every
test module here."""

from .moto import aws_env_fixture, moto_fixture, moto_server_fixture

__all__ = ["aws_env_fixture", "moto_fixture", "moto_server_fixture"]
