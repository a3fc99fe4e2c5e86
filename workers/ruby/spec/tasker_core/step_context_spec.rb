# frozen_string_literal: true

RSpec.describe TaskerCore::StepContext do
  def ctx(**fields)
    TaskerCore::Testing.build_context(**fields)
  end

  let(:uuid) { "0190a3b2-1c4d-7e5f-8a9b-0c1d2e3f4a5b" }

  it "exposes every field of the core context under snake_case readers" do
    c = ctx(step_name: "validate_cart", namespace: "ecommerce_rb", workflow_name: "order", workflow_version: "1.2.0",
            correlation_id: "corr-1", task_uuid: uuid, step_uuid: uuid, attempt: 2, max_attempts: 3,
            config: { "scenario" => "x" })
    expect([c.step_name, c.namespace, c.workflow_name, c.workflow_version, c.correlation_id])
      .to eq(["validate_cart", "ecommerce_rb", "order", "1.2.0", "corr-1"])
    expect([c.task_uuid, c.step_uuid, c.attempt, c.max_attempts]).to eq([uuid, uuid, 2, 3])
    expect(c.config).to eq("scenario" => "x")
    expect(c.get_config("scenario")).to eq("x")
    expect(c.get_config("missing")).to be_nil
  end

  it "exposes the attempt's W3C trace context, or nil when the task has none" do
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    c = ctx(trace: { "traceparent" => tp, "tracestate" => "tasker=1" })
    expect([c.traceparent, c.tracestate]).to eq([tp, "tasker=1"])
    expect([ctx.traceparent, ctx.tracestate]).to eq([nil, nil])
  end

  it "keeps JSON types: String keys, Integer versus Float, nil, booleans, nesting" do
    c = ctx(input: { "i" => 2, "f" => 2.0, "big" => 2**63 - 1, "s" => "x", "n" => nil, "b" => false,
                     "list" => [1, [2, { "k" => true }]] })
    expect(c.input).to eq("i" => 2, "f" => 2.0, "big" => 2**63 - 1, "s" => "x", "n" => nil, "b" => false,
                          "list" => [1, [2, { "k" => true }]])
    expect(c.get_input("i")).to be_a(Integer)
    expect(c.get_input("f")).to be_a(Float)
  end

  it "reads Symbol keys and values as strings" do
    c = ctx(input: { plan: :pro })
    expect(c.input).to eq("plan" => "pro")
  end

  it "answers absent keys with nil, or the given default" do
    c = ctx(input: { "present" => 0 })
    expect(c.get_input("absent")).to be_nil
    expect(c.get_input_or("absent", "dflt")).to eq("dflt")
    expect(c.get_input_or("present", "dflt")).to eq(0)
  end

  it "walks into dependency results by key and index" do
    c = ctx(dependency_results: { "cart" => { "items" => [{ "sku" => "A" }, { "sku" => "B" }] } })
    expect(c.get_dependency_result("cart")).to eq("items" => [{ "sku" => "A" }, { "sku" => "B" }])
    expect(c.get_dependency_field("cart", "items", 1, "sku")).to eq("B")
    expect(c.get_dependency_field("cart", "items", 9, "sku")).to be_nil
    expect(c.get_dependency_field("missing", "x")).to be_nil
    expect(c.dependency_results.keys).to eq(["cart"])
    expect { c.get_dependency_field("cart", 1.5) }.to raise_error(TypeError, /String \(keys\) or Integer/)
  end

  it "hands out copies, so a handler cannot change what the next reader sees" do
    c = ctx(input: { "items" => [1, 2] })
    c.input["items"] << 3
    c.get_input("items") << 4
    expect(c.get_input("items")).to eq([1, 2])
  end

  it "tells retries apart" do
    expect(ctx(attempt: 1, max_attempts: 3).retry?).to be(false)
    expect(ctx(attempt: 2, max_attempts: 3).retry?).to be(true)
    expect(ctx(attempt: 2, max_attempts: 3).last_retry?).to be(false)
    expect(ctx(attempt: 3, max_attempts: 3).last_retry?).to be(true)
  end

  it "round-trips through to_h and JSON text" do
    c = ctx(step_name: "s", input: { "a" => [1.5] }, attempt: 2)
    again = described_class.from_json(JSON.generate(c.to_h))
    expect(again.to_h).to eq(c.to_h)
  end

  it "rejects malformed data with InvalidContextError naming the problem" do
    expect { described_class.from_json("{not json") }
      .to raise_error(TaskerCore::Errors::InvalidContextError, /not valid JSON/)
    expect { described_class.from_json("[1]") }
      .to raise_error(TaskerCore::Errors::InvalidContextError, /must be a JSON object/)
    expect { ctx(attempt: "two") }.to raise_error(TaskerCore::Errors::InvalidContextError, /attempt|u32/)
    expect { ctx(task_uuid: "nope") }.to raise_error(TaskerCore::Errors::InvalidContextError)
    expect { ctx(input: { "x" => Object.new }) }
      .to raise_error(TaskerCore::Errors::InvalidContextError, /\$\.input\.x: a Object is not a JSON value/)
    expect { ctx(input: { "x" => Float::NAN }) }.to raise_error(TaskerCore::Errors::InvalidContextError, /finite/)
    expect { ctx(bogus: 1) }.to raise_error(ArgumentError, /unknown context field/)
  end

  it "serves create_task from the test task_creator with the full request" do
    seen = nil
    creator = lambda do |request|
      seen = request
      { "task_uuid" => uuid, "status" => "pending", "created" => true, "namespace" => request["namespace"],
        "name" => request["name"], "version" => "1.0.0", "correlation_id" => "c" }
    end
    c = ctx(task_creator: creator)
    created = c.create_task("payments_rb", "refund", { "amount" => 5 }, idempotency_key: "k1", tags: ["a"])
    expect(created["task_uuid"]).to eq(uuid)
    expect(seen).to eq("namespace" => "payments_rb", "name" => "refund", "context" => { "amount" => 5 },
                       "idempotency_key" => "k1", "tags" => ["a"])
  end

  it "passes TaskCreationError from the task_creator through" do
    c = ctx(task_creator: ->(_) { raise TaskerCore::Errors::TaskCreationError.new("TEMPLATE_NOT_FOUND", "no such", field: "/name") })
    expect { c.create_task("x", "y", {}) }.to raise_error(TaskerCore::Errors::TaskCreationError) { |e|
      expect([e.code, e.field, e.reason, e.transient?]).to eq(["TEMPLATE_NOT_FOUND", "/name", "no such", false])
    }
  end

  it "answers create_task without a creator with the engine's typed error" do
    expect { ctx.create_task("x", "y", {}) }.to raise_error(TaskerCore::Errors::TaskCreationError)
  end

  it "logs through the core with every level" do
    c = ctx(step_name: "s")
    %i[debug info warn error fatal].each { |level| expect(c.logger.public_send(level, "line")).to be(true) }
    expect { c._log("loud", "x", nil) }.to raise_error(ArgumentError, /unknown log level "loud"/)
    expect { c._log("info", "x", [1]) }.to raise_error(ArgumentError, /log fields must be a Hash/)
  end

  it "cannot be created except from data" do
    expect { described_class.new }.to raise_error(TypeError, /allocator undefined/)
  end

  it "survives GC stress while converting nested values" do
    data = { "input" => { "items" => Array.new(10) { |i| { "sku" => "S#{i}", "qty" => i, "price" => i * 1.25 } } },
             "dependency_results" => { "a" => { "deep" => [[[{ "x" => "y" * 100 }]]] } } }
    GC.stress = true
    begin
      2.times do
        c = described_class.from_json(data)
        expect(c.input["items"].size).to eq(10)
        expect(c.get_dependency_field("a", "deep", 0, 0, 0, "x")).to eq("y" * 100)
        expect(c.to_h["input"]).to eq(data["input"])
      end
    ensure
      GC.stress = false
    end
  end
end
