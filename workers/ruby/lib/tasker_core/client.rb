# frozen_string_literal: true

require "erb"
require "json"
require "net/http"
require "uri"

module TaskerCore
  # A REST client for applications: one method per operation of the server's OpenAPI document
  # (<tt>GET /v1/openapi.json</tt>; {OPERATIONS} maps each operation id to its method).
  #
  #   client = TaskerCore::Client.new("http://127.0.0.1:8080")
  #   task = client.create_task("ecommerce_rb", "ecommerce_order_processing", { "cart_items" => [...] })
  #   final = client.wait_for_task(task["task_uuid"], timeout: 30)
  #
  # A server that asks for API tokens gets the one passed as +token:+, else +TASKER_TOKEN+, as
  # <tt>Authorization: Bearer <token></tt>.
  #
  # Errors are the typed exceptions of {Errors}: {Errors::TaskCreationError} (with the §0.3 +code+,
  # +field+ and +details+) from {#create_task}, {Errors::TaskNotFoundError} for an unknown uuid,
  # {Errors::ServerUnavailableError} when the server cannot be reached or fails, and from every
  # method {Errors::AuthenticationError} (401: no token, or one unknown, expired or revoked) and
  # {Errors::PermissionDeniedError} (403, with the +scope+ the token lacks).
  class Client
    # The OpenAPI operation id of every task, template and worker operation, and the method that
    # calls it.
    OPERATIONS = {
      "createTask" => :create_task,
      "getTask" => :get_task,
      "getTaskEvents" => :get_task_events,
      "listTasks" => :list_tasks,
      "cancelTask" => :cancel_task,
      "retryStep" => :retry_step,
      "listTemplates" => :list_templates,
      "listWorkers" => :list_workers
    }.freeze

    attr_reader :url

    # Never shows the token.
    def inspect
      "#<TaskerCore::Client #{@url} token=#{@token ? 'set' : 'none'}>"
    end

    def initialize(url = "http://127.0.0.1:8080", timeout: 10.0, token: nil)
      uri = URI.parse(url)
      unless %w[http https].include?(uri.scheme) && uri.host && !uri.host.empty?
        raise ArgumentError, "url must look like http://host:port, got #{url.inspect}"
      end

      @uri = uri
      @url = url.chomp("/")
      @timeout = timeout
      token = ENV.fetch("TASKER_TOKEN", nil) if token.nil?
      @token = token.to_s.strip.empty? ? nil : token.to_s.strip
    rescue URI::InvalidURIError
      raise ArgumentError, "url must look like http://host:port, got #{url.inspect}"
    end

    # POST /v1/tasks: <tt>{ "task_uuid", "status", "created", "namespace", "name", "version",
    # "correlation_id" }</tt>. +created+ is false for an idempotent replay.
    def create_task(namespace, name, context, **options)
      body = TaskRequest.build(namespace, name, context, **options)
      begin
        status, payload = request(:post, "/v1/tasks", body)
      rescue Errors::ServerUnavailableError => e
        raise Errors::TaskCreationError.new("ENGINE_UNAVAILABLE", e.reason, transient: true)
      end
      return payload if [200, 201].include?(status) && payload.is_a?(Hash)

      raise_if_refused(status, payload)
      err = error_body(payload)
      raise Errors::TaskCreationError.new(
        err["code"] || (status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST"),
        err["message"] || "server answered #{status}",
        field: err["field"], details: err["details"] || [], transient: status >= 500
      )
    end

    # GET /v1/tasks/{uuid}: the task with its steps.
    def get_task(task_uuid)
      ok(*request(:get, "/v1/tasks/#{escape(task_uuid)}"))
    end

    # GET /v1/tasks/{uuid}/events: the task's lifecycle events (spec §5.1), oldest first, each a
    # Hash with string keys.
    def get_task_events(task_uuid)
      ok(*request(:get, "/v1/tasks/#{escape(task_uuid)}/events")).fetch("events")
    end

    # GET /v1/tasks: <tt>{ "tasks" => [...], "next_cursor" }</tt>, newest first. Pass
    # +next_cursor+ as +cursor:+ for the next page; it is nil on the last one.
    def list_tasks(namespace: nil, name: nil, status: nil, limit: nil, cursor: nil)
      filters = { namespace: namespace, name: name, status: status, limit: limit, cursor: cursor }
      query = URI.encode_www_form(filters.compact)
      ok(*request(:get, "/v1/tasks#{query.empty? ? '' : "?#{query}"}"))
    end

    # POST /v1/tasks/{uuid}/cancel: the task, now +cancelled+.
    def cancel_task(task_uuid)
      ok(*request(:post, "/v1/tasks/#{escape(task_uuid)}/cancel", {}))
    end

    # POST /v1/tasks/{uuid}/steps/{name}/retry: gives a step in +error+ a fresh set of attempts;
    # the task, with the step pending again.
    def retry_step(task_uuid, step_name)
      ok(*request(:post, "/v1/tasks/#{escape(task_uuid)}/steps/#{escape(step_name)}/retry", {}))
    end

    # GET /v1/templates: <tt>{ "templates" => [...] }</tt>, every registered template version.
    def list_templates
      ok(*request(:get, "/v1/templates"))
    end

    # GET /v1/workers: <tt>{"workers" => [...]}</tt>, the worker processes seen in the last day
    # (alive ones first), optionally only those serving +namespace+.
    def list_workers(namespace: nil)
      query = URI.encode_www_form({ namespace: namespace }.compact)
      ok(*request(:get, "/v1/workers#{query.empty? ? '' : "?#{query}"}"))
    end

    # The longest wait asked of the server in one request, in seconds (its limit is 30).
    MAX_WAIT = 25.0

    # The task once the server reports it +terminal+; raises {Errors::WaitTimeoutError} after
    # +timeout+ seconds. The server answers <tt>GET /v1/tasks/{uuid}?wait=</tt> as soon as the
    # task ends (nothing polls); a longer wait than the server's longest is asked again.
    def wait_for_task(task_uuid, timeout: 30.0)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        wait = (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)).clamp(0.0, MAX_WAIT)
        path = "/v1/tasks/#{escape(task_uuid)}?wait=#{format('%.3f', wait)}"
        task = ok(*request(:get, path, nil, read_timeout: wait + @timeout))
        return task if task["terminal"] == true
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline
          raise Errors::WaitTimeoutError.new(task_uuid, timeout, task["status"])
        end
      end
    end

    private

    def escape(segment)
      ERB::Util.url_encode(segment.to_s)
    end

    def request(method, path, body = nil, read_timeout: @timeout)
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.use_ssl = @uri.scheme == "https"
      http.open_timeout = @timeout
      http.read_timeout = read_timeout
      req = method == :post ? Net::HTTP::Post.new(path) : Net::HTTP::Get.new(path)
      req["Accept"] = "application/json"
      req["Authorization"] = "Bearer #{@token}" if @token
      unless body.nil?
        req["Content-Type"] = "application/json"
        req.body = JSON.generate(body)
      end
      response = http.request(req)
      [response.code.to_i, parse_json(response.body)]
    rescue SystemCallError, IOError, SocketError, Timeout::Error, OpenSSL::SSL::SSLError => e
      raise Errors::ServerUnavailableError.new(0, "ENGINE_UNAVAILABLE", "cannot reach #{@url}: #{e.message}")
    end

    def parse_json(raw)
      raw.nil? || raw.empty? ? nil : JSON.parse(raw)
    rescue JSON::ParserError
      nil
    end

    def error_body(payload)
      error = payload.is_a?(Hash) ? payload["error"] : nil
      error.is_a?(Hash) ? error : {}
    end

    # 401 and 403 as their own exceptions, whatever the call.
    def raise_if_refused(status, payload)
      return unless [401, 403].include?(status)

      err = error_body(payload)
      message = err["message"] || "server answered #{status}"
      if status == 401
        raise Errors::AuthenticationError.new(status, err["code"] || "UNAUTHENTICATED", message, field: err["field"])
      end

      first = (err["details"] || []).first
      raise Errors::PermissionDeniedError.new(status, err["code"] || "FORBIDDEN", message,
                                              field: err["field"], scope: first.is_a?(Hash) ? first["message"] : nil)
    end

    def ok(status, payload)
      return payload if status.between?(200, 299) && payload.is_a?(Hash)

      raise_if_refused(status, payload)
      err = error_body(payload)
      code = err["code"] || "UNKNOWN"
      message = err["message"] || "server answered #{status}"
      if status == 404 && code == "TASK_NOT_FOUND"
        raise Errors::TaskNotFoundError.new(status, code, message, field: err["field"])
      end
      raise Errors::ServerUnavailableError.new(status, code, message, field: err["field"]) if status >= 500

      raise Errors::ApiError.new(status, code, message, field: err["field"])
    end
  end
end
