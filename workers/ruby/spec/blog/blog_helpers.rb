# frozen_string_literal: true

require "time"

# Assertions shared by the blog handler specs (the Ruby twin of the Python suite's
# blog_assertions.py and its per-file helpers). Include it in an example group.
module BlogHelpers
  TS = '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z'
  UUID7 = "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
  MASKED = "<masked>"

  # Whole-value match (\A...\z), ASCII classes as Ruby reads \d and \s by default.
  def full_match?(pattern, value)
    value.is_a?(String) && Regexp.new("\\A(?:#{pattern})\\z").match?(value)
  end

  # A §0.7 timestamp, as a UTC Time.
  def ts(value)
    expect(full_match?(TS, value)).to be(true), "#{value.inspect} is not an RFC 3339 ms timestamp"
    Time.iso8601(value).utc
  end

  # A timestamp of this attempt's clock reading: at or after before (within the millisecond the
  # timestamp truncates) and not in the future.
  def assert_recent(value, before)
    t = ts(value)
    expect(t).to be >= before - 0.001
    expect(t).to be <= Time.now.utc
    t
  end

  # Equal as JSON (1 == 1.0 as values), and every number of expected has the same kind in actual:
  # an Integer where expected has an Integer, a Float where it has a Float.
  def expect_json(actual, expected)
    expect(actual).to eq(expected)
    same_kinds(actual, expected, "$")
  end

  def same_kinds(actual, expected, path)
    case expected
    when Hash
      expected.each { |k, v| same_kinds(actual[k], v, "#{path}.#{k}") }
    when Array
      expected.zip(actual).each_with_index { |(e, a), i| same_kinds(a, e, "#{path}[#{i}]") }
    when Integer
      expect(actual).to be_a(Integer), "#{path} = #{actual.inspect} must be an integer"
    when Float
      expect(actual).to be_a(Float), "#{path} = #{actual.inspect} must be a non-integral number"
    end
  end

  # Only JSON values: Hashes with String keys, Arrays, Strings, Integers, finite Floats, booleans
  # and nil (no BigDecimal, Symbol or Struct slipping out of a handler).
  def expect_plain_json(value, path = "$")
    case value
    when Hash
      value.each do |k, v|
        expect(k).to be_a(String), "#{path} has a non-String key #{k.inspect}"
        expect_plain_json(v, "#{path}.#{k}")
      end
    when Array
      value.each_with_index { |v, i| expect_plain_json(v, "#{path}[#{i}]") }
    when Float
      expect(value.finite?).to be(true), "#{path} is not finite"
    when String, Integer, true, false, nil
      nil
    else
      raise RSpec::Expectations::ExpectationNotMetError, "#{path} = #{value.inspect} is not a JSON value"
    end
  end

  # The Result of a successful attempt (its result checked to be plain JSON).
  def ok_result(r)
    expect(r.success?).to be(true), "expected success, got #{r.error.inspect}"
    expect(r.result).not_to be_nil
    expect_plain_json(r.result)
    expect_plain_json(r.metadata)
    r
  end

  # The result Hash of a successful attempt.
  def ok(r)
    ok_result(r).result
  end

  # The error Hash of a failed attempt.
  def err(r)
    expect(r.success?).to be(false), "expected a failure, got #{r.result.inspect}"
    expect(r.error).not_to be_nil
    expect_plain_json(r.error)
    r.error
  end

  def permanent_json(code, message)
    { "message" => message, "error_code" => code, "retryable" => false, "retry_after" => nil, "context" => {} }
  end

  def retryable_json(code, message, retry_after)
    { "message" => message, "error_code" => code, "retryable" => true, "retry_after" => retry_after,
      "context" => {} }
  end

  # result with each key checked against its pattern and replaced by MASKED, so the rest compares
  # exactly.
  def masked(result, patterns)
    copy = result.dup
    patterns.each do |key, pattern|
      value = copy[key]
      expect(value).to be_a(String), "#{key} is not a string: #{result.inspect}"
      expect(full_match?(pattern, value)).to be(true), "#{key} = #{value.inspect} does not match #{pattern}"
      copy[key] = MASKED
    end
    copy
  end

  # result without key, after checking it is a §0.7 timestamp.
  def take_timestamp(result, key)
    copy = result.dup
    expect(copy).to have_key(key)
    ts(copy.delete(key))
    copy
  end

  # The template callables of fixtures/task_templates/ruby/blog/<name>, in step order.
  def template_callables(name)
    path = File.expand_path("../../../../fixtures/task_templates/ruby/blog/#{name}", __dir__)
    File.read(path).scan(/callable:\s*(\S+)/).flatten
  end

  # CamelCase of a snake_case step name: "validate_cart" -> "ValidateCart".
  def camel(step)
    step.split("_").map(&:capitalize).join
  end

  def build_context(**fields)
    TaskerCore::Testing.build_context(**fields)
  end

  def run_handler(handler, context)
    TaskerCore::Testing.run_handler(handler, context)
  end

  # A deep copy of a JSON value.
  def deep_copy(value)
    Marshal.load(Marshal.dump(value))
  end
end
