"""Helpers for tests that must not reach the Hugging Face hub."""


def set_hub_offline(monkeypatch) -> None:
    """The Hugging Face hub in offline mode. huggingface_hub reads HF_HUB_OFFLINE when it is first imported, so once
    any test has imported it the variable alone is not seen, and a hub name would try the network (seconds of
    timeouts here) instead of failing at once."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
