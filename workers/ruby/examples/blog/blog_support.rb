# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "securerandom"

# Value rules shared by the blog handlers (spec §0.7, §0.8): blank values, exact money (BigDecimal,
# never binary floats), timestamps from one clock reading per attempt, random ids, whole-value
# regular expressions, and JSON text written the way every Tasker language writes it (serde_json's
# compact form, so messages match across languages).
#
# A port of examples/blog/blog_support.py of the Python worker; each helper reads JSON values
# exactly as its Python and Rust counterparts do.
module BlogSupport
  SPACE_CHARS = " \t\n\v\f\r"
  BLANK_STRING = /\A[ \t\n\v\f\r]*\z/.freeze

  # Significant digits of every division. Sums and products of BigDecimal are exact; a quotient
  # keeps this many digits, far more than the 29 integer and 28 fraction digits a value can have.
  DIVISION_DIGITS = 100

  I64_MIN = -(1 << 63)
  I64_MAX = (1 << 63) - 1
  # The Rust handlers read numbers as rust_decimal values: at most 96 bits of mantissa, scale <= 28.
  RUST_DECIMAL_MAX = BigDecimal((2**96) - 1)
  RUST_DECIMAL_MAX_SCALE = 28

  MONTHS = %w[January February March April May June July August September October November December].freeze
  HEX_DIGITS = "0123456789abcdef"

  module_function

  # Absent (nil), an empty or whitespace-only string, [] or {}. Never 0 or false.
  def blank?(value)
    case value
    when nil then true
    when String then BLANK_STRING.match?(value)
    when Array, Hash then value.empty?
    else false
    end
  end

  # "x is true": exactly the boolean true (not 1, not "true").
  def true?(value)
    value.equal?(true)
  end

  # A JSON number: Integer or finite Float (true and false are not numbers in Ruby anyway).
  def number?(value)
    value.is_a?(Integer) || (value.is_a?(Float) && value.finite?)
  end

  # The exact decimal value of a JSON number (29.99 stays 29.99) within the range every Tasker
  # language reads exactly; nil for anything else.
  def decimal(value)
    return nil unless number?(value)

    # Float#to_s is the shortest text that round-trips, i.e. the JSON text the value came from.
    d = value.is_a?(Float) ? BigDecimal(value.to_s) : BigDecimal(value)
    return nil if d.abs > RUST_DECIMAL_MAX
    return nil if d.scale > RUST_DECIMAL_MAX_SCALE

    d
  end

  # A JSON number with an integral value that fits 64 bits (2 and 2.0 alike, as JSON Schema's
  # integer); nil for anything else.
  def integer(value)
    d = decimal(value)
    return nil if d.nil? || !d.frac.zero?

    i = d.to_i
    i.between?(I64_MIN, I64_MAX) ? i : nil
  end

  # a / b with DIVISION_DIGITS significant digits (b must not be zero).
  def divide(a, b)
    BigDecimal(a).div(BigDecimal(b), DIVISION_DIGITS)
  end

  # Rounds to cents, half away from zero.
  def round_cents(d)
    d.round(2, BigDecimal::ROUND_HALF_UP)
  end

  # A decimal as a JSON number: an Integer when integral, else a Float (exact for <= 15 digits).
  def number_json(d)
    d.frac.zero? ? d.to_i : d.to_f
  end

  # A money value as a JSON number with at most 2 decimals (124.76; 100 for 100.00).
  def money_json(d)
    number_json(round_cents(d))
  end

  # "$" plus the value rounded to cents with exactly two decimals: "$6100.00" (a negative zero
  # keeps its sign, "$-0.00", as Python's Decimal and rust_decimal write it).
  def money_text(d)
    "$#{fixed2(round_cents(d))}"
  end

  # Integer cents written as money text: 4999 -> "$49.99".
  def cents_text(cents)
    money_text(divide(cents, 100))
  end

  # A decimal already rounded to cents, with exactly two decimals.
  def fixed2(d)
    cents = (d * 100).to_i.abs
    sign = d.sign.negative? ? "-" : ""
    format("%<sign>s%<units>d.%<cents>02d", sign: sign, units: cents / 100, cents: cents % 100)
  end
  private_class_method :fixed2

  # A Float as serde_json writes it: fixed notation for decimal exponents -5..=15 ("5.0",
  # "0.00001"), else "1e+16" / "1.5e-7".
  def float_text(f)
    text = f.to_s
    negative = text.start_with?("-")
    text = text.delete_prefix("-")
    mantissa, exp_text = text.split("e")
    int_part, frac_part = mantissa.split(".")
    frac_part ||= ""
    digits = int_part + frac_part
    exponent = exp_text.to_i - frac_part.length # value = digits * 10**exponent
    stripped = digits.sub(/\A0+/, "")
    prefix = negative ? "-" : ""
    trimmed = stripped.sub(/0+\z/, "")
    return "#{prefix}0.0" if trimmed.empty?

    exponent += stripped.length - trimmed.length
    dec_exp = exponent + trimmed.length - 1
    if dec_exp.between?(-5, 15)
      if trimmed.length - 1 <= dec_exp
        return "#{prefix}#{trimmed}#{'0' * (dec_exp - trimmed.length + 1)}.0"
      end
      return "#{prefix}#{trimmed[0..dec_exp]}.#{trimmed[(dec_exp + 1)..]}" if dec_exp >= 0

      return "#{prefix}0.#{'0' * (-dec_exp - 1)}#{trimmed}"
    end
    mantissa_text = trimmed[0] + (trimmed.length > 1 ? ".#{trimmed[1..]}" : "")
    "#{prefix}#{mantissa_text}e#{dec_exp >= 0 ? '+' : '-'}#{dec_exp.abs}"
  end

  # A string as a JSON string literal, escaped as serde_json escapes it.
  def json_string(s)
    out = +"\""
    s.each_char do |c|
      out << case c
             when "\"" then "\\\""
             when "\\" then "\\\\"
             when "\n" then "\\n"
             when "\r" then "\\r"
             when "\t" then "\\t"
             when "\b" then "\\b"
             when "\f" then "\\f"
             else c.ord < 0x20 ? format("\\u%04x", c.ord) : c
             end
    end
    out << "\""
  end

  # Compact JSON text exactly as serde_json writes it (object keys sorted, floats as above).
  def json_text(value)
    case value
    when nil then "null"
    when true then "true"
    when false then "false"
    when Integer then value.to_s
    when Float then float_text(value)
    when String then json_string(value)
    when Hash
      items = value.map { |k, v| [k.to_s, v] }.sort_by(&:first)
      "{#{items.map { |k, v| "#{json_string(k)}:#{json_text(v)}" }.join(',')}}"
    when Array then "[#{value.map { |v| json_text(v) }.join(',')}]"
    when BigDecimal then json_text(number_json(value))
    else json_string(value.to_s)
    end
  end

  # Whole-value match in the spec's dialect: \d is [0-9], \s is [ \t\n\v\f\r], \w is
  # [A-Za-z0-9_] (ASCII-only, as Python's re.ASCII and the Rust handlers read them);
  # case-sensitive; a trailing newline does not match (\z, like Python's fullmatch). The patterns
  # must not use ^ or $ (line anchors in Ruby) or inline flags.
  def full_match(pattern, value)
    return false unless value.is_a?(String)

    ascii = pattern.gsub("\\d", "[0-9]").gsub("\\s", "[ \\t\\n\\v\\f\\r]").gsub("\\w", "[A-Za-z0-9_]")
    Regexp.new("\\A(?:#{ascii})\\z").match?(value)
  end

  # "2026-01-02T03:04:05.678Z" (sub-millisecond digits truncated).
  def iso_ms(t)
    t.getutc.strftime("%Y-%m-%dT%H:%M:%S.%LZ")
  end

  # "January 09, 2026" (English month names whatever the locale).
  def text_date(t)
    u = t.getutc
    format("%<month>s %<day>02d, %<year>d", month: MONTHS[u.month - 1], day: u.day, year: u.year)
  end

  # n lowercase hex digits from a uniform random source.
  def random_hex(n)
    Array.new(n) { HEX_DIGITS[SecureRandom.random_number(16)] }.join
  end

  def random_hex_upper(n)
    random_hex(n).upcase
  end

  # A uniform integer in lo..hi (both included).
  def random_int(lo, hi)
    lo + SecureRandom.random_number(hi - lo + 1)
  end

  # The single clock reading a handler takes per attempt.
  class Now
    attr_reader :at

    def initialize(at = nil)
      @at = (at || Time.now).getutc
    end

    def iso
      BlogSupport.iso_ms(@at)
    end

    def plus_days(days)
      @at + (days * 86_400)
    end

    # YYYYMMDD of the UTC date.
    def compact_date
      @at.strftime("%Y%m%d")
    end
  end
end
