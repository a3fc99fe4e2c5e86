"""StepContext through the public test helper: every accessor of the core type, no database."""

import pytest

from tasker_core import StepContext
from tasker_core.errors import InvalidContextError, TaskCreationError, TaskerError
from tasker_core.testing import build_context

TASK = "0190f6c4-7b2a-7cde-8f00-0123456789ab"
STEP = "0190f6c4-7b2a-7cde-8f00-ba9876543210"


def full() -> StepContext:
    return build_context(
        task_uuid=TASK,
        step_uuid=STEP,
        step_name="create_order",
        namespace="ecommerce_py",
        workflow_name="ecommerce_order_processing",
        workflow_version="1.0.0",
        correlation_id="corr-1",
        attempt=2,
        max_attempts=2,
        input={"customer": {"email": "a@b.c"}, "nothing": None, "count": 0, "flag": False},
        dependency_results={"validate_cart": {"total": 12.5, "items": [{"sku": "A"}]}},
        config={"scenario": "x"},
    )


def test_identity_fields_are_exposed_snake_case():
    c = full()
    assert (c.task_uuid, c.step_uuid, c.step_name) == (TASK, STEP, "create_order")
    assert (c.namespace, c.workflow_name, c.workflow_version) == ("ecommerce_py", "ecommerce_order_processing", "1.0.0")
    assert c.correlation_id == "corr-1"
    assert (c.attempt, c.max_attempts) == (2, 2)


def test_get_input_treats_null_as_absent_but_keeps_zero_and_false():
    c = full()
    assert c.get_input("customer") == {"email": "a@b.c"}
    assert c.get_input("nothing") is None
    assert c.get_input("missing") is None
    assert c.get_input("count") == 0 and type(c.get_input("count")) is int
    assert c.get_input("flag") is False
    assert c.get_input_or("nothing", 5) == 5
    assert c.get_input_or("count", 5) == 0


def test_dependency_field_walks_objects_and_arrays():
    c = full()
    assert c.get_dependency_result("validate_cart")["total"] == 12.5
    assert c.get_dependency_field("validate_cart", "total") == 12.5
    assert c.get_dependency_field("validate_cart", "items", 0, "sku") == "A"
    assert c.get_dependency_field("validate_cart", "items", "0", "sku") == "A"
    assert c.get_dependency_field("validate_cart", "items", 9) is None
    assert c.get_dependency_field("missing", "total") is None
    with pytest.raises(TypeError):
        c.get_dependency_field("validate_cart", 1.5)


def test_config_and_retry_predicates():
    c = full()
    assert c.get_config("scenario") == "x"
    assert c.get_config("missing") is None
    assert c.config == {"scenario": "x"}
    assert c.is_retry() and c.is_last_retry()
    first = build_context(max_attempts=3)
    assert not first.is_retry() and not first.is_last_retry()


def test_input_and_results_are_read_only_copies():
    c = full()
    c.input["customer"]["email"] = "changed"
    c.dependency_results["validate_cart"]["total"] = 0
    assert c.get_input("customer") == {"email": "a@b.c"}
    assert c.get_dependency_field("validate_cart", "total") == 12.5
    with pytest.raises(AttributeError):
        c.attempt = 5  # type: ignore[misc]


def test_every_field_is_optional_with_defaults():
    c = StepContext.from_json({})
    assert c.step_name == "" and c.attempt == 1 and c.max_attempts == 1
    assert c.task_uuid == "00000000-0000-0000-0000-000000000000"
    assert c.input == {} and c.dependency_results == {} and c.config == {}


def test_from_json_accepts_text_and_round_trips_to_dict():
    c = StepContext.from_json('{"step_name": "a", "input": {"n": 2.0, "big": 18446744073709551615}}')
    assert c.get_input("n") == 2.0 and type(c.get_input("n")) is float
    assert c.get_input("big") == 2**64 - 1
    again = StepContext.from_json(c.to_dict())
    assert again.to_dict() == c.to_dict()


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ({"attempt": "two"}, "expected u32"),
        ({"task_uuid": "nope"}, "UUID"),
        ({"input": {1: "non-str key"}}, "dict keys must be str"),
        ({"input": {"x": float("nan")}}, "not a JSON number"),
        ({"input": {"x": object()}}, "not JSON-serializable"),
    ],
)
def test_malformed_context_raises_invalid_context_error(data, fragment):
    with pytest.raises(InvalidContextError) as e:
        StepContext.from_json(data)
    assert fragment in str(e.value)
    assert isinstance(e.value, TaskerError) and isinstance(e.value, ValueError)


def test_create_task_without_an_engine_is_a_transient_task_creation_error():
    with pytest.raises(TaskCreationError) as e:
        full().create_task("payments_py", "process_refund", {})
    assert e.value.code == "ENGINE_UNAVAILABLE"
    assert e.value.transient is True


def test_create_task_goes_to_the_task_creator_with_the_full_request():
    seen = []

    def creator(request):
        seen.append(request)
        return {
            "task_uuid": TASK,
            "status": "pending",
            "created": True,
            "namespace": request["namespace"],
            "name": request["name"],
            "version": request.get("version") or "1.0.0",
            "correlation_id": "c",
        }

    c = build_context(task_creator=creator)
    out = c.create_task(
        "payments_py", "process_refund", {"amount": 1}, version="2.1.0", idempotency_key="k", tags=["a"], priority=3
    )
    assert out == {
        "task_uuid": TASK,
        "status": "pending",
        "created": True,
        "namespace": "payments_py",
        "name": "process_refund",
        "version": "2.1.0",
        "correlation_id": "c",
    }
    assert seen == [
        {
            "namespace": "payments_py",
            "name": "process_refund",
            "version": "2.1.0",
            "context": {"amount": 1},
            "idempotency_key": "k",
            "tags": ["a"],
            "priority": 3,
        }
    ]


def test_task_creator_errors_propagate_and_bad_answers_are_type_errors():
    def refuse(_request):
        raise TaskCreationError("TEMPLATE_NOT_FOUND", "no such template", field="/name")

    with pytest.raises(TaskCreationError) as e:
        build_context(task_creator=refuse).create_task("x", "y", {})
    assert (e.value.code, e.value.field, e.value.transient) == ("TEMPLATE_NOT_FOUND", "/name", False)
    with pytest.raises(TypeError, match="task_creator must return"):
        build_context(task_creator=lambda _r: {"nope": 1}).create_task("x", "y", {})
    with pytest.raises(TypeError, match="callable"):
        build_context(task_creator=42)


def test_logger_accepts_every_level():
    log = full().logger
    for level in (log.debug, log.info, log.warning, log.error):
        level("a line stamped with the step's correlation fields")
