# frozen_string_literal: true

# The worker runtime hosted in this Ruby process and the REST client, against a real PostgreSQL
# (the dev database, or DATABASE_URL) and the real `tasker server` binary. Needs the binaries built
# (`cargo make test` builds them first); a missing binary fails, never skips.
require "open3"
require "securerandom"
require "socket"
require "net/http"
require "json"

module LiveStack
  REPO = File.expand_path("../../../..", __dir__)
  TEMPLATES = File.join(REPO, "fixtures/task_templates/ruby/tests")

  module_function

  def bin_dir
    return ENV["TASKER_BIN_DIR"] if ENV["TASKER_BIN_DIR"].to_s != ""

    File.join(ENV["CARGO_TARGET_DIR"].to_s.empty? ? File.join(REPO, "target") : ENV["CARGO_TARGET_DIR"], "debug")
  end

  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  def fresh_database
    base = TaskerCore::Native.resolve_database_url
    name = "rspec_#{SecureRandom.hex(6)}"
    out, status = Open3.capture2e("psql", base, "-qc", "CREATE DATABASE #{name}")
    raise "psql CREATE DATABASE failed: #{out}" unless status.success?

    "#{base.rpartition('/').first}/#{name}"
  end

  def start
    server_bin = File.join(bin_dir, "tasker")
    raise "#{server_bin} is missing: build the binaries first (cargo make build-bins)" unless File.exist?(server_bin)

    url = fresh_database
    worker = TaskerCore::Worker.new(url, template_path: TEMPLATES, environment: "test", concurrency: 4,
                                         health_bind: "127.0.0.1:0")
    registry = TaskerCore::Registry.new
    runner = TaskerCore::WorkerRunner.new(worker, registry, threads: 4)
    runner.start
    env = { "DATABASE_URL" => url, "TASKER_ENV" => "test", "RUST_LOG" => "warn" }
    server, base = start_server(env)
    { client: TaskerCore::Client.new(base), worker: worker, runner: runner, registry: registry, server: server,
      env: env }
  end

  # A `tasker server` with this environment on a free port, once ready: [pid, base url].
  def start_server(env)
    port = free_port
    server = Process.spawn(env.merge("TASKER_BIND" => "127.0.0.1:#{port}"), File.join(bin_dir, "tasker"), "server",
                           out: File::NULL, err: File::NULL)
    base = "http://127.0.0.1:#{port}"
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    loop do
      break if (Net::HTTP.get_response(URI("#{base}/ready")).code == "200" rescue false)
      raise "server exited" if Process.wait(server, Process::WNOHANG)
      raise "server not ready after 30 s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
    end
    [server, base]
  end

  # `tasker token ARGS` on the stack's database: its stdout, stripped.
  def tasker_token(env, *args)
    out, err, status = Open3.capture3(env, File.join(bin_dir, "tasker"), "token", *args)
    raise "tasker token #{args.join(' ')}: #{err}" unless status.success?

    out.strip
  end

  def stop(stack)
    stack[:runner].stop
    stack[:runner].wait
    Process.kill("TERM", stack[:server])
    Process.wait(stack[:server])
  end
end

RSpec.describe "the hosted worker and the client against a live stack" do
  # rubocop:disable RSpec/InstanceVariable -- one stack for the group, like a module fixture
  before(:all) { @stack = LiveStack.start }
  after(:all) { LiveStack.stop(@stack) if @stack }

  let(:client) { @stack[:client] }
  let(:ns) { "tasker_tests_rb" }

  def steps(task) = task["steps"].to_h { |s| [s["name"], s] }

  it "boots and reports its namespaces and health" do
    worker = @stack[:worker]
    expect(worker.namespaces).to eq([ns])
    expect(Net::HTTP.get_response(URI("http://#{worker.health_address}/health")).code).to eq("200")
  end

  it "runs the linear workflow on Ruby threads" do
    t = client.create_task(ns, "linear_workflow", { "n" => 4 }, version: "1.0.0")
    expect([t["created"], t["status"]]).to eq([true, "pending"])
    done = client.wait_for_task(t["task_uuid"], timeout: 30)
    expect(done["status"]).to eq("complete")
    expect(steps(done).transform_values { |s| s["result"]["value"] }).to eq("a" => 5, "b" => 10, "c" => 7, "d" => 49)
  end

  it "fails a step whose handler raises, and keeps serving" do
    t = client.create_task(ns, "diamond_workflow", { "n" => 1, "behaviors" => { "left" => { "mode" => "panic" } } })
    done = client.wait_for_task(t["task_uuid"], timeout: 30)
    left = steps(done)["left"]
    expect(done["status"]).to eq("error")
    expect(left["attempts"]).to eq(3)
    expect(left["error"]["error_code"]).to eq("UNHANDLED_EXCEPTION")
    expect(left["error"]["message"]).to eq("RuntimeError: step left was told to panic")
    again = client.create_task(ns, "diamond_workflow", { "n" => 1 })
    expect(client.wait_for_task(again["task_uuid"], timeout: 30)["status"]).to eq("complete")
  end

  it "lets a handler create a task through the engine" do
    creates = Class.new(TaskerCore::StepHandler::Base) do
      def call(context)
        created = context.create_task(context.namespace, "diamond_workflow", { "n" => 2 },
                                      idempotency_key: "child:#{context.step_uuid}")
        success(result: { "value" => 1, "attempt" => context.attempt, "child" => created })
      end
    end
    @stack[:registry].register("TaskerTests::StepHandlers::LinearAHandler", creates)
    begin
      t = client.create_task(ns, "linear_workflow", { "n" => 1 }, version: "1.0.0")
      done = client.wait_for_task(t["task_uuid"], timeout: 30)
    ensure
      @stack[:registry].register("TaskerTests::StepHandlers::LinearAHandler", TaskerTests::StepHandlers::LinearAHandler)
    end
    expect(done["status"]).to eq("complete")
    child = steps(done)["a"]["result"]["child"]
    expect([child["created"], child["name"]]).to eq([true, "diamond_workflow"])
    finished = client.wait_for_task(child["task_uuid"], timeout: 30)
    expect(steps(finished)["end"]["result"]["value"]).to eq(16)
  end

  it "maps creation errors to TaskCreationError with code, field and details" do
    expect { client.create_task(ns, "linear_workflow", { "n" => "four" }) }
      .to raise_error(TaskerCore::Errors::TaskCreationError) { |e|
        expect([e.code, e.field, e.transient?]).to eq(["INVALID_TASK_INPUT", "/context/n", false])
        expect(e.details.first["keyword"]).to eq("type")
      }
    expect { client.create_task(ns, "no_such_workflow", {}) }
      .to raise_error(TaskerCore::Errors::TaskCreationError) { |e| expect([e.code, e.field]).to eq(["TEMPLATE_NOT_FOUND", "/name"]) }
    key = "k-#{SecureRandom.uuid}"
    first = client.create_task(ns, "diamond_workflow", { "n" => 3 }, idempotency_key: key)
    replay = client.create_task(ns, "diamond_workflow", { "n" => 3 }, idempotency_key: key)
    expect([replay["task_uuid"], replay["created"]]).to eq([first["task_uuid"], false])
    expect { client.create_task(ns, "diamond_workflow", { "n" => 4 }, idempotency_key: key) }
      .to raise_error(TaskerCore::Errors::TaskCreationError) { |e| expect(e.code).to eq("IDEMPOTENCY_CONFLICT") }
  end

  it "reads tasks and reports unknown ones" do
    expect { client.get_task(SecureRandom.uuid) }
      .to raise_error(TaskerCore::Errors::TaskNotFoundError) { |e| expect(e.status).to eq(404) }
    expect { client.get_task("not-a-uuid") }.to raise_error(TaskerCore::Errors::ApiError) { |e| expect(e.status).to eq(400) }
    expect(client.list_tasks(namespace: ns, limit: 2)["tasks"].size).to be <= 2
  end

  it "reads a task's lifecycle events" do
    t = client.create_task(ns, "diamond_workflow", { "n" => 3 })
    done = client.wait_for_task(t["task_uuid"], timeout: 30)
    events = client.get_task_events(t["task_uuid"])
    names = events.map { |e| e["event_name"] }
    expect([names.first, names.last]).to eq(%w[task.created task.completed])
    expect([names.count("step.started"), names.count("step.completed")]).to eq([4, 4])
    expect(events.map { |e| e["correlation_id"] }.uniq).to eq([done["correlation_id"]])
    expect { client.get_task_events(SecureRandom.uuid) }.to raise_error(TaskerCore::Errors::TaskNotFoundError)
  end

  it "times out a wait with the last status, then finishes" do
    t = client.create_task(ns, "diamond_workflow",
                           { "n" => 1, "behaviors" => { "start" => { "mode" => "sleep", "ms" => 1500 } } })
    expect { client.wait_for_task(t["task_uuid"], timeout: 0.2) }
      .to raise_error(TaskerCore::Errors::WaitTimeoutError) { |e| expect(%w[pending in_progress]).to include(e.last_status) }
    expect(client.wait_for_task(t["task_uuid"], timeout: 30)["status"]).to eq("complete")
  end

  it "lists with every filter and pages with the cursor" do
    made = (0..2).map { |n| client.create_task(ns, "diamond_workflow", { "n" => n })["task_uuid"] }
    made.each { |u| expect(client.wait_for_task(u, timeout: 30)["terminal"]).to be(true) }
    page = client.list_tasks(namespace: ns, name: "diamond_workflow", status: "complete", limit: 2)
    expect(page["tasks"].map { |t| t["task_uuid"] }).to eq([made[2], made[1]])
    expect(page["tasks"]).to all(include("status" => "complete", "terminal" => true))
    rest = client.list_tasks(namespace: ns, name: "diamond_workflow", status: "complete", limit: 2,
                             cursor: page["next_cursor"])
    expect(rest["tasks"].map { |t| t["task_uuid"] }).to include(made[0])
    expect { client.list_tasks(status: "done") }
      .to raise_error(TaskerCore::Errors::ApiError) { |e| expect([e.status, e.field]).to eq([400, "/status"]) }
  end

  it "cancels a task and retries a failed step" do
    slow = client.create_task(ns, "diamond_workflow",
                              { "n" => 1, "behaviors" => { "start" => { "mode" => "sleep", "ms" => 800 } } })
    cancelled = client.cancel_task(slow["task_uuid"])
    expect([cancelled["status"], cancelled["terminal"]]).to eq(["cancelled", true])
    expect { client.cancel_task(slow["task_uuid"]) }
      .to raise_error(TaskerCore::Errors::ApiError) { |e| expect([e.status, e.code]).to eq([409, "CONFLICT"]) }

    failing = client.create_task(ns, "diamond_workflow",
                                 { "n" => 1, "behaviors" => { "left" => { "mode" => "permanent" } } })
    first_run = steps(client.wait_for_task(failing["task_uuid"], timeout: 30))["left"]
    expect(first_run["status"]).to eq("error")
    expect(client.retry_step(failing["task_uuid"], "left")["task_uuid"]).to eq(failing["task_uuid"])
    second_run = steps(client.wait_for_task(failing["task_uuid"], timeout: 30))["left"]
    expect(second_run["status"]).to eq("error")
    expect(second_run["started_at"]).to be > first_run["started_at"]
    expect { client.retry_step(failing["task_uuid"], "no such step") }
      .to raise_error(TaskerCore::Errors::ApiError) { |e|
        expect([e.status, e.code, e.field]).to eq([404, "STEP_NOT_FOUND", "/step_name"])
      }
  end

  it "lists this worker in the registry" do
    workers = client.list_workers(namespace: ns)["workers"]
    mine = workers.select { |w| w["pid"] == Process.pid && w["alive"] }
    expect(mine.size).to eq(1), workers.inspect
    expect([mine[0]["language"], mine[0]["namespaces"].include?(ns)]).to eq(["ruby", true])
    expect(client.list_workers(namespace: "nobody_serves_this")["workers"]).to eq([])
  end

  it "lists the registered templates" do
    names = client.list_templates["templates"].map { |t| [t["namespace"], t["name"]] }
    expect(names).to include([ns, "diamond_workflow"])
  end
  # rubocop:enable RSpec/InstanceVariable

  describe "lifecycle-event subscribers" do
    let(:worker) { @stack[:worker] }

    recorder = Class.new do
      attr_reader :events

      def initialize = @events = Queue.new
      def event_names = ["*"]
      def call(event) = @events << event
      def snapshot = { "events" => @events.size }
    end

    broken = Class.new do
      attr_reader :calls

      def initialize = @calls = 0
      def event_names = ["*"]

      def call(_event)
        @calls += 1
        raise "a subscriber that always fails"
      end
    end

    def wait_until(timeout = 20)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      until yield
        raise "condition not reached" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.02
      end
    end

    it "delivers every event of a run in order, and a failing subscriber changes nothing" do
      rec = recorder.new
      bad = broken.new
      perf = TaskerCore::Observability::PerformanceMonitoringSubscriber.new
      [rec, bad, perf].each { |s| worker.subscribe(s, logger: nil) }
      got = []
      begin
        t = client.create_task(ns, "diamond_workflow", { "n" => 3 })
        done = client.wait_for_task(t["task_uuid"], timeout: 30)
        expect(done["status"]).to eq("complete")
        stored = client.get_task_events(t["task_uuid"])
        wait_until do
          got << rec.events.pop until rec.events.empty?
          got.count { |e| e["task_uuid"] == t["task_uuid"] } == stored.size
        end
        mine = got.select { |e| e["task_uuid"] == t["task_uuid"] }
        expect(mine.map { |e| e["event_id"] }).to eq(stored.map { |e| e["event_id"] })
        # Each subscriber has its own thread: the failing one may still be catching up.
        wait_until { bad.calls >= stored.size }
        key = "#{ns}/diamond_workflow@#{done['version']}"
        wait_until { perf.snapshot["workflows"].dig(key, "count").to_i >= 1 }
        expect(perf.snapshot["workflows"][key]["steps"].keys).to match_array(%w[start left right end])
      ensure
        [rec, bad, perf].each { |s| expect(worker.unsubscribe(s)).to be(true) }
      end
      expect(worker.unsubscribe(rec)).to be(false)
      t = client.create_task(ns, "diamond_workflow", { "n" => 4 })
      client.wait_for_task(t["task_uuid"], timeout: 30)
      sleep 0.5
      expect(rec.events.size).to eq(0)
    end

    it "serves named subscribers' snapshots" do
      rec = recorder.new
      metrics = TaskerCore::Observability::BusinessMetricsSubscriber.new
      worker.subscribe(rec, name: "Tests::Recorder", logger: nil)
      worker.subscribe(metrics, name: "Observability::BusinessMetricsSubscriber")
      begin
        t = client.create_task(ns, "diamond_workflow", { "n" => 5 })
        client.wait_for_task(t["task_uuid"], timeout: 30)
        wait_until { rec.events.size >= 10 }
        body = Net::HTTP.get(URI("http://#{worker.health_address}/observability/snapshots"))
        snapshots = JSON.parse(body)
        expect(snapshots.keys).to match_array(%w[Tests::Recorder Observability::BusinessMetricsSubscriber])
        expect(snapshots["Tests::Recorder"]["events"]).to be >= 10
        expect(snapshots["Observability::BusinessMetricsSubscriber"]).to eq("namespaces" => {})
      ensure
        worker.unsubscribe(rec)
        worker.unsubscribe(metrics)
      end
    end

    it "refuses an object that is not a subscriber" do
      expect { worker.subscribe(Object.new) }.to raise_error(TypeError, /event_names/)
    end
  end
end

RSpec.describe TaskerCore::Client, "behind API tokens" do
  # rubocop:disable RSpec/InstanceVariable -- one stack for the group, like a module fixture
  before(:all) do
    @stack = LiveStack.start
    env = @stack[:env]
    suffix = SecureRandom.hex(4)
    @writer_name = "rb-writer-#{suffix}"
    @reader = LiveStack.tasker_token(env, "create", "--name", "rb-reader-#{suffix}", "--scope", "tasker_tests_rb:read")
    @writer = LiveStack.tasker_token(env, "create", "--name", @writer_name, "--scope", "tasker_tests_rb:write")
    @server, @base = LiveStack.start_server(env.merge("TASKER_AUTH" => "tokens"))
  end

  after(:all) do
    Process.kill("TERM", @server) if @server
    Process.wait(@server) if @server
    LiveStack.stop(@stack) if @stack
  end

  around do |example|
    saved = ENV.delete("TASKER_TOKEN")
    example.run
  ensure
    saved.nil? ? ENV.delete("TASKER_TOKEN") : ENV["TASKER_TOKEN"] = saved
  end

  it "raises AuthenticationError without a token, on reads and on creation" do
    expect { described_class.new(@base).list_tasks }.to raise_error(TaskerCore::Errors::AuthenticationError) { |e|
      expect([e.status, e.code, e.field]).to eq([401, "UNAUTHENTICATED", "/headers/authorization"])
    }
    expect { described_class.new(@base).create_task("tasker_tests_rb", "diamond_workflow", { "n" => 1 }) }
      .to raise_error(TaskerCore::Errors::AuthenticationError)
  end

  it "raises PermissionDeniedError naming the scope a token lacks, and reads with TASKER_TOKEN" do
    created = described_class.new(@base, token: @writer).create_task("tasker_tests_rb", "diamond_workflow", { "n" => 1 })
    reader = described_class.new(@base, token: @reader)
    expect { reader.create_task("tasker_tests_rb", "diamond_workflow", { "n" => 1 }) }
      .to raise_error(TaskerCore::Errors::PermissionDeniedError) { |e|
        expect([e.status, e.code, e.scope]).to eq([403, "FORBIDDEN", "tasker_tests_rb:write"])
      }
    expect { reader.cancel_task(created["task_uuid"]) }
      .to raise_error(TaskerCore::Errors::PermissionDeniedError) { |e| expect(e.scope).to eq("tasker_tests_rb:write") }
    ENV["TASKER_TOKEN"] = @reader
    task = described_class.new(@base).get_task(created["task_uuid"])
    expect(task["created_by"]).to eq("kind" => "token", "name" => @writer_name)
    expect(described_class.new(@base).inspect).not_to include("tkr_")
  end

  it "raises AuthenticationError for a revoked token, saying so" do
    name = "rb-revoked-#{SecureRandom.hex(4)}"
    client = described_class.new(@base, token: LiveStack.tasker_token(@stack[:env], "create", "--name", name,
                                                                       "--scope", "tasker_tests_rb:read"))
    client.list_tasks
    LiveStack.tasker_token(@stack[:env], "revoke", name)
    expect { client.list_tasks }.to raise_error(TaskerCore::Errors::AuthenticationError) { |e|
      expect(e.reason).to eq("the token has been revoked")
    }
  end
  # rubocop:enable RSpec/InstanceVariable
end

RSpec.describe TaskerCore::Client, "against the OpenAPI document" do
  it "covers every task and template operation" do
    doc = JSON.parse(File.read(File.join(LiveStack::REPO, "docs/openapi.json")))
    operations = doc["paths"].values.flat_map(&:values)
                             .select { |op| (op.fetch("tags", []) & %w[tasks templates workers]).any? }
                             .map { |op| op["operationId"] }
    expect(described_class::OPERATIONS.keys).to match_array(operations)
    described_class::OPERATIONS.each_value { |m| expect(described_class.instance_method(m)).to be_a(UnboundMethod) }
  end
end

RSpec.describe TaskerCore::Client do
  it "reports an unreachable server as a transient creation error" do
    c = described_class.new("http://127.0.0.1:#{LiveStack.free_port}", timeout: 2)
    expect { c.create_task("x", "y", {}) }.to raise_error(TaskerCore::Errors::TaskCreationError) { |e|
      expect([e.code, e.transient?]).to eq(["ENGINE_UNAVAILABLE", true])
    }
    expect { described_class.new("localhost:8080") }.to raise_error(ArgumentError, /http:\/\/host:port/)
  end
end
