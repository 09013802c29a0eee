from bindings import evaluate
from queries.context import UrlParams


def test_missing_url_param_is_none():
    assert evaluate("f", "<< url.x or 'n' >>", {"url": UrlParams()}) == "n"
    assert evaluate("f", "<< url.id >>", {"url": UrlParams(id="7")}) == "7"
