"""Secrets stay out of Dagster: the webserver's GraphQL, asked for resource details the way the UI's
resource pages ask, shows the database URL and the alert webhook as environment variables only."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

PASSWORD = "s3cr3t-pw"
WEBHOOK_TOKEN = "T0K3N-hook-secret"

RESOURCES = """
query Resources($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    __typename
    ... on ResourceDetailsList {
      results {
        name
        resourceType
        configFields { name description configType { key description } }
        configuredValues { key value type }
        nestedResources { name type }
      }
    }
    ... on PythonError { message stack }
  }
}
"""
RESOURCE = """
query Resource($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { name configuredValues { key value type } }
    ... on PythonError { message }
  }
}
"""
ENV_VARS = """
query EnvVars($selector: RepositorySelector!) {
  utilizedEnvVarsOrError(repositorySelector: $selector) {
    __typename
    ... on EnvVarWithConsumersList { results { envVarName envVarConsumers { type name } } }
  }
}
"""


@pytest.fixture
def graphql(monkeypatch, tmp_path: Path):
    """A workspace context over the module symbol_pipeline.definitions (code server in a
    subprocess, as `dagster-webserver -m symbol_pipeline.definitions` loads it); no webserver."""
    monkeypatch.setenv("SYMBOL_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SYMBOL_PIPELINE_DATABASE_URL", f"postgresql://user:{PASSWORD}@127.0.0.1:5432/x")
    monkeypatch.setenv("SYMBOL_PIPELINE_ALERT_WEBHOOK_URL", f"https://hooks.example.com/services/{WEBHOOK_TOKEN}")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "symbol_pipeline.definitions", "attribute": "defs", "location_name": "symbol_pipeline"}}]}))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        with define_out_of_process_context(str(workspace), None, instance) as context:
            [location] = context.code_locations
            [repository] = location.get_repositories().values()
            selector = {"repositoryLocationName": location.name, "repositoryName": repository.name}
            yield context, selector


def test_graphql_resource_details_show_no_password(graphql):
    context, selector = graphql
    result = execute_dagster_graphql(context, RESOURCES, {"selector": selector})
    assert result.data["allTopLevelResourceDetailsOrError"]["__typename"] == "ResourceDetailsList"
    resources = {r["name"]: r for r in result.data["allTopLevelResourceDetailsOrError"]["results"]}
    assert {"database", "alert_webhook"} <= set(resources)
    database = {v["key"]: v for v in resources["database"]["configuredValues"]}
    assert database["url"] == {"key": "url", "value": "SYMBOL_PIPELINE_DATABASE_URL", "type": "ENV_VAR"}
    webhook = {v["key"]: v for v in resources["alert_webhook"]["configuredValues"]}
    assert webhook["url"]["type"] == "ENV_VAR"

    text = json.dumps(result.data)
    assert PASSWORD not in text and WEBHOOK_TOKEN not in text

    one = execute_dagster_graphql(context, RESOURCE, {"selector": {**selector, "resourceName": "database"}})
    assert one.data["topLevelResourceDetailsOrError"]["__typename"] == "ResourceDetails"
    assert PASSWORD not in json.dumps(one.data)

    env_vars = execute_dagster_graphql(context, ENV_VARS, {"selector": selector})
    names = {e["envVarName"] for e in env_vars.data["utilizedEnvVarsOrError"]["results"]}
    assert "SYMBOL_PIPELINE_DATABASE_URL" in names
    assert PASSWORD not in json.dumps(env_vars.data)
