# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module TaskerCore
  # A REST client for applications: create tasks, read them, wait for them.
  #
  #   client = TaskerCore::Client.new("http://127.0.0.1:8080")
  #   task = client.create_task("ecommerce_rb", "ecommerce_order_processing", { "cart_items" => [...] })
  #   final = client.wait_for_task(task["task_uuid"], timeout: 30)
  #
  # Errors are the typed exceptions of {Errors}: {Errors::TaskCreationError} (with the §0.3 +code+,
  # +field+ and +details+) from {#create_task}, {Errors::TaskNotFoundError} for an unknown uuid,
  # {Errors::ServerUnavailableError} when the server cannot be reached or fails.
  class Client
    # Task states after which nothing changes without an operator.
    TERMINAL_STATUSES = %w[complete error cancelled resolved_manually].freeze

    attr_reader :url

    def initialize(url = "http://127.0.0.1:8080", timeout: 10.0)
      uri = URI.parse(url)
      unless %w[http https].include?(uri.scheme) && uri.host && !uri.host.empty?
        raise ArgumentError, "url must look like http://host:port, got #{url.inspect}"
      end

      @uri = uri
      @url = url.chomp("/")
      @timeout = timeout
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

    # GET /v1/tasks?namespace=&name=&status=&limit=&cursor=
    def list_tasks(**filters)
      query = URI.encode_www_form(filters.compact)
      ok(*request(:get, "/v1/tasks#{query.empty? ? '' : "?#{query}"}"))
    end

    # POST /v1/tasks/{uuid}/cancel
    def cancel_task(task_uuid)
      ok(*request(:post, "/v1/tasks/#{escape(task_uuid)}/cancel"))
    end

    # Polls until the task is in a terminal state; raises {Errors::WaitTimeoutError} after
    # +timeout+ seconds.
    def wait_for_task(task_uuid, timeout: 30.0, poll_interval: 0.05)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        task = get_task(task_uuid)
        last = task["status"]
        return task if TERMINAL_STATUSES.include?(last)

        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        raise Errors::WaitTimeoutError.new(task_uuid, timeout, last) if left <= 0

        sleep([poll_interval, left].min)
      end
    end

    private

    def escape(segment)
      URI.encode_www_form_component(segment.to_s)
    end

    def request(method, path, body = nil)
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.use_ssl = @uri.scheme == "https"
      http.open_timeout = @timeout
      http.read_timeout = @timeout
      req = method == :post ? Net::HTTP::Post.new(path) : Net::HTTP::Get.new(path)
      req["Accept"] = "application/json"
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

    def ok(status, payload)
      return payload if status.between?(200, 299) && payload.is_a?(Hash)

      err = error_body(payload)
      code = err["code"] || "UNKNOWN"
      message = err["message"] || "server answered #{status}"
      raise Errors::TaskNotFoundError.new(status, code, message, field: err["field"]) if status == 404
      raise Errors::ServerUnavailableError.new(status, code, message, field: err["field"]) if status >= 500

      raise Errors::ApiError.new(status, code, message, field: err["field"])
    end
  end
end
