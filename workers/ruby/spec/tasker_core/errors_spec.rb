# frozen_string_literal: true

RSpec.describe TaskerCore::Errors do
  it "maps every native error kind to a class, and no other kind" do
    expect(TaskerCore::Native.error_kinds.sort).to eq(described_class::NATIVE_ERROR_KINDS.keys.sort)
  end

  TaskerCore::Native.error_kinds.each do |kind|
    it "raises #{described_class::NATIVE_ERROR_KINDS.fetch(kind)} for native kind #{kind}" do
      expect { TaskerCore::Native.raise_native_error(kind, "boom") }
        .to raise_error(described_class::NATIVE_ERROR_KINDS.fetch(kind), /boom/)
    end
  end

  it "rejects unknown kinds" do
    expect { TaskerCore::Native.raise_native_error("nope", "x") }.to raise_error(ArgumentError, /unknown native error kind/)
  end

  it "roots every class at TaskerCore::Errors::Error" do
    classes = described_class.constants.map { |c| described_class.const_get(c) }.grep(Class)
    expect(classes.size).to be >= 15
    classes.each { |cls| expect(cls.ancestors).to include(described_class::Error) }
  end

  it "carries the typed fields of a native task creation error" do
    expect { TaskerCore::Native.raise_native_error("task_creation", "n must be an integer") }
      .to raise_error(described_class::TaskCreationError) { |e|
        expect([e.code, e.field, e.details, e.transient?]).to eq(["INVALID_TASK_INPUT", "/context", [], false])
        expect(e.message).to eq("INVALID_TASK_INPUT: n must be an integer")
      }
  end

  it "gives permanent and retryable errors their codes, retry_after and context" do
    p = described_class::PermanentError.new("bad card", error_code: "CARD_DECLINED", context: { "last4" => "4242" })
    expect(p.to_h).to eq("message" => "bad card", "error_code" => "CARD_DECLINED", "retryable" => false,
                         "retry_after" => nil, "context" => { "last4" => "4242" })
    r = described_class::RetryableError.new("busy", retry_after: 30)
    expect(r.to_h).to eq("message" => "busy", "error_code" => "RETRYABLE_ERROR", "retryable" => true,
                         "retry_after" => 30, "context" => {})
    expect(described_class::PermanentError.new("x").error_code).to eq("PERMANENT_ERROR")
  end

  it "refuses a retry_after that is not a non-negative Integer" do
    [-1, 1.5, "3"].each do |bad|
      expect { described_class::RetryableError.new("x", retry_after: bad) }.to raise_error(ArgumentError, /retry_after/)
    end
  end

  it "lists the engine-generated step error codes" do
    expect(TaskerCore::Native.engine_error_codes).to eq(
      "STEP_TIMEOUT" => "STEP_TIMEOUT", "UNHANDLED_EXCEPTION" => "UNHANDLED_EXCEPTION",
      "HANDLER_NOT_FOUND" => "HANDLER_NOT_FOUND", "WORKER_LOST" => "WORKER_LOST"
    )
  end
end
