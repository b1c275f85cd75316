import re

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    # --fail-on-warn turns every drf-spectacular warning (untyped field, unknown path param …) into an error
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_schema_generates_and_validates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")


def test_schema_has_every_operation(schema):
    paths = schema["paths"]
    assert set(paths["/api/orders"]) >= {"get", "post"}
    assert "get" in paths["/api/orders/{order_id}"]
    assert "post" in paths["/api/orders/{order_id}/cancel"]
    assert "get" in paths["/api/positions"] and "get" in paths["/api/positions/{instrument_key}"]
    assert "post" in paths["/api/risk/check"] and "get" in paths["/api/health"]


def test_schema_documents_every_order_field(schema):
    components = schema["components"]["schemas"]
    for name in ("OrderCreateInputRequest", "OrderOutput", "OrderDetailOutput", "InstrumentPositionOutput"):
        for field, spec in components[name]["properties"].items():
            assert spec.get("description") or "$ref" in spec or "allOf" in spec, f"{name}.{field} undocumented"


def test_schema_documents_order_create_status_codes(schema):
    responses = schema["paths"]["/api/orders"]["post"]["responses"]
    assert set(responses) >= {"200", "201", "400", "401", "403", "409", "422", "429"}


@pytest.mark.django_db
def test_swagger_ui_is_served_without_any_cdn(client):
    # Act
    response = client.get("/api/docs/", HTTP_HOST="127.0.0.1")
    # Assert: the page loads its assets from our static files only
    html = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui-dist" in html and "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


def test_schema_request_bodies_refuse_unknown_fields(schema):
    # Arrange: the input serializers refuse a field they do not declare (a 400 naming it)
    components = schema["components"]["schemas"]
    # Act / Assert: so the schema says so, or a client (or a fuzzer) reads extra fields as allowed
    for name in ("OrderCreateInputRequest", "RiskCheckInputRequest", "OrderCancelInputRequest"):
        assert components[name]["additionalProperties"] is False, name


def test_schema_documents_every_error_an_operation_gives_for_bad_input(schema):
    # Arrange: query, path and body input is validated (400); bodies are JSON only (415) and at most
    # DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413, orders.api.parsers)
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()}
    # Act / Assert
    for (path, method), op in operations.items():
        if op.get("parameters") or "requestBody" in op:
            assert "400" in op["responses"], f"{method.upper()} {path}"
        if "requestBody" in op:
            assert "415" in op["responses"], f"{method.upper()} {path}"
            assert "413" in op["responses"], f"{method.upper()} {path}"


@pytest.mark.django_db
def test_schema_documents_the_406_every_operation_answers_to_an_unserved_accept(schema, client):
    # Arrange: an Accept naming only HTML, which the API does not serve
    operations = [(path, method) for path, item in schema["paths"].items() for method in item
                  if "{" not in path and method in ("get", "post")]
    # Act
    answers = {(path, method): getattr(client, method)(path, HTTP_ACCEPT="text/html", HTTP_HOST="127.0.0.1")
               for path, method in operations}
    # Assert: each such operation answers a JSON 406 not_acceptable, and the schema documents it with ErrorOutput
    for (path, method), response in answers.items():
        assert response.status_code == 406 and response.json()["error"] == "not_acceptable", f"{method} {path}"
    for path, item in schema["paths"].items():
        for method, op in item.items():
            ref = op["responses"].get("406", {}).get("content", {}).get("application/json", {}).get("schema")
            assert ref == {"$ref": "#/components/schemas/ErrorOutput"}, f"{method.upper()} {path}"


def test_schema_throttled_operations_document_the_503_of_an_unreachable_throttle(schema):
    # Arrange: every operation that answers 429 is throttled, and the throttle answers 503
    # throttle_unavailable when Redis does not (orders.api.throttling)
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()}
    throttled = {key: op for key, op in operations.items() if "429" in op["responses"]}
    # Act / Assert
    assert throttled
    for (path, method), op in throttled.items():
        assert "503" in op["responses"], f"{method.upper()} {path}"


def test_schema_order_list_page_size_is_at_least_one(schema):
    # Arrange: page_size=0 is a 400 (orders.api.filters.OrderCursorPagination.get_page_size)
    parameters = {p["name"]: p for p in schema["paths"]["/api/orders"]["get"]["parameters"]}
    # Act / Assert
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1}



def test_schema_order_list_search_documents_its_maximum_length(schema):
    # Arrange: a longer q is a 400 (orders.api.filters.OrderFilter.q)
    parameters = {p["name"]: p for p in schema["paths"]["/api/orders"]["get"]["parameters"]}
    # Act / Assert
    assert parameters["q"]["schema"]["maxLength"] == 128
    assert parameters["q"]["description"]

def _request_schema_and_serializer(client, component: str):
    # The served schema of a request body component, and a fresh serializer of that body.
    from orders.api.serializers import OrderCancelInputSerializer, OrderCreateInputSerializer, RiskCheckInputSerializer

    schema = client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").json()
    serializer = {"OrderCreateInputRequest": OrderCreateInputSerializer,
                  "RiskCheckInputRequest": RiskCheckInputSerializer,
                  "OrderCancelInputRequest": OrderCancelInputSerializer}[component]()
    return schema["components"]["schemas"][component], serializer


def _decimal_branches(component_schema: dict, json_type: str) -> dict:
    # Each decimal property's oneOf branch of ``json_type`` ("string" or "integer"), by property name.
    return {name: next(alt for alt in spec["oneOf"] if alt.get("type") == json_type)
            for name, spec in component_schema["properties"].items()
            if any(alt.get("format") == "decimal" for alt in spec.get("oneOf", ()))}


def _field_accepts(field, value) -> bool:
    # Whether the API's serializer field takes ``value`` (run_validation raises on what it refuses).
    from rest_framework.exceptions import ValidationError

    try:
        field.run_validation(value)
    except ValidationError:
        return False
    return True


#: Decimal strings on both sides of the schema's pattern: edge whitespace, exponents, signs, digit counts,
#: non-ASCII digits (Python's Decimal and \d take "١"; JSON Schema's pattern is ECMA-262, \d is ASCII).
DECIMAL_SAMPLES = [
    "0.01", "40000", "-0.5", "5.", ".5", "0", "1" * 18, "1" * 18 + "." + "1" * 18,
    " 0.01", "0.01 ", "0.01\n", "\t0.01", "", ".", "-", "1e3", "+1", "1_000", "NaN", "Infinity", "0x10",
    "1" * 19, "0." + "1" * 19, "0" * 19 + "1", "\u0661", "1,5",
]


@pytest.mark.django_db
@pytest.mark.parametrize("component", ["OrderCreateInputRequest", "RiskCheckInputRequest"])
def test_schema_decimal_string_pattern_accepts_what_the_api_accepts(client, component):
    # Arrange: the served schema's string branch of each decimal field, and the serializer of the same body
    spec, serializer = _request_schema_and_serializer(client, component)
    decimals = {name: alt["pattern"] for name, alt in _decimal_branches(spec, "string").items()}
    assert {"quantity", "price", "max_slippage"} <= set(decimals)

    # Act / Assert: a JSON Schema pattern is searched, not anchored for us; fullmatch = ECMA "^…$" (no "\n" before $)
    for name, pattern in decimals.items():
        assert pattern.startswith("^") and pattern.endswith("$"), (name, pattern)
        for value in DECIMAL_SAMPLES:
            in_schema = re.fullmatch(pattern, value, flags=re.ASCII) is not None
            assert _field_accepts(serializer.fields[name], value) == in_schema, (name, value, pattern)


@pytest.mark.django_db
def test_options_on_orders_does_not_offer_server_owned_fields_as_post_input(svc_client):
    # Act: DRF's metadata described the output serializer as the POST body: order_id, status,
    # filled_quantity … "required" and not read-only, each of which the API refuses (mass assignment)
    response = svc_client.options("/api/orders")
    # Assert: the contract is the OpenAPI schema, which OPTIONS points to
    assert response.status_code == 200
    body = response.json()
    assert "actions" not in body
    assert body["schema"] == "/api/schema/"


@pytest.mark.django_db
@pytest.mark.parametrize("component", ["OrderCreateInputRequest", "RiskCheckInputRequest"])
def test_schema_decimal_integer_bounds_are_what_the_api_accepts(client, component):
    # Arrange: the served schema's integer branch of each decimal field, and the serializer of the same body
    spec, serializer = _request_schema_and_serializer(client, component)
    integers = _decimal_branches(spec, "integer")
    assert {"quantity", "price", "max_slippage"} <= set(integers)

    # Act / Assert: the documented bounds are the API's, to the unit (18 digits: NUMERIC(36,18))
    for name, branch in integers.items():
        assert (branch.get("minimum"), branch.get("maximum")) == (-(10**18 - 1), 10**18 - 1), (name, branch)
        for value in (branch["minimum"], branch["maximum"], 0):
            assert _field_accepts(serializer.fields[name], value), (name, value)
        for value in (branch["minimum"] - 1, branch["maximum"] + 1, 10**40):
            assert not _field_accepts(serializer.fields[name], value), (name, value)



def _served_property(client, component: str, name: str) -> dict:
    schema = client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").json()
    return schema["components"]["schemas"][component]["properties"][name]


def _schema_accepts(spec: dict, value) -> bool:
    # OpenAPI 3.0's schema object is JSON Schema draft 4 with extensions (format, example: ignored here). Its
    # pattern is ECMA-262, where "$" is the end of the text; in Python's re it also matches before a final "\n".
    import jsonschema

    def ecma_pattern(validator, pattern, instance, schema):
        python = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
        if validator.is_type(instance, "string") and not re.search(python, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": ecma_pattern})
    return validator(spec).is_valid(value)


def _api_accepts(**changes) -> bool:
    from orders.api.serializers import OrderCreateInputSerializer
    from tests.orders.factories import order_body

    return OrderCreateInputSerializer(data=order_body(**changes)).is_valid()


@pytest.mark.django_db
@pytest.mark.parametrize("value", [*DECIMAL_SAMPLES, 1, -400, 10**18 - 1, -(10**18 - 1), 10**18, -(10**18), 0.5, 1.0,
                                   True, None, ["1"], {"a": "1"}])
def test_schema_expected_deltas_takes_what_the_api_takes(client, value):
    # Arrange: the documented request property and a body carrying the value as one asset's delta
    spec = _served_property(client, "OrderCreateInputRequest", "expected_deltas")
    deltas = {"USDT": "-400", "BTC": value}
    # Act / Assert: a client generated from the schema sends what the API takes, and nothing else
    assert _schema_accepts(spec, deltas) == _api_accepts(expected_deltas=deltas), (value, spec)


_SCHEDULE = {"horizon_secs": 60, "interval_secs": 10}


@pytest.mark.django_db
@pytest.mark.parametrize(("algorithm", "order_type", "params", "valid"), [
    ("NORMAL", "LIMIT", {}, True),
    ("TWAP", "MARKET", _SCHEDULE, True),
    ("TWAP", "MARKET", {"horizon_secs": 7 * 24 * 3600, "interval_secs": 3600}, True),
    ("TWAP", "MARKET", {**_SCHEDULE, "horizon_secs": 0}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "horizon_secs": 7 * 24 * 3600 + 1}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "interval_secs": "10"}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "interval_secs": 10.0}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "interval_secs": True}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "slices": 6}, False),
    ("TWAP", "MARKET", {**_SCHEDULE, "": 1}, False),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "0.5"}, True),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": 1}, True),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "5e-1"}, False),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": 0.5}, False),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "1", "volume_profile": ["1", 2, "0", ".5", "3.", "1"]},
     True),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "1", "volume_profile": []}, False),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "1", "volume_profile": "1,1,1,1,1,1"}, False),
    ("VWAP", "MARKET", {**_SCHEDULE, "max_participation": "1", "volume_profile": ["1"] * 5 + [" 1"]}, False),
    ("VWAP", "MARKET", {"horizon_secs": 10_001, "interval_secs": 1, "max_participation": "1",
                        "volume_profile": ["1"] * 10_001}, False),
    ("ICEBERG", "LIMIT", {"display_qty": "0.001"}, True),
    ("ICEBERG", "LIMIT", {"display_qty": " 0.001"}, False),
    ("ICEBERG", "LIMIT", {"display_qty": "1E-3"}, False),
    ("ICEBERG", "LIMIT", {"display_qty": None}, False),
    ("ICEBERG", "LIMIT", {"display_qty": 10**18}, False),
])
def test_schema_exec_algorithm_params_take_what_the_api_takes(client, algorithm, order_type, params, valid):
    # Arrange: the documented request property; each algorithm with the params it takes (the schema cannot tie a
    # parameter to the algorithm: that rule stays the API's alone)
    spec = _served_property(client, "OrderCreateInputRequest", "exec_algorithm_params")
    price = "40000" if order_type == "LIMIT" else None
    # Act
    in_schema = _schema_accepts(spec, params)
    in_api = _api_accepts(exec_algorithm=algorithm, order_type=order_type, price=price, exec_algorithm_params=params)
    # Assert: a client generated from the schema sends what the API takes, and the schema refuses what it refuses
    assert (in_schema, in_api) == (valid, valid), spec


def test_schema_exec_algorithm_params_names_every_parameter_of_every_algorithm(schema):
    # Arrange
    from orders.algorithms import ALGORITHM_PARAMS

    spec = schema["components"]["schemas"]["OrderCreateInputRequest"]["properties"]["exec_algorithm_params"]
    # Act / Assert: the parameters the API takes, no other (an unknown parameter is a 400)
    assert set(spec["properties"]) == set().union(*ALGORITHM_PARAMS.values())
    assert spec["additionalProperties"] is False


#: Texts on both sides of a text field's rules: NUL (refused everywhere), edge / only whitespace (trimmed by the
#: free-text fields, so only whitespace is blank), characters Python's str.strip() keeps or removes.
TEXT_SAMPLES = ["alpha", " alpha ", "a b", "", " ", "\t", "\n", "\u3000", "\x1c", "\x85", "\u200b", "\ufeff", "a\x00",
                "\x00", " \x00 "]


@pytest.mark.django_db
@pytest.mark.parametrize("component", ["OrderCreateInputRequest", "RiskCheckInputRequest", "OrderCancelInputRequest"])
def test_schema_text_fields_take_what_the_api_takes(client, component):
    # Arrange: every free-text property of the request body, and the serializer field behind it
    from orders.api.serializers import StrictCharField

    spec, serializer = _request_schema_and_serializer(client, component)
    texts = {name: field for name, field in serializer.fields.items() if isinstance(field, StrictCharField)}
    assert texts

    # Act / Assert
    for name, field in texts.items():
        for value in TEXT_SAMPLES:
            assert _schema_accepts(spec["properties"][name], value) == _field_accepts(field, value), (name, value)


@pytest.mark.django_db
def test_schema_text_query_parameters_refuse_what_the_api_refuses(client, svc_client):
    # Arrange: every free-text query parameter (no enum, no format) of every operation
    schema = client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").json()
    texts = [(path.replace("{instrument_key}", "ANY:PERPETUAL:BTC-USDT@LIN"), parameter)
             for path, item in schema["paths"].items() for op in item.values() for parameter in op.get("parameters", [])
             if parameter["in"] == "query" and parameter["schema"].get("type") == "string"
             and not {"enum", "format"} & set(parameter["schema"])]
    assert {parameter["name"] for _, parameter in texts} >= {"strategy", "venue", "instrument", "q", "cursor"}
    # Act / Assert: a NUL character is a 400 naming the parameter (PostgreSQL refuses it), and outside the schema
    for path, parameter in texts:
        name = parameter["name"]
        response = svc_client.get(path, {name: "a\x00"})
        assert response.status_code == 400 and name in response.json()["fields"], (path, name, response.json())
        assert not _schema_accepts(parameter["schema"], "a\x00"), (path, name, parameter["schema"])
        assert _schema_accepts(parameter["schema"], "a"), (path, name, parameter["schema"])


def test_schema_415_of_a_body_names_the_utf8_rule(schema):
    # Arrange: a body declaring another charset is a 415 (orders.api.parsers.JsonParser, RFC 8259 §8.1)
    operations = [op for item in schema["paths"].values() for op in item.values() if "requestBody" in op]
    # Act / Assert
    assert operations
    for op in operations:
        assert "charset" in op["responses"]["415"]["description"], op["operationId"]


def test_schema_401_names_the_bearer_scheme_and_both_error_codes(schema):
    # Arrange: another scheme or a bare token is authentication_failed naming Bearer (orders.api.errors)
    operations = [op for item in schema["paths"].values() for op in item.values() if "401" in op["responses"]]
    # Act / Assert
    assert operations
    for op in operations:
        description = op["responses"]["401"]["description"]
        assert "Bearer" in description and "not_authenticated" in description, op["operationId"]
        assert "authentication_failed" in description, op["operationId"]


def test_schema_order_list_created_bounds_document_the_inverted_range_400(schema):
    # Arrange: created_after later than created_before is a 400 naming both (orders.api.filters.OrderFilter)
    parameters = {p["name"]: p for p in schema["paths"]["/api/orders"]["get"]["parameters"]}
    # Act / Assert
    for name, other in (("created_after", "created_before"), ("created_before", "created_after")):
        assert "400" in parameters[name]["description"] and other in parameters[name]["description"], name


def _error_bodies(tradable, strategy, svc_client) -> dict:
    # One error body of each kind that adds keys of its own (orders.api.errors), as the API answers it.
    from django.conf import settings
    from django.test import override_settings

    from tests.orders.conftest import client_for
    from tests.orders.factories import OrderFactory, StrategyFactory, order_body

    body = order_body(operation_id="op-err")
    assert svc_client.post("/api/orders", body, format="json").status_code == 201
    filled = OrderFactory(strategy=strategy, status="FILLED")
    disabled = StrategyFactory(id="off", enabled=False)
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1/min"}}
    with override_settings(REST_FRAMEWORK=rates):
        throttled = client_for(strategy.service_account)
        throttled.get("/api/orders")
        too_many = throttled.get("/api/orders")
    return {
        409: svc_client.post("/api/orders", {**body, "quantity": "0.02"}, format="json"),
        "409 cancel": svc_client.post(f"/api/orders/{filled.pk}/cancel", {}, format="json"),
        403: svc_client.post("/api/orders", order_body(strategy_id=disabled.id), format="json"),
        422: client_for(disabled.service_account).post("/api/orders", order_body(), format="json"),
        429: too_many,
    }


@pytest.mark.django_db
def test_schema_error_output_names_every_key_the_api_error_bodies_carry(client, tradable, strategy, svc_client):
    # Arrange: the served ErrorOutput, held to the keys it names (as a client generated from it reads a body)
    schema = client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").json()
    spec = {**schema["components"]["schemas"]["ErrorOutput"], "additionalProperties": False,
            "components": schema["components"]}  # its $refs (OrderStatusEnum) resolve from the root
    # Act
    responses = _error_bodies(tradable, strategy, svc_client)
    # Assert: operation_id / order_id (409 conflict), status / order_id (409 cancel), strategy_id (403, 422),
    # retry_after_secs (429) are documented, each with its type
    for kind, response in responses.items():
        status = int(str(kind).split()[0])
        assert response.status_code == status, (kind, response.json())
        assert _schema_accepts(spec, response.json()), (kind, response.json(), sorted(spec["properties"]))


@pytest.mark.django_db
def test_schema_order_output_says_a_listed_parents_fills_are_its_own(client, strategy, svc_client):
    # Arrange: a TWAP parent filled 0.02 by its primary (0.005) and two slices
    from tests.orders.factories import algorithm_family

    parent, _ = algorithm_family(strategy)
    schema = client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").json()
    output = schema["components"]["schemas"]["OrderOutput"]["properties"]
    # Act: the list (the submit and cancel answers share its OrderOutput) and the detail
    listed = next(o for o in svc_client.get("/api/orders").json()["results"] if o["order_id"] == str(parent.pk))
    detail = svc_client.get(f"/api/orders/{parent.pk}").json()
    # Assert: listed, the parent's fills are its primary's alone, short of its filled_quantity (the family's) ...
    assert [f["quantity"] for f in listed["fills"]] == ["0.005"] and listed["filled_quantity"] == "0.02"
    assert len(detail["fills"]) == 3
    # ... which the schema says, pointing to the detail for the family's
    assert "own" in output["fills"]["description"] and "/api/orders/{order_id}" in output["fills"]["description"]
    assert "family" in output["filled_quantity"]["description"]
