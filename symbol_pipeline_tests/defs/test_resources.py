"""Resources: each price-source backend built from its spec and touched, the database through
an EnvVar, the alert webhook."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import dagster as dg
import pytest

from symbol_pipeline.defs import resources
from symbol_pipeline.defs.resources import (
    AlertWebhookResource,
    CsvPriceSourceResource,
    DatabaseResource,
    PriceSourceResource,
    SyntheticPriceSourceResource,
    YFinancePriceSourceResource,
    price_source_resource,
)
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.sources.synthetic import SyntheticMarket
from symbol_pipeline.sources.yfinance_source import YFinanceSource


def _from_spec(spec: str) -> PriceSourceResource:
    return price_source_resource(spec, synthetic_seed=5, synthetic_universe_size=12)


def _initialised(resource: dg.ConfigurableResource) -> dg.ConfigurableResource:
    """The resource as a run sees it: config resolved (EnvVar values read) and initialised."""
    with dg.build_resources({"it": resource}) as built:
        return built.it


def test_synthetic_spec_serves_the_configured_universe() -> None:
    resource = _from_spec("synthetic")
    assert isinstance(resource, SyntheticPriceSourceResource)
    source = _initialised(resource).source()
    assert isinstance(source, SyntheticMarket) and (source.seed, source.n_symbols) == (5, 12)
    assert source.universe()[-1] == "SYN0012" and not source.knows("SYN0013")
    assert resource.source() is resource.source()  # built once per resource instance

    seeded = _from_spec(" Synthetic:42 ").source()
    assert isinstance(seeded, SyntheticMarket) and (seeded.seed, seeded.n_symbols) == (42, 12)


def test_csv_spec_reads_its_directory(tmp_path: Path) -> None:
    (tmp_path / "AAPL.csv").write_text("Date,Close\n2024-01-02,185.5\n2024-01-03,184.2\n")
    resource = _from_spec(f"csv:{tmp_path}")
    assert isinstance(resource, CsvPriceSourceResource) and resource.directory == str(tmp_path)
    source = _initialised(resource).source()
    assert isinstance(source, CsvDirectorySource) and source.directory == tmp_path
    assert source.available_symbols() == ["AAPL"]
    prices = source.fetch(["AAPL"], "2024-01-01", "2024-01-31").prices
    assert prices["close"].tolist() == [185.5, 184.2]


def test_yfinance_spec_builds_the_source_without_calling_out() -> None:
    resource = _from_spec("yfinance")
    assert isinstance(resource, YFinancePriceSourceResource)
    assert isinstance(_initialised(resource).source(), YFinanceSource)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("bogus", "csv:DIR"), ("csv:", "csv:DIR"), ("csv:  ", "csv:DIR"), ("yfinance:1", "csv:DIR"), ("synthetic:x", "SEED")],
)
def test_bad_specs_name_the_valid_forms(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _from_spec(spec)


def test_assets_get_the_source_through_the_resource_key() -> None:
    @dg.asset
    def universe_size(price_source: PriceSourceResource) -> int:
        return len(price_source.source().universe())

    result = dg.materialize([universe_size], resources={"price_source": _from_spec("synthetic")})
    assert result.output_for_node("universe_size") == 12


def test_database_url_from_an_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'from_env.sqlite'}"
    monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", url)
    database = _initialised(DatabaseResource(url=dg.EnvVar("SYMBOL_PIPELINE_DATABASE_URL")))
    engine = database.engine()
    assert engine.url.render_as_string(hide_password=False) == url
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pipeline_alerts").scalar() == 0  # schema created
    engine.dispose()


def test_a_postgresql_url_from_an_env_var_is_pinned_to_psycopg2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", "postgresql://pipeline:secret@db.example:5432/prices")
    opened: list[str] = []
    monkeypatch.setattr(resources, "get_engine", lambda url: opened.append(url) or url)
    database = _initialised(DatabaseResource(url=dg.EnvVar("SYMBOL_PIPELINE_DATABASE_URL")))
    database.engine()
    assert opened == ["postgresql+psycopg2://pipeline:secret@db.example:5432/prices"]


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_url():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_alert_webhook_posts_json(webhook_url: str) -> None:
    assert AlertWebhookResource(url=webhook_url).post({"event": "run_failure", "run_id": "r1"}) == "sent 204"
    assert _Hook.received == [{"event": "run_failure", "run_id": "r1"}]


def test_alert_webhook_without_url_posts_nothing() -> None:
    assert AlertWebhookResource().post({"event": "run_failure"}) is None


def test_an_unreachable_webhook_is_reported_not_raised() -> None:
    status = AlertWebhookResource(url="http://127.0.0.1:9/nowhere").post({"event": "run_failure"})
    assert status.startswith("error") and len(status) <= 32
