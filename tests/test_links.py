"""Share links keep the view's query keys and never carry a private one (token, API key)."""

from ui.links import share_url


def test_share_url_keeps_view_keys_and_drops_private_ones():
    url = share_url("http://host:8501/lab?old=1", {"dataset": "Qwen3-8B/aime24", "beta": "0.5",
                                                   "token": "s3cret", "api_key": "sk-x"})
    assert url == "http://host:8501/lab?dataset=Qwen3-8B%2Faime24&beta=0.5"
    assert "s3cret" not in url and "sk-x" not in url
